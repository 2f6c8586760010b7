"""Benchmark `invoke train` from the command to a registered model version, per runner.

    .venv/bin/python bench/training.py [--runs 3] [--runner native --runner local-container]

Brings up its own stack (own ports and state folder), uploads the channels once, then times
`invoke train --json` end to end: process start, channel download, training (default
hyperparameters, 20k rows), MLflow logging, registration, alias, model.tar.gz upload.

`local-container` (SageMaker SDK local mode) needs an engine: on Podman run
`eval "$(compose/standins/podman-env.sh)"` first. Its first run may build the training image and
install the SDK's virtualenv; it is reported apart from the median of the runs after it.
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
    parser.add_argument("--runner", action="append", choices=("native", "local-container"))
    args = parser.parse_args()
    runners = args.runner or ["native"]
    report: dict[str, dict[str, object]] = {}
    with private_stack() as env:
        kit(env, "data")
        for runner in runners:
            first = None
            if runner == "local-container":
                start = time.perf_counter()
                kit(env, "train", "--runner", runner, "--json")
                first = round(time.perf_counter() - start, 1)
            times, versions = [], []
            for _ in range(args.runs):
                start = time.perf_counter()
                result = json.loads(kit(env, "train", "--runner", runner, "--json"))
                times.append(time.perf_counter() - start)
                versions.append(result["model_version"])
            report[runner] = {
                "train_s": round(statistics.median(times), 1),
                "all_s": [round(t, 1) for t in times],
                "first_s": first,
                "versions": versions,
            }
    print("| measure | median |\n|---|---|")
    for runner, numbers in report.items():
        print(f"| `invoke train` ({runner}) to registered version | {numbers['train_s']} s |")
    print(json.dumps({"runs": args.runs, **report}))


if __name__ == "__main__":
    main()
