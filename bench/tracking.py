"""Benchmark the kit's MLflow server against stock `mlflow server`, side by side in one run.

    .venv/bin/python bench/tracking.py [--clients 8] [--batches 50] [--loop 300] [--runs 10000]
                                       [--artifact-mib 100]

Both servers run at once on loopback, on the same MariaDB server (a database each) and the same
S3 server (a prefix each):
- kit: the private stack's server as `invoke up` starts it (basic auth, its uvicorn options and
  worker count, job execution off);
- stock: `mlflow server` with its defaults, as `pip install mlflow` gets it; only its store and
  artifact destination point at the same database and S3 servers (through variables, so no
  password is on a command line). `pip install mlflow` brings uvicorn without httptools and uvloop,
  whose `auto` settings then mean h11 and asyncio; this virtual environment has both (the kit's
  lock), so stock is told `--http h11 --loop asyncio` to run as it would on its own.
Each load runs on both, one server after the other, in a process of its own:
- concurrent log_batch: `--clients` threads, each `--batches` log_batch calls of 100 metrics;
- training loop: `--loop` single points logged in a loop, with each side's way of logging (the
  kit's `mlp_training.MetricStream`, stock's default synchronous `mlflow.log_metric`), and
  synchronous on both to show the server alone; the stream is timed up to the last point stored;
- search_runs over `--runs` runs (a metric and a param each): every page of an unfiltered
  search, and a filtered, ordered one;
- one `--artifact-mib` artifact uploaded and downloaded through the server's proxy.
Then the resident memory of each server's process tree. Prints a markdown table with the ratio
kit/stock for every figure, and a JSON line.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from common import PORTS, REPO, kit, private_stack, run_concurrently, wait_answering

STOCK_PORT = 25050
STOCK_DATABASE = "stock_mlflow"


# --- loads: run in a child process whose environment names one server -------------------------


def _timed(fn: Callable[[], Any]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def load_log_batch(args: argparse.Namespace) -> dict[str, float]:
    """`clients` threads, each its own run, each `batches` × log_batch(100 metrics)."""
    from mlflow.entities import Metric
    from mlflow.tracking import MlflowClient

    client = MlflowClient()
    experiment = client.create_experiment(f"batch-{secrets.token_hex(4)}")
    latencies: list[float] = []
    errors: list[BaseException] = []

    def one_client() -> None:
        run = client.create_run(experiment).info.run_id
        now = int(time.time() * 1000)
        try:
            for b in range(args.batches):
                metrics = [Metric(f"m{k}", float(b), now, b) for k in range(100)]
                start = time.perf_counter()
                client.log_batch(run, metrics=metrics)
                latencies.append(time.perf_counter() - start)
        except Exception as exc:  # counted and reported, not hidden
            errors.append(exc)

    elapsed = run_concurrently(one_client, args.clients)
    if errors:
        raise SystemExit(f"log_batch load: {len(errors)} clients failed: {errors[0]}")
    latencies.sort()
    return {
        "log_batch points/s": round(args.clients * args.batches * 100 / elapsed),
        "log_batch p50 ms": round(statistics.median(latencies) * 1000, 1),
        "log_batch p99 ms": round(latencies[int(len(latencies) * 0.99) - 1] * 1000, 1),
    }


def load_loop(args: argparse.Namespace) -> dict[str, float]:
    """A training loop logging one point per step: each side's way, then synchronous on both."""
    import mlflow

    sys.path.insert(0, str(REPO))
    from mlp_training import MetricStream

    mlflow.set_experiment(f"loop-{secrets.token_hex(4)}")
    out: dict[str, float] = {}
    with mlflow.start_run():
        if args.side == "kit":
            start = time.perf_counter()
            with MetricStream() as stream:
                for step in range(args.loop):
                    stream.log("loss", 1.0 / (step + 1), step=step)
                loop_done = time.perf_counter()
            stored = time.perf_counter()
            out["loop points/s (in the loop)"] = round(args.loop / (loop_done - start))
            out["loop points/s (stored)"] = round(args.loop / (stored - start))
        else:
            rate = round(args.loop / _timed(lambda: _sync_loop(mlflow, "loss", args.loop)))
            out["loop points/s (in the loop)"] = out["loop points/s (stored)"] = rate
        out["loop points/s, synchronous"] = round(
            args.loop / _timed(lambda: _sync_loop(mlflow, "sync", args.loop))
        )
    return out


