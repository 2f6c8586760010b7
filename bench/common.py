"""Shared helpers for the benchmarks: a private stack (own ports and state folder) and `invoke`."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from mlplatform.errors import ServiceStartError  # noqa: E402
from mlplatform.readiness import http_ok, wait_until  # noqa: E402
from tests.integration.conftest import write_config  # noqa: E402

# s3: not 28433, which is the integration-test stack's S3 store (18433) + 10000.
PORTS = {"mlflow": 25000, "s3": 29433, "aws": 24566, "database": 23307}
EMULATED = {"staging": 25200, "prod": 25100}


def run_concurrently(work: Callable[[], None], clients: int) -> float:
    """Run `work` in `clients` threads at once; the wall time until the last one ends."""
    threads = [threading.Thread(target=work) for _ in range(clients)]
    start = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return time.perf_counter() - start


def wait_answering(
    url: str, proc: subprocess.Popen[bytes], log: Path | None = None, timeout: float = 180
) -> None:
    """Until GET `url` answers 2xx; exit with the reason (and log tail) if `proc` dies first."""
    try:
        wait_until(
            lambda: http_ok(url),
            service=f"the server behind {url}",
            timeout=timeout,
            log=log,
            alive=lambda: proc.poll() is None,
            interval=0.2,
        )
    except ServiceStartError as exc:
        raise SystemExit(f"{exc}\n{exc.log_tail}".rstrip()) from None


def kit(env: dict[str, str], *args: str) -> str:
    """Run `invoke ARGS` for the benchmark's stack; exit with its error if it fails."""
    inherited = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "MLFLOW_"))}
    out = subprocess.run(
        [sys.executable, "-m", "invoke", *args],
        cwd=REPO,
        env={**inherited, **env},
        check=False,
        capture_output=True,
        text=True,
    )
    if out.returncode != 0:
        raise SystemExit(f"invoke {' '.join(args)} failed: {out.stderr.strip()[-500:]}")
    return out.stdout


@contextmanager
def private_stack(mlflow_workers: int | None = None) -> Iterator[dict[str, str]]:
    """A stack of its own for the benchmark, taken down (data deleted) afterwards.

    `mlflow_workers` replaces the local environment's `[local.mlflow] workers` (to measure it).
    """
    home = Path(tempfile.mkdtemp(prefix="mlp-bench-"))
    config = write_config(home / "environments.toml", PORTS, EMULATED)
    if mlflow_workers is not None:
        text = config.read_text(encoding="utf-8")
        start = text.index("[local.mlflow]")
        at = text.index("workers = ", start)
        end = text.index("\n", at)
        config.write_text(f"{text[:at]}workers = {mlflow_workers}{text[end:]}", encoding="utf-8")
    env = {"MLPLATFORM_HOME": str(home / "state"), "MLPLATFORM_CONFIG": str(config)}
    try:
        kit(env, "up")
        yield env
    finally:
        kit(env, "down")
        shutil.rmtree(home, ignore_errors=True)
