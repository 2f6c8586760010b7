"""`python -m scoring_server serve`: MLflow's scoring server on SageMaker's inference contract.

SageMaker starts an endpoint's container as `docker run IMAGE serve`, with the model archive
unpacked under /opt/ml/model, and sends GET /ping and POST /invocations to port 8080 (or to
SAGEMAKER_BIND_TO_PORT). `invoke serve` runs this same entrypoint on the host with the same
unpacked model.tar.gz, so what is tested locally and what the endpoint runs differ only in the
arguments below. The server is MLflow's own (`mlflow models serve --env-manager local`): the
model runs in the environment of the image (or the kit), which is the training lock, never one
installed at start (an endpoint in a private subnet has no package index to install from).
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

MODEL_DIR = Path("/opt/ml/model")  # where SageMaker unpacks model.tar.gz
PORT = 8080
# `mlflow models serve` runs the uvicorn CLI, which reads its options from UVICORN_*: its default
# HTTP parser answers every request on a kept-alive connection (how SageMaker calls an endpoint)
# ~45 ms late, and a second worker made that the common case (docs/performance.md).
UVICORN_ENVIRONMENT = {"UVICORN_HTTP": "httptools", "UVICORN_LOOP": "uvloop"}


def scoring_argv(model_dir: Path, host: str, port: int, workers: int) -> list[str]:
    """The argv of MLflow's scoring server for an unpacked model."""
    return [
        sys.executable,
        "-m",
        "mlflow",
        "models",
        "serve",
        "-m",
        str(model_dir),
        "-h",
        host,
        "-p",
        str(port),
        "-w",
        str(workers),
        "--env-manager",
        "local",
    ]


def main(argv: list[str] | None = None) -> int:
    """Parse `serve` and its options (SageMaker's defaults), check the model, exec the server."""
    parser = argparse.ArgumentParser(prog="python -m scoring_server")
    sub = parser.add_subparsers(dest="command", required=True)
    serve = sub.add_parser("serve", help="serve the model under --model-dir on /ping, /invocations")
    serve.add_argument("--model-dir", type=Path, default=MODEL_DIR)
    # Inside a container the engine maps the port; the kit passes 127.0.0.1 on the host.
    serve.add_argument("--host", default="0.0.0.0")
    serve.add_argument(
        "--port", type=int, default=int(os.environ.get("SAGEMAKER_BIND_TO_PORT", PORT))
    )
    serve.add_argument(
        "--workers",
        type=int,
        default=int(os.environ.get("MLFLOW_MODELS_WORKERS", os.cpu_count() or 1)),
    )
    args = parser.parse_args(argv)
    if not (args.model_dir / "MLmodel").is_file():
        print(f"scoring_server: no MLflow model (MLmodel) in {args.model_dir}", file=sys.stderr)
        return 2
    # mlflow models serve starts uvicorn by name: the interpreter's bin must be on PATH.
    bin_dir = str(Path(sys.executable).parent)
    os.environ["PATH"] = os.pathsep.join([bin_dir, os.environ.get("PATH", "")])
    os.environ.update(UVICORN_ENVIRONMENT)
    # exec, so the container's (or the kit's) stop signal reaches the server itself.
    cmd = scoring_argv(args.model_dir, args.host, args.port, args.workers)
    os.execv(cmd[0], cmd)  # noqa: S606 - the argv is ours, no shell involved
    return 0  # not reached


if __name__ == "__main__":
    sys.exit(main())