def _sync_loop(mlflow: Any, key: str, steps: int) -> None:
    for step in range(steps):
        mlflow.log_metric(key, 1.0 / (step + 1), step=step)


def load_search(args: argparse.Namespace) -> dict[str, float]:
    """Seed `runs` runs (8 threads, not timed), then time full paging and a filtered search."""
    from concurrent.futures import ThreadPoolExecutor

    from mlflow.entities import Metric, Param
    from mlflow.tracking import MlflowClient

    client = MlflowClient()
    experiment = client.create_experiment(f"search-{secrets.token_hex(4)}")

    def seed(i: int) -> None:
        run = client.create_run(experiment).info.run_id
        client.log_batch(
            run,
            metrics=[Metric("auc", (i % 1000) / 1000, int(time.time() * 1000), 0)],
            params=[Param("fold", str(i % 10))],
        )

    with ThreadPoolExecutor(8) as pool:
        list(pool.map(seed, range(args.runs)))

    def page_all() -> None:
        token, seen = None, 0
        while True:
            page = client.search_runs([experiment], max_results=1000, page_token=token)
            seen += len(page)
            token = page.token
            if not token:
                break
        assert seen == args.runs, seen

    def filtered() -> None:
        client.search_runs(
            [experiment],
            filter_string="metrics.auc > 0.9 and params.fold = '3'",
            order_by=["metrics.auc DESC"],
            max_results=100,
        )

    return {
        f"search_runs, all {args.runs} (s)": round(
            statistics.median(_timed(page_all) for _ in range(3)), 2
        ),
        "search_runs, filtered (ms)": round(
            statistics.median(_timed(filtered) for _ in range(10)) * 1000, 1
        ),
    }


def load_artifact(args: argparse.Namespace) -> dict[str, float]:
    """One random file of `artifact_mib` MiB up and down through the server's proxy."""
    import mlflow
    from mlflow.tracking import MlflowClient

    client = MlflowClient()
    experiment = client.create_experiment(f"artifact-{secrets.token_hex(4)}")
    run = client.create_run(experiment).info.run_id
    with tempfile.TemporaryDirectory() as tmp:
        blob = Path(tmp) / "blob.bin"
        with open(blob, "wb") as fh:
            for _ in range(args.artifact_mib):
                fh.write(os.urandom(1 << 20))
        up = _timed(lambda: client.log_artifact(run, str(blob)))
        down_dir = Path(tmp) / "down"
        down_dir.mkdir()
        down = _timed(
            lambda: mlflow.artifacts.download_artifacts(
                run_id=run, artifact_path="blob.bin", dst_path=str(down_dir)
            )
        )
        assert (down_dir / "blob.bin").stat().st_size == blob.stat().st_size
    return {
        f"artifact {args.artifact_mib} MiB upload MiB/s": round(args.artifact_mib / up, 1),
        f"artifact {args.artifact_mib} MiB download MiB/s": round(args.artifact_mib / down, 1),
    }


LOADS = {
    "log_batch": load_log_batch,
    "loop": load_loop,
    "search": load_search,
    "artifact": load_artifact,
}


# --- the two servers ---------------------------------------------------------------------------


def group_rss_mib(pgid: int) -> float:
    """Summed resident memory of every process in a process group."""
    total_kib = 0
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            if os.getpgid(int(pid)) != pgid:
                continue
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total_kib += int(line.split()[1])
        except (ProcessLookupError, FileNotFoundError):
            continue
    return round(total_kib / 1024)


def stock_database(state: Path) -> str:
    """A database and user of its own for stock MLflow on the stack's server; its store URI."""
    sys.path.insert(0, str(REPO))
    from mlplatform.local.database_admin import root_connection
    from mlplatform.local.database_tls import tls_files
    from mlplatform.paths import StatePaths

    password = secrets.token_urlsafe(16)
    with root_connection(StatePaths(state).socket("mysqld.sock")) as conn, conn.cursor() as cur:
        cur.execute(f"CREATE DATABASE `{STOCK_DATABASE}` CHARACTER SET utf8mb4")
        cur.execute("CREATE USER %s@'%%' IDENTIFIED BY %s", ("stock", password))
        cur.execute(f"GRANT ALL PRIVILEGES ON `{STOCK_DATABASE}`.* TO %s@'%%'", ("stock",))
        conn.commit()
    # The stack's server takes TLS only; stock verifies against its CA as the kit's server does.
    ca = tls_files(StatePaths(state)).ca
    return (
        f"mysql+pymysql://stock:{password}@127.0.0.1:{PORTS['database']}/{STOCK_DATABASE}"
        f"?ssl_ca={ca}"
    )


