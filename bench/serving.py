"""Benchmark the local endpoint against a plain `mlflow models serve` of the same model.

    .venv/bin/python bench/serving.py [--requests 400] [--concurrency 4]

The servers run at once on loopback with the same version of the trained fraud model: `invoke
serve` (packaged model.tar.gz) with one worker and with two, and `mlflow models serve -m
models:/NAME/N` with its defaults as `pip install mlflow` gets them (uvicorn without httptools and
uvloop, so h11 and asyncio: this virtual environment has both, so they are named). For 1-row and
100-row JSON requests it measures sequential latency (p50, p99) on one kept-alive connection, as
SageMaker calls an endpoint, and throughput with a fixed number of concurrent clients, each on a
kept-alive connection of its own. Request loops are bounded.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import signal
import statistics
import subprocess
import sys
import time

from common import REPO, kit, private_stack, run_concurrently, wait_answering
from fraud_model.data import FEATURES, generate

OURS, OURS_TWO, PLAIN = 28080, 28082, 28081


def measure(port: int, body: bytes, requests: int, concurrency: int) -> dict[str, float]:
    headers = {"Content-Type": "application/json"}
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    latencies = []
    for _ in range(requests):
        start = time.perf_counter()
        conn.request("POST", "/invocations", body, headers)
        response = conn.getresponse()
        response.read()
        assert response.status == 200
        latencies.append((time.perf_counter() - start) * 1000)
    latencies.sort()
    done = []

    def client() -> None:
        c = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        for _ in range(requests // concurrency):
            c.request("POST", "/invocations", body, headers)
            c.getresponse().read()
            done.append(1)

    elapsed = run_concurrently(client, concurrency)
    return {
        "p50_ms": round(statistics.median(latencies), 2),
        "p99_ms": round(latencies[int(len(latencies) * 0.99) - 1], 2),
        "rps": round(len(done) / elapsed, 1),
    }


def main() -> None:
    """Run both servers, measure, print a markdown table and a JSON line."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=400)
    parser.add_argument("--concurrency", type=int, default=4)
    args = parser.parse_args()
    with private_stack() as env:
        kit(env, "data")
        version = json.loads(kit(env, "train", "--json"))["model_version"]
        creds = dict(
            line.removeprefix("export ").split("=", 1) for line in kit(env, "env").splitlines()
        )
        inherited = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "MLFLOW_"))}
        ours, ours_two = (
            subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "invoke",
                    "serve",
                    "--version",
                    version,
                    "--port",
                    str(port),
                    "--workers",
                    str(workers),
                ],
                cwd=REPO,
                env={**inherited, **env},
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                start_new_session=True,
            )
            for port, workers in ((OURS, 1), (OURS_TWO, 2))
        )
        plain_env = {
            **inherited,
            "UVICORN_HTTP": "h11",
            "UVICORN_LOOP": "asyncio",
            "PATH": f"{os.path.dirname(sys.executable)}:{os.environ['PATH']}",
            **{k: v.strip("'") for k, v in creds.items() if k.startswith("MLFLOW_")},
        }
        plain = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "mlflow",
                "models",
                "serve",
                "-m",
                f"models:/fraud-classifier/{version}",
                "-p",
                str(PLAIN),
                "-h",
                "127.0.0.1",
                "--env-manager",
                "local",
            ],
            env=plain_env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        try:
            wait_answering(f"http://127.0.0.1:{OURS}/ping", ours)
            wait_answering(f"http://127.0.0.1:{OURS_TWO}/ping", ours_two)
            wait_answering(f"http://127.0.0.1:{PLAIN}/ping", plain)
            results = {}
            for rows in (1, 100):
                frame = generate(rows, 0.1, seed=rows)[list(FEATURES)]
                body = json.dumps(
                    {"dataframe_split": json.loads(frame.to_json(orient="split", index=False))}
                ).encode()
                for name, port in (
                    ("invoke serve (1 worker)", OURS),
                    ("invoke serve (2 workers)", OURS_TWO),
                    ("mlflow models serve (defaults)", PLAIN),
                ):
                    results[f"{name} / {rows} row"] = measure(
                        port, body, args.requests, args.concurrency
                    )
        finally:
            for proc in (ours, ours_two, plain):
                os.killpg(proc.pid, signal.SIGTERM if proc is plain else signal.SIGINT)
                proc.wait(30)
    print(
        f"| server / request | p50 ms | p99 ms | req/s ({args.concurrency} clients) |"
        " kit/stock p99 | kit/stock req/s |\n|---|---|---|---|---|---|"
    )
    for name, r in results.items():
        stock = results[f"mlflow models serve (defaults) / {name.rpartition(' / ')[2]}"]
        print(
            f"| {name} | {r['p50_ms']} | {r['p99_ms']} | {r['rps']} |"
            f" {round(r['p99_ms'] / stock['p99_ms'], 2)} | {round(r['rps'] / stock['rps'], 2)} |"
        )
    print(json.dumps(results))


if __name__ == "__main__":
    main()
