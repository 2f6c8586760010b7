"""Benchmark promotion throughput for a ~200 MB model, local registry -> emulated prod.

    .venv/bin/python bench/promotion.py [--megabytes 200]

Registers a pyfunc model carrying an incompressible artifact of the given size in the local
registry, emulates prod, then times `invoke promote` (download, manifest, copy through prod's
MLflow into prod's bucket in the emulator, verification by download, registration), and a rerun.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

import mlflow
from common import kit, private_stack


class Blob(mlflow.pyfunc.PythonModel):
    def predict(self, context, model_input: list[str], params=None) -> list[str]:  # type: ignore[no-untyped-def]
        return model_input


def register_big_model(env: dict[str, str], megabytes: int) -> str:
    creds = dict(
        line.removeprefix("export ").split("=", 1) for line in kit(env, "env").splitlines()
    )
    os.environ.update(
        {k: v.strip("'") for k, v in creds.items() if k.startswith("MLFLOW_TRACKING")}
    )
    mlflow.set_tracking_uri(os.environ["MLFLOW_TRACKING_URI"])
    mlflow.set_experiment("bench-promotion")
    with tempfile.TemporaryDirectory() as tmp, mlflow.start_run():
        blob = Path(tmp) / "weights.bin"
        with open(blob, "wb") as fh:
            for _ in range(megabytes):
                fh.write(os.urandom(1 << 20))
        info = mlflow.pyfunc.log_model(
            name="model", python_model=Blob(), artifacts={"weights": str(blob)}
        )
        return str(mlflow.register_model(info.model_uri, "big-model").version)


def main() -> None:
    """Time a promotion and its rerun; print a markdown table and a JSON line."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--megabytes", type=int, default=200)
    args = parser.parse_args()
    with private_stack() as env:
        version = register_big_model(env, args.megabytes)
        kit(env, "emulate", "--env", "prod")
        prod = {
            **env,
            **dict(
                line.removeprefix("export ").split("=", 1)
                for line in kit(env, "env", "--env", "prod").splitlines()
            ),
        }
        prod = {k: v.strip("'") for k, v in prod.items()}
        start = time.perf_counter()
        first = json.loads(
            kit(
                prod,
                "promote",
                "--model",
                "big-model",
                "--version",
                version,
                "--to",
                "prod",
                "--json",
            )
        )
        first_s = time.perf_counter() - start
        start = time.perf_counter()
        kit(prod, "promote", "--model", "big-model", "--version", version, "--to", "prod", "--json")
        rerun_s = time.perf_counter() - start
    mib = first["bytes"] / 2**20
    print("| measure | value |\n|---|---|")
    print(f"| model size | {mib:.0f} MiB in {first['files']} files |")
    rate = mib / first_s
    print(f"| first promotion (copy + verify + register) | {first_s:.1f} s, {rate:.1f} MiB/s |")
    print(f"| rerun (finds the version, re-verifies) | {rerun_s:.1f} s |")
    print(
        json.dumps(
            {
                "mib": round(mib),
                "first_s": round(first_s, 1),
                "mib_per_s": round(mib / first_s, 1),
                "rerun_s": round(rerun_s, 1),
            }
        )
    )


if __name__ == "__main__":
    main()
