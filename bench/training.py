"""Benchmark `invoke train` (native runner) from the command to a registered model version.

    .venv/bin/python bench/training.py [--runs 3]

Brings up its own stack (own ports and state folder), uploads the channels once, then times
`invoke train --json` end to end: process start, channel download, training (default
hyperparameters, 20k rows), MLflow logging, registration, alias, model.tar.gz upload.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

from common import kit, private_stack


def main() -> None:
    """Time the runs and print a markdown table and a JSON line."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    times, versions = [], []
    with private_stack() as env:
        kit(env, "data")
        for _ in range(args.runs):
            start = time.perf_counter()
            result = json.loads(kit(env, "train", "--json"))
            times.append(time.perf_counter() - start)
            versions.append(result["model_version"])
    median = round(statistics.median(times), 1)
    print("| measure | median |\n|---|---|")
    print(f"| `invoke train` (native) to registered version | {median} s |")
    print(
        json.dumps(
            {
                "runs": args.runs,
                "train_s": median,
                "all_s": [round(t, 1) for t in times],
                "versions": versions,
            }
        )
    )


if __name__ == "__main__":
    main()
