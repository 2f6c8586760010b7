"""The MLflow UI in a real browser (Debian's chromium driven by Playwright): login and registry.

The UI is MLflow's own; what the kit owns is that it is served behind basic auth with the
settings the cloud uses, and that the registry it shows carries what training recorded.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator

import pytest
from playwright.sync_api import Browser, sync_playwright

from tests.integration.conftest import Stack

pytestmark = pytest.mark.integration
# Flags for a sandboxed, offline machine (no background connections, no GPU, root).
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    executable = shutil.which("chromium")
    assert executable, "chromium (Debian package) is installed by ./kit test"
    with sync_playwright() as playwright:
        instance = playwright.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        try:
            yield instance
        finally:
            instance.close()


def test_ui_requires_login_and_shows_the_registry(stack: Stack, browser: Browser) -> None:
    stack.kit("data")
    trained = json.loads(stack.kit("train", "--json", "--set", "n_estimators=10").stdout)
    env = stack.client_env()
    base = env["MLFLOW_TRACKING_URI"]

    anonymous = browser.new_context()
    try:
        assert anonymous.request.get(f"{base}/").status == 401
        assert (
            anonymous.request.get(f"{base}/ajax-api/2.0/mlflow/registered-models/search").status
            == 401
        )
    finally:
        anonymous.close()

    context = browser.new_context(
        http_credentials={
            "username": env["MLFLOW_TRACKING_USERNAME"],
            "password": env["MLFLOW_TRACKING_PASSWORD"],
        }
    )
    try:
        page = context.new_page()
        page.goto(f"{base}/#/models")
        page.get_by_text(trained["model_name"]).first.wait_for(timeout=30000)
        page.goto(f"{base}/#/models/{trained['model_name']}")
        page.get_by_text("challenger").first.wait_for(timeout=30000)
        page.get_by_text("mlp.git.commit").first.wait_for(timeout=30000)
    finally:
        context.close()
