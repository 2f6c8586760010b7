"""Time an in-process synth (build_app + synth, cdk-nag on) of each environment.

    JSII_NODE=node_modules/.bin/node .venv/bin/python -m infra.synth_timing [ENV ...]

Uses a syntactically valid test digest and certificate ARN, like the test fixtures; the numbers
go into docs/infra.md. Nothing here runs in a deploy.
"""

from __future__ import annotations

import sys
import tempfile
import time

import aws_cdk as cdk

from infra.app import build_app
from mlplatform.config import load_environments
from mlplatform.release.cdk_context import CONTEXT_CERTIFICATE_ARN, CONTEXT_IMAGE_DIGEST

__all__ = ["main", "time_synth"]


def time_synth(name: str) -> float:
    """Seconds to build and synthesize environment ``name`` into a temporary directory."""
    envs = load_environments()
    env = envs[name]
    context = {
        "env": name,
        CONTEXT_IMAGE_DIGEST: "sha256:" + "ab" * 32,
        CONTEXT_CERTIFICATE_ARN: (
            f"arn:aws:acm:{env.region}:{env.account}:certificate/"
            "11111111-2222-3333-4444-555555555555"
        ),
    }
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as outdir:
        build_app(envs, cdk.App(outdir=outdir, context=context)).synth()
    return time.perf_counter() - started


def main(argv: list[str] | None = None) -> None:
    """Print one line per environment: name and seconds."""
    names = (argv if argv is not None else sys.argv[1:]) or list(load_environments())
    for name in names:
        print(f"{name}\t{time_synth(name):.2f} s")


if __name__ == "__main__":
    main()