def run_load(name: str, side: str, client_env: dict[str, str], args: argparse.Namespace) -> Any:
    """One load in a child process against one server; its figures."""
    argv = [sys.executable, __file__, "--load", name, "--side", side]
    for flag in ("clients", "batches", "loop", "runs", "artifact_mib"):
        argv += [f"--{flag.replace('_', '-')}", str(getattr(args, flag))]
    done = subprocess.run(argv, env=client_env, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise SystemExit(f"{name} on {side} failed: {done.stderr.strip()[-800:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    """Start both servers, run every load on each, print the table and a JSON line."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--batches", type=int, default=50)
    parser.add_argument("--loop", type=int, default=300)
    parser.add_argument("--runs", type=int, default=10000)
    parser.add_argument("--artifact-mib", type=int, default=100)
    parser.add_argument(
        "--loads", default=",".join(LOADS), help="comma-separated subset of: " + ", ".join(LOADS)
    )
    parser.add_argument(
        "--kit-workers", type=int, help="the kit server's workers (default: environments.toml's)"
    )
    parser.add_argument("--load", choices=sorted(LOADS), help=argparse.SUPPRESS)
    parser.add_argument("--side", choices=("kit", "stock"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.load:
        print(json.dumps(LOADS[args.load](args)))
        return

    base = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "MLFLOW_"))}
    loads = [name for name in args.loads.split(",") if name]
    if unknown := set(loads) - set(LOADS):
        raise SystemExit(f"unknown load(s): {', '.join(sorted(unknown))}")
    with private_stack(args.kit_workers) as env:
        state = Path(env["MLPLATFORM_HOME"])
        kit_env = {
            k: v.strip("'")
            for k, v in (
                line.removeprefix("export ").split("=", 1)
                for line in kit(env, "env").splitlines()
                if line.startswith("export ")
            )
        }
        from mlplatform.config import load_environment

        bucket = load_environment("local", env["MLPLATFORM_CONFIG"]).bucket_name
        storage = {k: v for k, v in kit_env.items() if k.startswith("AWS_") or "S3" in k}
        stock_server_env = {
            **base,
            **storage,
            "MLFLOW_BACKEND_STORE_URI": stock_database(state),
        }
        stock_log = open(state / "stock-mlflow.log", "wb")  # noqa: SIM115 - closed below
        stock = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "mlflow",
                "server",
                "--host",
                "127.0.0.1",
                "--port",
                str(STOCK_PORT),
                "--artifacts-destination",
                f"s3://{bucket}/stock-artifacts",
                "--uvicorn-opts",
                "--http h11 --loop asyncio",
            ],
            env=stock_server_env,
            stdout=stock_log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        try:
            wait_answering(
                f"http://127.0.0.1:{STOCK_PORT}/health", stock, state / "stock-mlflow.log"
            )
            clients = {
                "kit": {**base, **kit_env},
                "stock": {
                    **base,
                    **storage,
                    "MLFLOW_TRACKING_URI": f"http://127.0.0.1:{STOCK_PORT}",
                },
            }
            results: dict[str, dict[str, float]] = {"kit": {}, "stock": {}}
            for name in loads:
                for side in ("kit", "stock"):
                    print(f"{name} on {side} ...", file=sys.stderr, flush=True)
                    results[side].update(run_load(name, side, clients[side], args))
            status = json.loads(kit(env, "status", "--json"))
            results["kit"]["server memory MiB"] = group_rss_mib(
                os.getpgid(status["services"]["mlflow"]["pid"])
            )
            results["stock"]["server memory MiB"] = group_rss_mib(stock.pid)
        finally:
            if stock.poll() is None:
                os.killpg(stock.pid, signal.SIGTERM)
                stock.wait(60)
            stock_log.close()
    print("| figure | kit | stock | kit/stock |\n|---|---|---|---|")
    for figure, value in results["kit"].items():
        other = results["stock"][figure]
        ratio = round(value / other, 2) if other else float("nan")
        print(f"| {figure} | {value} | {other} | {ratio} |")
    print(json.dumps(results))


if __name__ == "__main__":
    main()
