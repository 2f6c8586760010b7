"""The README is executed: its shell blocks, in order, as a new user types them.

Every ```bash block of README.md runs, top to bottom, in one bash (`set -euo pipefail`) from the
repository root, so a variable one block exports (`eval "$(./kit env --env prod)"`) reaches the
next, as in the user's terminal. A block right after a line
`<!-- readme-test: not run: REASON -->` is left out; the reasons are asserted below, so nothing
is left out quietly. Only two things differ from a user's machine, both through the kit's
documented variables: MLPLATFORM_HOME (a state folder of the test's own, holding the images the
container lane already built, so `./kit build` finds them unchanged) and MLPLATFORM_CONFIG (the
repository's environments.toml on ports of the test's own). It needs the container lane: the
README's path runs `./kit build`, which needs an engine.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.cli import REPO, kit
from tests.integration.conftest import write_config

pytestmark = pytest.mark.container
PORTS = {"mlflow": 27700, "s3": 28733, "aws": 27766, "database": 27707}
EMULATED = {"staging": 27720, "prod": 27710}
SKIP = re.compile(r"<!-- readme-test: not run: (?P<why>.+?) -->\s*$")
FENCE = re.compile(r"^```bash\n(?P<body>.*?)^```$", re.MULTILINE | re.DOTALL)


def readme_blocks(text: str) -> tuple[list[str], list[str]]:
    """The README's bash blocks to run, in order, and the reasons given for those left out."""
    run, left_out = [], []
    for match in FENCE.finditer(text):
        before = text[: match.start()].rstrip("\n").rsplit("\n", 1)[-1]
        skip = SKIP.match(before)
        if skip:
            left_out.append(skip["why"])
        else:
            run.append(match["body"])
    return run, left_out


def test_blocks_are_found_in_order_and_a_marked_block_is_left_out() -> None:
    text = (
        "intro\n```bash\necho one\n```\n"
        "<!-- readme-test: not run: needs a real account -->\n```bash\necho two\n```\n"
        "```python\nprint(3)\n```\n```bash\necho four\n```\n"
    )
    assert readme_blocks(text) == (["echo one\n", "echo four\n"], ["needs a real account"])


@pytest.fixture
def user(images: dict[str, str], tmp_path: Path) -> Iterator[dict[str, str]]:
    """A new user's environment: the container lane's engine, the built images, own ports."""
    state = tmp_path / "state"
    built = state / "images"
    built.mkdir(parents=True)
    for name in ("MLFLOW", "TRAINING_FRAUD", "SERVING_FRAUD"):
        archive = Path(images[f"MLP_TEST_ARCHIVE_{name}"])
        for path in archive.parent.glob(archive.name + "*"):  # the archive and its sidecar
            shutil.copy2(path, built / path.name)
    env = {
        **images,
        "MLPLATFORM_HOME": str(state),
        "MLPLATFORM_CONFIG": str(write_config(tmp_path / "environments.toml", PORTS, EMULATED)),
    }
    try:
        yield env
    finally:
        kit("emulate", "--env", "prod", "--down", "--volumes", env=env, timeout=300)
        kit("down", "--volumes", env=env, timeout=300)


@pytest.mark.timeout(3600)
def test_the_readme_runs_from_top_to_bottom(user: dict[str, str]) -> None:
    blocks, left_out = readme_blocks((REPO / "README.md").read_text(encoding="utf-8"))
    # What is left out, and why: the test command (this suite) and nothing else.
    assert left_out == ["`./kit test` is the suite this test runs in"]
    script = "set -euo pipefail\n" + "\n".join(blocks)
    assert "./kit deploy --env prod" in script and "./kit predict --env prod" in script
    done = subprocess.run(
        ["bash", "-c", script],
        cwd=REPO,
        env=user,
        capture_output=True,
        text=True,
        timeout=3000,
        check=False,
    )
    assert done.returncode == 0, f"{done.stdout[-4000:]}\n{done.stderr[-4000:]}"
    assert "Traceback" not in done.stderr, done.stderr[-4000:]
    # The last command's answer: the emulated endpoint's model scored the README's request.
    answer = json.loads(done.stdout.strip().splitlines()[-1])
    # One row, the classifier's predict_proba: [P(legitimate), P(fraud)].
    ((legitimate, fraud),) = answer["predictions"]
    assert 0.0 <= fraud <= 1.0 and abs(legitimate + fraud - 1.0) < 1e-9
