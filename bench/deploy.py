"""Benchmark `invoke deploy --env prod` against the emulated cloud: a first release, then no-ops.

    .venv/bin/python bench/deploy.py [--image mlplatform/mlflow-server:local]

A private local stack, a patched moto server standing in for prod's account (the one the tests
use), and prod's registry emulated on it. Times, each a whole `invoke deploy` process:
  1. the first release of infra, image, migrate and service (five stacks created, the image
     pushed through ECR's API, the migrate task run, the service rolled);
  2. the same four steps again (nothing to do);
  3. the whole chain after a champion was trained locally (model promoted, endpoint created);
  4. the whole chain again (nothing to do).
--image names a local podman/docker image to release (exported and pushed: shows push
throughput); without it a small generated OCI image is released. The emulator runs no container,
so the migrate and service steps measure the kit and the CDK CLI, not ECS.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

from common import EMULATED, kit, private_stack

from tests.emulator.process import patched_moto
from tests.oci_images import write_archive

SERVING_IMAGE = "222222222222.dkr.ecr.eu-west-1.amazonaws.com/mlflow-pyfunc@sha256:" + "f" * 64


def timed(env: dict[str, str], *args: str) -> tuple[float, list[dict[str, object]]]:
    """Wall time of one `invoke deploy ... --json` and the steps it printed."""
    start = time.perf_counter()
    out = kit(env, "deploy", "--env", "prod", "--json", "--yes", *args)
    return time.perf_counter() - start, [json.loads(line) for line in out.splitlines()]


def main() -> None:
    """Run the four deploys; print a markdown table and a JSON line."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--image", help="local engine image to release (default: generated)")
    args = parser.parse_args()
    with (
        tempfile.TemporaryDirectory(prefix="mlp-bench-deploy-") as tmp,
        private_stack() as stack,
        patched_moto("222222222222", "eu-west-1", Path(tmp) / "moto.log", Path(tmp) / "cdk") as aws,
    ):
        aws.finish_one_off_tasks()
        env = {**stack, **aws.variables}
        kit(env, "bootstrap", "--env", "prod")
        cert = aws.client("acm").request_certificate(DomainName="mlflow.prod.internal")
        image = args.image or str(Path(tmp) / "image.tar")
        if not args.image:
            write_archive(Path(image), {"app/server.py": b"print('serve')\n"})
        common = ("--certificate-arn", cert["CertificateArn"], "--image", image)
        rows = []
        infra = ("--steps", "infra,image,migrate,service")
        rows.append(("first release: infra, image, migrate, service", *timed(env, *infra, *common)))
        rows.append(("the same four steps again", *timed(env, *infra, *common)))
        kit(env, "emulate", "--env", "prod")
        env["MLPLATFORM_MLFLOW_URL_PROD"] = f"http://127.0.0.1:{EMULATED['prod']}"
        kit(env, "data")
        kit(env, "train", "--set", "n_estimators=20")
        kit(env, "champion")
        whole = (*common, "--serving-image", SERVING_IMAGE)
        rows.append(("whole chain: model promoted, endpoint created", *timed(env, *whole)))
        rows.append(("whole chain again", *timed(env, *whole)))
        kit(env, "emulate", "--env", "prod", "--down", "--volumes")
    print("| deploy | wall | changed steps |\n|---|---|---|")
    for name, seconds, steps in rows:
        changed = ", ".join(str(s["step"]) for s in steps if s["changed"]) or "none"
        print(f"| {name} | {seconds:.1f} s | {changed} |")
    print(json.dumps({name: round(seconds, 1) for name, seconds, _ in rows}))


if __name__ == "__main__":
    main()
