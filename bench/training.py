"""Benchmark `invoke train` (native runner) from the command to a registered model version.

    .venv/bin/python bench/training.py [--runs 3]

Brings up its own stack (own ports and state folder), uploads the channels once, then times
`invoke train --json` end to end: process start, channel download, training (default
hyperparameters, 20k rows), MLflow logging, registration, alias, model.tar.gz upload.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from tests.integration.conftest import write_config  # noqa: E402

PORTS = {"mlflow": 25000, "s3": 28433, "aws": 24566, "database": 23307}


def kit(env: dict[str, str], *args: str) -> str:
    inherited = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "MLFLOW_"))}
    out = subprocess.run([sys.executable, "-m", "invoke", *args], cwd=REPO,
                         env={**inherited, **env}, check=False, capture_output=True, text=True)
    if out.returncode != 0:
        raise SystemExit(f"invoke {' '.join(args)} failed: {out.stderr.strip()[-500:]}")
    return out.stdout


def main() -> None:
    """Time the runs and print a markdown table and a JSON line."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    home = Path(tempfile.mkdtemp(prefix="mlp-bench-train-"))
    env = {"MLPLATFORM_HOME": str(home / "state"),
           "MLPLATFORM_CONFIG": str(write_config(home / "environments.toml", PORTS))}
    times, versions = [], []
    try:
        kit(env, "up")
        kit(env, "data")
        for _ in range(args.runs):
            start = time.perf_counter()
            result = json.loads(kit(env, "train", "--json"))
            times.append(time.perf_counter() - start)
            versions.append(result["model_version"])
    finally:
        kit(env, "down")
        shutil.rmtree(home, ignore_errors=True)
    median = round(statistics.median(times), 1)
    print("| measure | median |\n|---|---|")
    print(f"| `invoke train` (native) to registered version | {median} s |")
    print(json.dumps({"runs": args.runs, "train_s": median,
                      "all_s": [round(t, 1) for t in times], "versions": versions}))


if __name__ == "__main__":
    main()
