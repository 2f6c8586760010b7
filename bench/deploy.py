"""Benchmark `invoke deploy --env prod` against the emulated cloud: a first release, then no-ops.

    .venv/bin/python bench/deploy.py [--image mlplatform/mlflow-server:local]

A private local stack and prod's emulated account, made as the README makes it (`invoke emulate
--env prod --account`, then `invoke env --env prod`). Times, each a whole `invoke` process:
  0. the emulated account: server, CDK bootstrap, certificate;
  1. the first release of infra, images, migrate and service (five stacks created, the three
     images pushed through ECR's API, the migrate task run, the service rolled);
  2. the same four steps again (nothing to do);
  3. the whole chain after a champion was trained locally (model promoted, endpoint created);
  4. the whole chain again (nothing to do).
--image names a local podman/docker image to release as the MLflow image (exported and pushed:
shows push throughput); without it a small generated OCI image is released. The training and
serving images are small generated ones, where `invoke build` leaves them. The emulator runs no
container, so the migrate and service steps measure the kit and the CDK CLI, not ECS.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

from common import kit, private_stack

from tests.cli import exported
from tests.oci_images import write_archive


def timed(env: dict[str, str], *args: str) -> tuple[float, list[dict[str, object]]]:
    """Wall time of one `invoke deploy ... --json` and the steps it printed."""
    start = time.perf_counter()
    out = kit(env, "deploy", "--env", "prod", "--json", "--yes", *args)
    return time.perf_counter() - start, [json.loads(line) for line in out.splitlines()]


def main() -> None:
    """Run the account and the four deploys; print a markdown table and a JSON line."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--image", help="local engine image to release (default: generated)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="mlp-bench-deploy-") as tmp, private_stack() as stack:
        env = dict(stack)
        images = Path(env["MLPLATFORM_HOME"]) / "images"
        images.mkdir(parents=True, exist_ok=True)
        write_archive(images / "training.oci.tar", {"opt/ml/code/train.py": b"# train\n"})
        write_archive(images / "serving.oci.tar", {"scoring_server/__init__.py": b"# serve\n"})
        image = args.image or str(Path(tmp) / "image.tar")
        if not args.image:
            write_archive(Path(image), {"app/server.py": b"print('serve')\n"})
        rows: list[tuple[str, float, list[dict[str, object]]]] = []
        start = time.perf_counter()
        kit(env, "emulate", "--env", "prod", "--account")
        rows.append(
            ("emulated account: server, bootstrap, certificate", time.perf_counter() - start, [])
        )
        env.update(exported(kit(env, "env", "--env", "prod")))
        try:
            infra = ("--steps", "infra,image,migrate,service", "--image", image)
            rows.append(("first release: infra, images, migrate, service", *timed(env, *infra)))
            rows.append(("the same four steps again", *timed(env, *infra)))
            kit(env, "data")
            kit(env, "train", "--set", "n_estimators=20")
            kit(env, "champion")
            rows.append(
                ("whole chain: model promoted, endpoint created", *timed(env, "--image", image))
            )
            rows.append(("whole chain again", *timed(env, "--image", image)))
        finally:
            kit(env, "emulate", "--env", "prod", "--down", "--volumes")
    print("| deploy | wall | changed steps |\n|---|---|---|")
    for name, seconds, steps in rows:
        changed = ", ".join(str(s["step"]) for s in steps if s["changed"]) or (
            "none" if steps else "-"
        )
        print(f"| {name} | {seconds:.1f} s | {changed} |")
    print(json.dumps({name: round(seconds, 1) for name, seconds, _ in rows}))


if __name__ == "__main__":
    main()
