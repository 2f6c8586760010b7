"""The MLflow UI in a real browser (Debian's chromium driven by Playwright): login and registry.

The UI is MLflow's own; what the kit owns is that it is served behind basic auth with the
settings the cloud uses, and that the registry it shows carries what training recorded.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator

import pytest
from playwright.sync_api import Browser, HttpCredentials, sync_playwright
from playwright.sync_api import Error as PlaywrightError

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


def refused(browser: Browser, url: str, credentials: HttpCredentials | None) -> str:
    """Navigate to `url` in a fresh context (no login, or `credentials`); assert the server
    answered the navigation with 401 and the browser loaded nothing else; return what it shows.

    Chromium ends a navigation whose 401 it cannot answer (no credentials to give) with
    net::ERR_INVALID_AUTH_CREDENTIALS; with credentials the server refuses again, it shows the
    401 page. Either way the server's answer to the navigation is seen on the network.
    """
    context = browser.new_context(http_credentials=credentials)
    try:
        page = context.new_page()
        answers: list[int] = []
        page.on(
            "response",
            lambda r: answers.append(r.status) if r.request.is_navigation_request() else None,
        )
        try:
            response = page.goto(url, wait_until="load")
            assert response is not None, url
            assert response.status == 401, (url, response.status)
        except PlaywrightError as exc:
            assert "net::ERR_INVALID_AUTH_CREDENTIALS" in str(exc), exc
        assert answers and set(answers) == {401}, (url, answers)
        return page.locator("body").inner_text()
    finally:
        context.close()


def test_ui_requires_login_and_shows_the_version_just_trained(
    stack: Stack, browser: Browser
) -> None:
    """A browser without a login, or with a wrong password, gets 401 for the UI page and the
    registry API behind it and sees none of the registry; logged in, the page of the version this
    test trained (the URL `invoke train` prints) shows that version's own run id."""
    stack.kit("data")
    trained = json.loads(stack.kit("train", "--json", "--set", "n_estimators=10").stdout)
    name, version, run_id = trained["model_name"], trained["model_version"], trained["run_id"]
    env = stack.client_env()
    base = env["MLFLOW_TRACKING_URI"]
    page_url = f"{base}/#/models/{name}/versions/{version}"
    api_url = f"{base}/ajax-api/2.0/mlflow/model-versions/get?name={name}&version={version}"
    user = env["MLFLOW_TRACKING_USERNAME"]
    wrong = {"username": user, "password": env["MLFLOW_TRACKING_PASSWORD"] + "-wrong"}
    for credentials in (None, wrong):
        for url in (page_url, api_url):
            shown = refused(browser, url, credentials)
            assert run_id not in shown, url

    context = browser.new_context(
        http_credentials={"username": user, "password": env["MLFLOW_TRACKING_PASSWORD"]}
    )
    try:
        page = context.new_page()
        response = page.goto(page_url)
        assert response is not None and response.status == 200
        # The version's tags (training records mlp.run_id) and its source-run link name the run
        # that produced it: no other version of this model carries that id.
        page.get_by_text(run_id, exact=True).first.wait_for(timeout=30000)
        page.locator(f'a[href*="/runs/{run_id}"]').first.wait_for(timeout=30000)
        page.get_by_text("challenger").first.wait_for(timeout=30000)
    finally:
        context.close()
