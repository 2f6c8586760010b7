"""Shared fixtures of the infra tests: one synth per environment per session.

Every environment of the repository's environments.toml is synthesized once (with cdk-nag and
CDK's own validation on; staging through the pinned CDK CLI, the others in-process through
build_app, which is the same code the CLI runs), plus one "sandbox" variant that
switches the optional features the real environments leave off (plain HTTP, internet-facing
ALB, MariaDB, a NAT gateway, two alarm e-mails).
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[3]
# jsii runs the CDK in a Node child process started on first import of aws_cdk. Prefer the
# Node 22 pinned in package.json (node_modules/.bin/node) over an older system Node; an explicit
# JSII_NODE from the caller wins. This selects a runtime, it is not test state.
_PINNED_NODE = REPO_ROOT / "node_modules" / ".bin" / "node"
if _PINNED_NODE.exists():
    os.environ.setdefault("JSII_NODE", str(_PINNED_NODE))

import aws_cdk as cdk  # noqa: E402
import pytest  # noqa: E402
from aws_cdk import assertions  # noqa: E402

from infra.app import build_app  # noqa: E402
from mlplatform.config import Environment, load_environments  # noqa: E402
from mlplatform.release.cdk_cli import synth  # noqa: E402
from mlplatform.release.cdk_context import CONTEXT_CERTIFICATE_ARN, CONTEXT_IMAGE_DIGEST  # noqa: E402
from mlplatform.roster import Roster  # noqa: E402

# Test-only values handed in as CDK context, the way a deploy hands in the real ones. The app
# itself has no placeholder digest: without one, synth fails (tested in test_app.py).
TEST_DIGEST = "sha256:" + "ab" * 32
ENV_NAMES = tuple(load_environments(REPO_ROOT / "environments.toml"))
CLI_ENV = "staging"
STACK_PARTS = ("network", "data", "mlflow", "sagemaker", "monitoring")


def test_certificate_arn(env: Environment) -> str:
    """A syntactically valid ACM ARN in the environment's own account and region."""
    return (
        f"arn:aws:acm:{env.region}:{env.account}:certificate/11111111-2222-3333-4444-555555555555"
    )


test_certificate_arn.__test__ = False  # type: ignore[attr-defined]  # not a test, despite its name


def sandbox_environment() -> Environment:
    """staging with every optional switch flipped, validated like a real table."""
    base = load_environments(REPO_ROOT / "environments.toml")["staging"].model_dump()
    base["name_prefix"] = "mlp-sandbox"
    base["mlflow"].update(
        allow_http=True, certificate_arn=None, internal=False, domain_name="mlflow.sandbox.example"
    )
    base["database"].update(engine="mariadb", version="10.11")
    base["network"].update(nat_gateways=1)
    base["monitoring"].update(alarm_emails=["ml-oncall@example.com", "ml-platform@example.com"])
    return Environment.model_validate(base)


@dataclass
class Synthesized:
    """One environment's app after synth: the app, its cloud assembly directory, parsed files."""

    settings: Environment
    outdir: Path
    _templates: dict[str, assertions.Template] = field(default_factory=dict)

    def template_json(self, part: str) -> dict:
        """The synthesized template of stack ``part`` (network, data, mlflow, ...) as JSON."""
        return json.loads(
            (self.outdir / f"{self.settings.name_prefix}-{part}.template.json").read_text()
        )

    def template(self, part: str) -> assertions.Template:
        """An assertions.Template of stack ``part``, built once."""
        if part not in self._templates:
            self._templates[part] = assertions.Template.from_json(self.template_json(part))
        return self._templates[part]

    def template_path(self, part: str) -> Path:
        return self.outdir / f"{self.settings.name_prefix}-{part}.template.json"

    def report(self) -> dict:
        """CDK's policy validation report (cdk-nag and CloudFormation Validate)."""
        return json.loads((self.outdir / "validation-report.json").read_text())


def synthesize(
    env: Environment,
    outdir: Path,
    context: dict | None = None,
    mutate: Callable[[cdk.App], None] | None = None,
    roster: Roster | None = None,
) -> Synthesized:
    """Build ``env`` with build_app and synth it into ``outdir`` (validation plugins included).

    ``mutate`` changes the built app before synth, for tests that prove a gate catches a break.
    """
    ctx = {CONTEXT_IMAGE_DIGEST: TEST_DIGEST}
    if env.mlflow.certificate_arn is None and not env.mlflow.allow_http:
        ctx[CONTEXT_CERTIFICATE_ARN] = test_certificate_arn(env)
    ctx.update(context or {})
    app = cdk.App(outdir=str(outdir), context=ctx)
    build_app({env.name: env}, app, roster)
    if mutate is not None:
        mutate(app)
    app.synth()
    return Synthesized(settings=env, outdir=outdir)


def synthesize_with_cli(env: Environment, outdir: Path) -> Synthesized:
    """Synth through mlplatform.release.cdk_cli, i.e. the pinned CDK CLI, as `invoke synth` does."""
    synth(
        env,
        image_digest=TEST_DIGEST,
        certificate_arn=None if env.mlflow.allow_http else test_certificate_arn(env),
        output=outdir,
    )
    return Synthesized(settings=env, outdir=outdir)


class _Cache:
    def __init__(self, factory: pytest.TempPathFactory) -> None:
        self._factory = factory
        self._done: dict[str, Synthesized] = {}

    def get(self, name: str) -> Synthesized:
        if name not in self._done:
            env = (
                sandbox_environment()
                if name == "sandbox"
                else load_environments(REPO_ROOT / "environments.toml")[name]
            )
            outdir = self._factory.mktemp(f"cdk-{name}")
            shutil.rmtree(outdir)
            # staging goes through the real CLI entry point (same code, plus the CLI's checks:
            # a context lookup there would need AWS credentials and fail); the others in-process.
            make = synthesize_with_cli if name == CLI_ENV else synthesize
            self._done[name] = make(env, outdir)
        return self._done[name]


@pytest.fixture(scope="session")
def synthesized(tmp_path_factory: pytest.TempPathFactory) -> _Cache:
    """Session cache: ``synthesized.get("prod")`` synthesizes prod on first use only."""
    return _Cache(tmp_path_factory)


@pytest.fixture(params=ENV_NAMES)
def each_env(request: pytest.FixtureRequest, synthesized: _Cache) -> Synthesized:
    """Every environment of environments.toml, one synth each per session."""
    return synthesized.get(request.param)


@pytest.fixture(params=[*ENV_NAMES, "sandbox"])
def each_variant(request: pytest.FixtureRequest, synthesized: _Cache) -> Synthesized:
    """Every environment plus the sandbox variant with the optional switches flipped."""
    return synthesized.get(request.param)


@pytest.fixture
def sandbox(synthesized: _Cache) -> Synthesized:
    """The sandbox variant (HTTP only, internet-facing, MariaDB, NAT, two alarm e-mails)."""
    return synthesized.get("sandbox")


@pytest.fixture
def staging(synthesized: _Cache) -> Synthesized:
    return synthesized.get("staging")


@pytest.fixture
def prod(synthesized: _Cache) -> Synthesized:
    return synthesized.get("prod")
