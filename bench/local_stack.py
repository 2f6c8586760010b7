"""Benchmark the native local stack: cold `up`, warm `up`, and resident memory.

    .venv/bin/python bench/local_stack.py [--runs 3]

cold: first `invoke up` on an empty state folder (database initialisation, migrations, bucket).
warm: `invoke up` after `invoke down` with the data kept. Both measured to all-healthy (`up` returns
only then). Memory: summed RSS of every process in the services' process groups plus supervisord.
Runs on its own ports and state folder, so a developer's stack is not disturbed.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import tempfile
import time
from pathlib import Path

from common import EMULATED, PORTS, kit, write_config


def timed(env: dict[str, str], *args: str) -> float:
    start = time.perf_counter()
    kit(env, *args)
    return time.perf_counter() - start


def rss_mib(env: dict[str, str]) -> float:
    status = json.loads(kit(env, "status", "--json"))
    groups = {os.getpgid(s["pid"]) for s in status["services"].values() if s["pid"]}
    pidfile = Path(env["MLPLATFORM_HOME"]) / "run" / "supervisord.pid"
    pids = {int(pidfile.read_text())}
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            if os.getpgid(int(pid)) in groups:
                pids.add(int(pid))
        except ProcessLookupError:
            continue
    total_kib = 0
    for pid in pids:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                total_kib += int(line.split()[1])
    return total_kib / 1024


def main() -> None:
    """Run the measurements and print a markdown table and a JSON line."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    cold, warm, memory = [], [], []
    for _ in range(args.runs):
        home = Path(tempfile.mkdtemp(prefix="mlp-bench-"))
        env = {
            "MLPLATFORM_HOME": str(home / "state"),
            "MLPLATFORM_CONFIG": str(write_config(home / "environments.toml", PORTS, EMULATED)),
        }
        try:
            cold.append(timed(env, "up"))
            kit(env, "down")
            warm.append(timed(env, "up"))
            time.sleep(5)  # let workers finish importing before reading RSS (not a readiness wait)
            memory.append(rss_mib(env))
        finally:
            kit(env, "down")
            shutil.rmtree(home, ignore_errors=True)
    result = {
        "runs": args.runs,
        "cold_up_s": round(statistics.median(cold), 1),
        "warm_up_s": round(statistics.median(warm), 1),
        "stack_rss_mib": round(statistics.median(memory)),
        "all_cold_s": [round(x, 1) for x in cold],
        "all_warm_s": [round(x, 1) for x in warm],
    }
    print("| measure | median |\n|---|---|")
    print(f"| cold `up` to all-healthy | {result['cold_up_s']} s |")
    print(f"| warm `up` to all-healthy | {result['warm_up_s']} s |")
    print(f"| resident memory, whole stack | {result['stack_rss_mib']} MiB |")
    print(json.dumps(result))


if __name__ == "__main__":
    main()
