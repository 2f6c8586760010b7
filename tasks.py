"""Invoke tasks: parse flags, call mlplatform/, print. No logic lives here.

Run them through ./kit, which builds .venv first: `./kit up`, `./kit status --json`.
"""

from __future__ import annotations

import functools
import inspect
import json
import os
import shlex
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict
from pathlib import Path
from typing import Any

import invoke
from invoke import Collection, Exit

from mlplatform.config import REPO_ROOT, load_environment, load_environments
from mlplatform.console import RichReporter, console, err_console
from mlplatform.errors import PlatformError
from mlplatform.local.lifecycle import (
    bring_up,
    client_environment,
    open_runtime,
    recorded_runtime,
    service_logs,
    take_down,
)
from mlplatform.paths import state_paths
from mlplatform.toolchain import system_deps


def task(*args: Any, **kwargs: Any) -> Any:
    """Invoke's `@task`, with every argument a flag (`--env prod`, never `prod`).

    Invoke takes an argument without a default by position, so `./kit synth --help` read
    `--help` as the environment's name. Here none is positional, and a required flag that was
    not given is one line naming it.
    """

    def decorate(body: Callable[..., Any]) -> Any:
        signature = inspect.signature(body)
        params = list(signature.parameters.values())[1:]
        required = [p.name for p in params if p.default is p.empty]
        # Invoke casts a flag to its default's type and a bad value ends in a traceback: whole
        # numbers are taken as text here and converted with a one-line error instead.
        numbers = {p.name for p in params if type(p.default) is int}

        @functools.wraps(body)
        def run(c: Any, *a: Any, **kw: Any) -> Any:
            missing = [name for name in required if kw.get(name) is None]
            if missing:
                raise Exit(f"error: --{_flag(missing[0])} is required", code=1)
            for name in numbers & set(kw):
                try:
                    kw[name] = int(kw[name])
                except ValueError:
                    raise Exit(
                        f"error: --{_flag(name)} takes a whole number, got {kw[name]!r}", code=1
                    ) from None
            return body(c, *a, **kw)

        run.__signature__ = signature.replace(  # type: ignore[attr-defined]
            parameters=[
                p.replace(default=str(p.default)) if p.name in numbers else p
                for p in signature.parameters.values()
            ]
        )
        return invoke.task(positional=[], **kwargs)(run)

    if len(args) == 1 and callable(args[0]) and not kwargs:
        return decorate(args[0])
    return decorate


def _flag(name: str) -> str:
    """A parameter's flag as typed: `json_` -> `json`, `image_digest` -> `image-digest`."""
    return name.strip("_").replace("_", "-")


@contextmanager
def _errors(reporter: RichReporter | None = None) -> Iterator[None]:
    """Turn library errors into a one-line message and exit code 1 (no traceback)."""
    try:
        yield
    except PlatformError as exc:
        raise Exit(f"error: {exc}", code=1) from None
    except KeyboardInterrupt:
        raise Exit("interrupted", code=130) from None
    except Exception as exc:
        # An AWS call the library did not wrap (no credentials, no endpoint): still one line.
        if not type(exc).__module__.startswith("botocore."):
            raise
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise Exit(f"error: AWS: {first}{_AWS_HINTS.get(type(exc).__name__, '')}", code=1) from None
    finally:
        if reporter is not None:
            reporter.close()


_AWS_HINTS = {
    "NoCredentialsError": " (AWS credentials for a real account; for an emulated one, "
    'eval "$(./kit env --env ENV)")',
    "EndpointConnectionError": " (is the emulation running? ./kit emulate --env ENV --account)",
}


def _percent(value, flag: str) -> float:  # type: ignore[no-untyped-def]
    """A number from the command line, or a one-line error naming the flag."""
    try:
        return float(value)
    except (TypeError, ValueError):
        raise Exit(f"error: {flag} takes a number, got {value!r}", code=1) from None


def _target(name: str):  # type: ignore[no-untyped-def]
    """The environment a task works on, resolved once (mlplatform.target)."""
    from mlplatform.target import resolve_target

    return resolve_target(name)


def _runtime(requested: str = "auto"):  # type: ignore[no-untyped-def]
    """The local target and the runtime that holds (or will hold) its stack."""
    local = _target("local")
    return local, open_runtime(local.env, local.paths, requested)


@task(help={"runtime": "auto (default: the running one, else native), native or compose"})
def up(c, runtime="auto"):
    """Bring the local stack up: database, S3 store, AWS emulator, MLflow. Safe to run twice."""
    from mlplatform.doctor import require_ready

    reporter = RichReporter()
    with _errors(reporter):
        local, rt = _runtime(runtime)
        require_ready(local)
        status = bring_up(rt, local.paths, reporter)
        creds_env = client_environment(local.env, local.paths)
    unhealthy = [s.name for s in status.services if not s.healthy]
    if unhealthy:
        raise Exit(f"error: not healthy after up: {', '.join(unhealthy)}; see `invoke logs`", 1)
    console.print(
        f"\nMLflow UI: [bold]{creds_env['MLFLOW_TRACKING_URI']}[/bold]  (runtime: {status.runtime})"
    )
    console.print(
        f"Log in as [bold]{creds_env['MLFLOW_TRACKING_USERNAME']}[/bold]; "
        "the password is printed by `./kit env` (MLFLOW_TRACKING_PASSWORD)."
    )
    console.print('Use the stack from a shell: eval "$(./kit env)"')


@task(help={"json": "print a JSON object: ok, checks (name, status, detail)"})
def doctor(c, json_=False):
    """Check this machine for the kit: Python, tools, Node, engine, database, ports, disk, AWS.

    One line per check with what to do; exit 1 when a check the local stack needs failed.
    """
    from mlplatform.doctor import diagnose
    from mlplatform.target import resolve_targets

    with _errors():
        names = [name for name in load_environments() if name != "local"]
        local, *clouds = resolve_targets("local", *names)
        report = diagnose(local, clouds)
    if json_:
        print(json.dumps(report.as_json(), indent=2))
    else:
        marks = {
            "ok": "[green]ok[/green]  ",
            "warn": "[yellow]warn[/yellow]",
            "fail": "[red]fail[/red]",
        }
        for check in report.checks:
            console.print(f"{marks[check.status]}  {check.name:<17} {check.detail}")
    if not report.ok:
        raise Exit(code=1)


@task(help={"volumes": "also delete the stack's data and generated credentials"})
def down(c, volumes=False):
    """Stop the local stack (every process group). Does nothing when it is not up."""
    reporter = RichReporter()
    with _errors(reporter):
        from mlplatform.emulator.environment import stop_emulations

        local, rt = _runtime()
        emulations = stop_emulations(local, reporter, volumes=volumes)
        stopped = emulations + take_down(rt, local.paths, reporter, volumes=volumes)
    if not stopped and not volumes:
        console.print("nothing was running")


@task(help={"json": "print a JSON object with runtime and services (url, healthy)"})
def status(c, json_=False):
    """Show each service of the local stack, its URL and whether its health check passes."""
    with _errors():
        rt = _runtime()[1]
        result = rt.status()
    if json_:
        print(json.dumps(result.as_json(), indent=2))
        return
    from rich.table import Table

    table = Table(title=f"local stack ({result.runtime} runtime)")
    for col in ("service", "state", "healthy", "url"):
        table.add_column(col)
    for s in result.services:
        table.add_row(
            s.name, s.state, "[green]yes[/green]" if s.healthy else "[red]no[/red]", s.url
        )
    console.print(table)
    for w in result.warnings:
        console.print(f"[yellow]![/yellow] {w}")


@task(
    help={
        "service": "database, s3, aws or mlflow (default: all)",
        "follow": "keep printing new lines (with --service)",
    }
)
def logs(c, service=None, follow=False):
    """Print the recent log lines of one service (-s NAME) or of all, optionally following."""
    with _errors():
        for name, line in service_logs(_runtime()[1], service, follow):
            print(line if service else f"{name} | {line}", flush=True)


@task(
    help={
        "env": "local (default) or an emulated cloud environment (staging, prod)",
        "user": "log in to MLflow as this user (its login from Secrets Manager), not the admin",
    }
)
def env(c, env="local", user=None):
    """Print export lines for a shell: eval "$(./kit env)" (or --env prod for its emulation)."""
    from mlplatform.emulator.environment import Emulation
    from mlplatform.target import resolve_targets

    with _errors():
        target, local = resolve_targets(env, "local")
        emulation = None if target.is_local else Emulation(target, local)
        if emulation is None:
            values = client_environment(local.env, local.paths)
        else:
            values = emulation.client_environment()
        if user is not None:
            from mlplatform.teams.users import login_variables

            if emulation is None:
                sm, url = target.client("secretsmanager"), values["MLFLOW_TRACKING_URI"]
            else:
                sm, url = emulation.aws_client("secretsmanager"), emulation.mlflow_url
            values.update(login_variables(target, sm, url, user))
    for key, value in values.items():
        print(f"export {key}={shlex.quote(value)}")


@task(
    help={
        "env": "environment whose bucket receives the channels (default local)",
        "model": "model whose source generates the data (default: the environment's only one)",
    }
)
def data(c, env="local", model=None):
    """Generate a model's training channels with its source's generator and upload them to S3."""
    from mlplatform.runners.train import upload_data

    reporter = RichReporter()
    with _errors(reporter):
        uploads = upload_data(_target(env), model, reporter)
    for u in uploads:
        state = "uploaded" if u.changed else "unchanged"
        console.print(f"{u.channel:<11} {u.uri}  sha256 {u.sha256[:12]}…  {state}")


def _count(text: object) -> int:
    """--instance-count as a number; one line (TrainingError) when it is not one."""
    from mlplatform.errors import TrainingError

    try:
        return int(str(text))
    except ValueError:
        raise TrainingError(f"--instance-count expects a number, got {text!r}") from None


@task(
    iterable=["set_"],
    help={
        "model": "model to train, from its configured source (default: the environment's only one)",
        "source": "train this source folder (default: the model's configured source)",
        "runner": "native (default), local-container or sagemaker",
        "env": "environment to train in (default local)",
        "set_": "hyperparameter override key=value (repeatable)",
        "json": "print a JSON object with run_id, model_name and model_version",
        "image_digest": "sagemaker runner: the training image's digest in ECR (default: the "
        "one the last `invoke deploy` released)",
        "wait": "sagemaker runner: wait for the job to finish (default; --no-wait submits only)",
        "instance_count": "sagemaker runner: instances for this job (default: the model's "
        "[E.models.NAME.compute] instance_count)",
    },
)
def train(
    c,
    model=None,
    source=None,
    runner="native",
    env="local",
    set_=None,
    json_=False,
    image_digest=None,
    wait=True,
    instance_count=None,
):
    """Train a model from its source, log it to MLflow and register it as the `challenger`."""
    from mlplatform.runners.train import TrainOptions
    from mlplatform.runners.train import train as run_training
    from mlplatform.sources import model_source

    reporter = RichReporter()
    with _errors(reporter):
        target = _target(env)
        count = None if instance_count is None else _count(instance_count)
        options = TrainOptions(
            model,
            runner,
            tuple(set_ or ()),
            image_digest=image_digest,
            wait=wait,
            source=source,
            instance_count=count,
        )
        result = run_training(target, options, reporter)
    if json_:
        print(json.dumps(asdict(result)))
        return
    console.print(
        f"run [bold]{result.run_id}[/bold] → {result.model_name} version "
        f"[bold]{result.model_version}[/bold] (alias challenger)"
    )
    gate = model_source(target.env, result.model_name).gate.metric
    if gate in result.metrics:
        console.print(f"{gate} {result.metrics[gate]:.4f} (the gate's metric)")
    if target.is_local:
        ui = f"http://127.0.0.1:{target.env.ports.mlflow}"
        console.print(f"{ui}/#/models/{result.model_name}/versions/{result.model_version}")
    only = len(target.env.models) == 1
    console.print(
        "promote it with: ./kit champion" + ("" if only else f" --model {result.model_name}")
    )


_USER_HELP = (
    "act as this MLflow user, its login from Secrets Manager (default: MLPLATFORM_USER, else "
    "the admin); recorded in the tags written"
)


def _operator(user: str | None) -> str | None:
    """Who a registry task acts as: --user, else MLPLATFORM_USER, else None (the admin)."""
    return user or os.environ.get("MLPLATFORM_USER") or None


@task(
    help={
        "model": "registered model name (default: the environment's only model)",
        "env": "environment (default local)",
        "user": _USER_HELP,
        "json": "print the decision as JSON",
    }
)
def champion(c, model=None, env="local", user=None, json_=False):
    """Promotion gate: move `champion` to the challenger if its metric is at least as good."""
    from mlplatform.runners.train import champion as run_gate

    with _errors():
        decision = run_gate(_target(env), model, _operator(user))
    if json_:
        print(json.dumps(decision.as_json()))
        return
    verdict = "[green]promoted[/green]" if decision.promoted else "[yellow]not promoted[/yellow]"
    console.print(
        f"{decision.model_name} version {decision.model_version}: {verdict} ({decision.reason})"
    )


@task(
    help={
        "model": "registered model name (default: the environment's only model)",
        "version": "the registered version to rebuild",
        "env": "environment whose registry holds the version (local)",
        "runner": "how to rebuild: native (the only runner reproduce has so far)",
        "json": "print the report as JSON: items (name, recorded, rebuilt, verdict), verdict",
    }
)
def reproduce(c, version, model=None, env="local", runner="native", json_=False):
    """Rebuild a registered version from its lineage and compare it item by item with the record.

    Exits 1 when an item differs beyond [E.training] reproduce_tolerance, and refuses in one
    line a version whose code, data, packages or hyperparameters cannot be had again. Ctrl-C or
    SIGTERM stop the rebuild's training job and remove its worktree (exit 130, 143).
    """
    from rich.table import Table

    from mlplatform.reproduce import reproduce as rebuild
    from mlplatform.serving.local import StopSignal, stop_signals_interrupt

    reporter = RichReporter()
    with _errors(reporter):
        try:
            # SIGTERM unwinds as Ctrl-C does: the training job stopped, the worktree removed.
            with stop_signals_interrupt():
                report = rebuild(_target(env), model, str(version), reporter, runner)
        except StopSignal as exc:
            raise Exit(f"reproduce stopped ({exc}); nothing registered", exc.exit_code) from None
    if json_:
        print(json.dumps(report.as_json()))
    else:
        table = Table(
            title=f"{report.model} version {report.version}, rebuilt as run {report.rebuilt_run_id}"
        )
        for column in ("item", "recorded", "rebuilt", "verdict"):
            table.add_column(column)
        colour = {"identical": "green", "within tolerance": "yellow", "different": "red"}
        for item in report.items:
            verdict = f"[{colour[item.verdict]}]{item.verdict}[/{colour[item.verdict]}]"
            table.add_row(item.name, item.recorded, item.rebuilt, verdict)
        console.print(table)
        console.print(f"verdict: {report.verdict} (tolerance {report.tolerance:g})")
    if report.verdict == "different":
        differ = sum(item.verdict == "different" for item in report.items)
        raise Exit(
            f"error: {report.model} version {report.version} did not reproduce: {differ} "
            f"item(s) differ beyond the tolerance",
            code=1,
        )


@task(
    iterable=["image", "model"],
    help={
        "image": "mlflow, training or serving (repeat for several; default: all three)",
        "env": "whose models' sources the training and serving images are built for (local)",
        "model": "only this model's source (repeat for several; default: every configured one)",
        "no-cache": "rebuild every layer (shows the build is reproducible: same digest)",
        "json": "print a JSON object: image name -> tag, digest, archive",
    },
)
def build(c, image=None, env="local", model=None, no_cache=False, json_=False):
    """Build the images AWS runs reproducibly and print their digests.

    MLflow's, and a training and a serving image for each configured model's source
    (training-<source>, serving-<source>). Podman or Docker, whichever answers. The OCI archives
    land in the state folder's images/; `invoke deploy` pushes those bytes.
    """
    from mlplatform.images.build import build_images, image_specs
    from mlplatform.images.engine import find_engine
    from mlplatform.sources.manifest import configured_sources

    reporter = RichReporter()
    with _errors(reporter):
        sources = configured_sources(_target(env).env, list(model or []))
        specs = image_specs(list(image or []), list(sources.values()))
        built = build_images(specs, find_engine(), state_paths().ensure(), reporter, no_cache)
    if json_:
        print(json.dumps({b.name: b.as_json() for b in built}, indent=2))
        return
    for b in built:
        console.print(f"{b.name:<18} {b.digest}  {b.archive}")


@task(
    help={
        "model": "registered model name (default: the environment's only model)",
        "alias": "alias to serve (default champion)",
        "version": "serve this version number instead of an alias",
        "port": "port on 127.0.0.1 (default 8080)",
        "workers": "scoring server workers (default 1: see docs/serving-and-promotion.md)",
        "container": "run the serving image (invoke build) as SageMaker runs it, not this host",
    }
)
def serve(c, model=None, alias="champion", version=None, port=8080, workers=1, container=False):
    """Serve a registry version locally with SageMaker's contract (/ping, /invocations).

    --container runs the endpoint's own image with the model.tar.gz mounted at /opt/ml/model.

    Ctrl-C stops it (exit 0); SIGTERM or SIGHUP stop it the same way, server group and all, and
    exit 128 + the signal (143, 129) so a process manager sees the signal ended it.
    """
    from mlplatform.serving.local import ServeRequest, StopSignal, serve_local

    def ready(packaged, url):  # type: ignore[no-untyped-def]
        console.print(
            f"serving {packaged.name} version {packaged.version} at [bold]{url}[/bold]"
            f" (model.tar.gz sha256 {packaged.sha256[:16]}…); Ctrl-C stops"
        )
        sys.stdout.flush()

    reporter = RichReporter()
    with _errors(reporter):
        try:
            request = ServeRequest(model, alias, version, int(port), int(workers), container)
            serve_local(_target("local"), request, ready, reporter)
        except StopSignal as exc:
            console.print(f"endpoint stopped ({exc})")
            raise Exit(code=exc.exit_code) from None
        except KeyboardInterrupt:
            console.print("endpoint stopped")


@task(
    help={
        "env": "cloud environment to emulate: staging or prod (default prod)",
        "down": "stop the emulated environment instead",
        "volumes": "with --down, also forget its credentials and state",
        "account": "an emulated AWS account of its own to `invoke deploy` to: CDK-bootstrapped, "
        "with a certificate for the MLflow domain",
    }
)
def emulate(c, env="prod", down=False, volumes=False, account=False):
    """Emulate a cloud environment beside the local stack: its registry, secrets and bucket.

    With --account, the environment's own emulated AWS account (strict IAM), ready for
    `invoke deploy --env E`; its registry starts when the deploy gives the service an image.
    """
    from mlplatform.emulator.environment import Emulation
    from mlplatform.target import resolve_targets

    reporter = RichReporter()
    with _errors(reporter):
        emulation = Emulation(*resolve_targets(env, "local"))
        if down:
            stopped = emulation.down(volumes)
            console.print(f"emulated {env} {'stopped' if stopped else 'was not running'}")
            return
        emulation.up(reporter, account=account)
        variables = emulation.client_environment()
    console.print(f'Use it from a shell: eval "$(./kit env --env {env})"')
    for key, value in variables.items():
        if "SECRET" not in key:
            console.print(f"  {key}={value}")


@task(
    help={
        "model": "registered model name (default: the source environment's only model)",
        "version": "version number in the source registry",
        "to": "target environment (staging or prod)",
        "from_": "source environment (default local)",
        "user": _USER_HELP + " (the same user in both registries)",
        "json": "print model_name, source_version, target_version, target_env, verified",
    }
)
def promote(c, version, to, model=None, from_="local", user=None, json_=False):
    """Copy a model version to another environment's registry, verified against a manifest."""
    from mlplatform.release.model import promote_version
    from mlplatform.target import resolve_targets

    reporter = RichReporter()
    with _errors(reporter):
        source, target = resolve_targets(from_, to)
        result = promote_version(source, target, model, str(version), reporter, _operator(user))
    if json_:
        print(json.dumps(result.as_json()))
        return
    state = "registered" if result.created else "already there as"
    console.print(
        f"{result.model_name} version {result.source_version} ({from_}) → {state} "
        f"version {result.target_version} in {result.target_env}; every file verified"
    )


@task(
    name="deploy-endpoint",
    help={
        "env": "cloud environment (staging or prod)",
        "strategy": "all-at-once, canary or linear (default from environments.toml)",
        "challenger": "percent of traffic for the challenger variant (default from config)",
        "image": "MLflow serving image, ECR URI by digest (default from config)",
        "model": "model whose endpoint to deploy (default: the environment's only model)",
        "json": "print the outcome as JSON",
    },
)
def deploy_endpoint(c, env, strategy=None, challenger=None, image=None, model=None, json_=False):
    """Deploy a model's champion (and challenger) to its SageMaker endpoint in the environment."""
    from mlplatform.serving.endpoints import EndpointRequest, deploy

    reporter = RichReporter()
    with _errors(reporter):
        percent = None if challenger is None else _percent(challenger, "--challenger")
        request = EndpointRequest(strategy, percent, image, model)
        outcome, plans = deploy(_target(env), request, reporter)
    if json_:
        print(json.dumps({**asdict(outcome), "variants": [asdict(p) for p in plans]}))


@task(
    help={
        "env": "cloud environment",
        "challenger": "percent of traffic for the challenger",
        "model": "model whose endpoint to shift (default: the environment's only model)",
    }
)
def traffic(c, env, challenger, model=None):
    """Shift traffic between a model's champion and challenger variants without redeploying."""
    from mlplatform.serving.endpoints import traffic as shift

    with _errors():
        weights = shift(_target(env), _percent(challenger, "--challenger"), model)
    console.print(", ".join(f"{k} {v:g}%" for k, v in weights.items()))


@task(
    help={
        "env": "cloud environment",
        "model": "model whose endpoint to roll back (default: the environment's only model)",
    }
)
def rollback(c, env, model=None):
    """Return a model's endpoint to the configuration it had before the last deploy."""
    from mlplatform.serving.endpoints import rollback_endpoint

    with _errors():
        current, previous = rollback_endpoint(_target(env), model)
    console.print(f"rolled back: {current} -> {previous}")


@task(
    help={
        "env": "cloud environment",
        "model": "show only this model's endpoint (default: every configured model's)",
        "json": "print the variants as JSON",
    }
)
def endpoints(c, env, model=None, json_=False):
    """Show each model's endpoint: status, and each variant's version, weight and instances."""
    from mlplatform.serving.endpoints import status

    with _errors():
        rows = status(_target(env), model)
    if json_:
        print(json.dumps(rows))
        return
    from rich.table import Table

    columns = ("endpoint", "status", "variant", "model", "model_version", "weight", "instances")
    table = Table(title=f"endpoints of {env}")
    for col in columns:
        table.add_column(col)
    for r in rows:
        table.add_row(*(str(r.get(k, "")) for k in columns))
    console.print(table)


@task(
    help={
        "env": "local (default: `invoke serve` on --port) or a cloud environment's endpoint",
        "input": "file with the request body, - for standard input (default -)",
        "content_type": "the body's type: application/json (default) or text/csv",
        "variant": "send it to this production variant (cloud only; default: by weight)",
        "port": "`invoke serve`'s port for --env local (default 8080)",
        "model": "cloud: the model whose endpoint answers (default: the environment's only one)",
        "json": "print a JSON object: variant, content_type, body",
    }
)
def predict(
    c,
    env="local",
    input_="-",
    content_type="application/json",
    variant=None,
    port=8080,
    model=None,
    json_=False,
):  # type: ignore[no-untyped-def]
    """Send one request to a model of the environment and print its answer.

    echo '{"dataframe_records": [...]}' | ./kit predict --env prod
    """
    from mlplatform.serving.predict import predict as send
    from mlplatform.serving.predict import request_body

    with _errors():
        answer = send(_target(env), request_body(input_), content_type, variant, port, model)
    if json_:
        print(json.dumps(answer.as_json()))
        return
    print(answer.text)
    if answer.variant:
        err_console.print(f"answered by variant {answer.variant}")


@task(
    help={
        "env": "cloud environment (staging or prod)",
        "steps": "comma-separated subset of infra,image,migrate,service,model,endpoint",
        "image": "MLflow image to release: OCI archive or layout, or a local podman/docker image",
        "image_digest": "release an image already in ECR by digest instead of --image",
        "certificate_arn": "ACM certificate ARN for HTTPS (default: environments.toml, else the "
        "issued ACM certificate for the MLflow domain)",
        "from_": "registry whose champion is released (default local)",
        "strategy": "endpoint rollout: all-at-once, canary or linear (default from config)",
        "training_image": "training image to release, as --image (default: invoke build's)",
        "serving_image": "serving image to release, as --image, or an ECR URI by digest to "
        "serve as it is (default: invoke build's)",
        "model": "the model and endpoint steps release this model (repeatable; default: every "
        "model the environment configures)",
        "json": "print one JSON object per step: step, changed, detail",
        "yes": "let CDK apply IAM and security-group changes without asking (CI)",
    },
    iterable=["model"],
)
def deploy(  # type: ignore[no-untyped-def]
    c,
    env,
    steps=None,
    image=None,
    image_digest=None,
    certificate_arn=None,
    from_="local",
    strategy=None,
    training_image=None,
    serving_image=None,
    model=None,
    json_=False,
    yes=False,
):
    """Release everything to an environment: infra, image, migrate, service, model, endpoint.

    The three images come from `invoke build` unless named (or pinned in environments.toml).
    """
    from mlplatform.release.chain import DeployRequest, parse_steps
    from mlplatform.release.chain import deploy as run_chain
    from mlplatform.target import resolve_targets

    reporter = RichReporter()
    with _errors(reporter):
        target, source = resolve_targets(env, from_)
        request = DeployRequest(
            parse_steps(steps),
            image=image,
            image_digest=image_digest,
            certificate_arn=certificate_arn,
            strategy=strategy,
            training_image=training_image,
            serving_image=serving_image,
            approve=yes,
            models=tuple(model or ()),
        )
        for result in run_chain(target, source, request, reporter):
            if json_:
                print(json.dumps(result.as_json(), ensure_ascii=False), flush=True)
            else:
                state = "[green]changed[/green]" if result.changed else "unchanged"
                console.print(f"{result.step:<9} {state}  {result.detail}")


_TEAMS_HELP = {
    "env": "environment whose MLflow to change (local, or an emulated or real cloud one)",
    "file": "the teams file (default: MLPLATFORM_TEAMS, else teams.toml)",
}


@task(name="team-sync", help={**_TEAMS_HELP, "json": "print what changed as JSON"})
def team_sync(c, env="local", file=None, json_=False):
    """Make the environment's MLflow users, team roles and grants match the teams file.

    Members get MANAGE on their team's models, READ where the file shares them, nothing on other
    teams'; passwords go to Secrets Manager. Idempotent; a member the file drops is removed.
    """
    from mlplatform.roster import load_roster
    from mlplatform.teams.sync import sync_teams

    reporter = RichReporter()
    with _errors(reporter):
        roster = load_roster(file)
        report = sync_teams(_target(env), roster, reporter)
    if json_:
        print(json.dumps({**report.as_json(), "changed": report.changed}))
        return
    for key, values in report.as_json().items():
        if key != "env" and values:
            console.print(f"{key.replace('_', ' ')}: {', '.join(values)}")


@task(name="user-add", help={"name": "the MLflow user to create", "env": _TEAMS_HELP["env"]})
def user_add(c, name, env="local"):
    """Create an MLflow user outside any team, its generated password kept in Secrets Manager.

    For an auditor or a service. It has no permission until `invoke grant` gives it one; team
    members go in the teams file instead.
    """
    from mlplatform.teams.users import add_user

    with _errors():
        outcome = add_user(_target(env), name)
    console.print(f"{name}: {outcome} (its login: ./kit env --env {env} --user {name})")


@task(name="user-remove", help={"name": "the MLflow user to delete", **_TEAMS_HELP})
def user_remove(c, name, env="local", file=None):
    """Delete an MLflow user and its login; a member of the teams file is removed there instead."""
    from mlplatform.roster import load_roster
    from mlplatform.teams.users import remove_user

    with _errors():
        remove_user(_target(env), load_roster(file), name)
    console.print(f"{name}: removed from {env}")


@task(help={"env": _TEAMS_HELP["env"], "json": "print a JSON list of users"})
def users(c, env="local", json_=False):
    """List the environment's MLflow users: their teams, and whether a login is stored for them."""
    from mlplatform.teams.users import list_users

    with _errors():
        rows = list_users(_target(env))
    if json_:
        print(json.dumps([row.as_json() for row in rows]))
        return
    console.print(f"{'user':<24} {'teams':<24} login in Secrets Manager")
    for row in rows:
        role = "(admin)" if row.admin else ", ".join(row.teams) or "-"
        console.print(f"{row.name:<24} {role:<24} {row.managed_by or '-'}")


@task(
    help={
        **_TEAMS_HELP,
        "user": "the MLflow user",
        "model": "registered model (and the experiment of that name)",
        "permission": "READ (default), USE, EDIT or MANAGE",
        "revoke": "take the permission back instead",
    }
)
def grant(c, user, model, permission="READ", env="local", file=None, revoke=False):
    """Give one user a permission on one model outside the teams file (or --revoke it)."""
    from mlplatform.roster import load_roster
    from mlplatform.teams.users import grant as give

    with _errors():
        grants = give(_target(env), load_roster(file), user, model, permission.upper(), revoke)
    verb = "revoked from" if revoke else "granted to"
    for item in grants:
        console.print(f"{item.permission} on {item.resource_type} {item.pattern} {verb} {user}")


@task(
    help={
        "env": "environment whose MLflow audit trail to read (local: the server's log)",
        "user": "only this user's requests",
        "since": "only from this time: a duration back (30m, 2h, 7d) or an ISO time",
        "json": "print a JSON list of entries",
    }
)
def audit(c, env="local", user=None, since=None, json_=False):
    """Every state-changing and every refused MLflow request: when, who, what, outcome, whence."""
    from mlplatform.teams.audit import audit_entries, parse_since

    with _errors():
        entries = audit_entries(_target(env), user, parse_since(since) if since else None)
    if json_:
        print(json.dumps(entries))
        return
    for e in entries:
        resource = " ".join(f"{k}={v}" for k, v in e.get("resource", {}).items())
        print(
            f"{e.get('time')}  {e.get('user') or '-':<16} {e.get('outcome'):<15} "
            f"{e.get('action')}  {resource}  from {e.get('source')}"
        )


@task(
    name="rotate-admin",
    help={"env": "cloud environment (staging or prod)", "json": "print secret, version, resumed"},
)
def rotate_admin(c, env, json_=False):
    """Rotate the environment's MLflow admin password, in MLflow and in its secret, in that order.

    A run that stopped part way is finished by the next one (the secret's AWSPENDING version).
    """
    from mlplatform.release.admin_password import rotate_admin_password

    reporter = RichReporter()
    with _errors(reporter):
        rotation = rotate_admin_password(_target(env), reporter)
    if json_:
        print(json.dumps(rotation.as_json()))
    else:
        console.print(f"{rotation.secret}: rotated (version {rotation.version})")


@task(help={"env": "cloud environment to compare the local stack with", "json": "print JSON"})
def parity(c, env, json_=False):
    """Local stack against a cloud environment: versions, database, settings, image digests.

    A table of what each side runs; exit 1 when anything differs or cannot be read.
    """
    from mlplatform.release.parity import parity as compare
    from mlplatform.target import resolve_targets

    with _errors():
        local, remote = resolve_targets("local", env)
        report = compare(local, remote)
    if json_:
        print(json.dumps(report.as_json(), indent=2))
    else:
        from rich.table import Table

        colours = {"same": "green", "drift": "red", "unknown": "yellow"}
        table = Table(title=f"local against {report.env}")
        for column in ("item", "local", report.env, ""):
            table.add_column(column, overflow="fold")
        for row in report.rows:
            mark = f"[{colours[row.status]}]{row.status}[/{colours[row.status]}]"
            table.add_row(row.item, row.local, row.remote, mark)
        console.print(table)
    if not report.clean:
        raise Exit(code=1)


_INFRA_HELP = {
    "env": "environment: local, staging or prod",
    "image_digest": "MLflow image digest (sha256:...) when environments.toml has none",
    "certificate_arn": "ACM certificate ARN for HTTPS (default: environments.toml, else the "
    "issued ACM certificate for the MLflow domain)",
}


def _cdk(action, env, image_digest=None, certificate_arn=None, **kwargs):  # type: ignore[no-untyped-def]
    from mlplatform.release.cdk_cli import cdk_command, check_overrides
    from mlplatform.toolchain.node_deps import ensure_node_modules

    with _errors():
        target = _target(env)
        # Before anything reads AWS or installs the CLI: a refusal is one line and nothing ran.
        check_overrides(
            target.env, action, image_digest=image_digest, certificate_arn=certificate_arn
        )
        ensure_node_modules()
        if action in ("deploy", "diff"):
            from mlplatform.cloud.certificates import certificate_arn as find_certificate
            from mlplatform.release.chain import released_context

            certificate_arn = find_certificate(
                target.env, lambda: target.client("acm"), certificate_arn
            )

            # Keep the training and serving images the last release recorded in the stack.
            released = released_context(target, {})
            kwargs["training_image_digests"] = released["training"]
            kwargs["serving_image_digests"] = released["serving"]
        result = cdk_command(
            target.env,
            action,
            image_digest=image_digest,
            certificate_arn=certificate_arn,
            **kwargs,
        )
    err_console.print(f"cdk {action} for {env}: done in {result.seconds:.1f}s")


@task(
    help={
        **_INFRA_HELP,
        "certificate_arn": "ACM certificate ARN for HTTPS (default: environments.toml, else a "
        "placeholder for looking)",
    }
)
def synth(c, env, image_digest=None, certificate_arn=None):
    """Synthesize an environment's CloudFormation (cdk-nag runs; a finding fails it).

    Without a release (no image digest, no certificate) placeholders stand in, said loudly: the
    templates are for looking; deploy-infra and deploy refuse the placeholders.
    """
    from mlplatform.release.cdk_context import for_looking

    with _errors():
        overrides, said = for_looking(_target(env).env, image_digest, certificate_arn)
    for line in said:
        err_console.print(f"[bold yellow]![/bold yellow] [bold]{line}: for looking only[/bold]")
    _cdk("synth", env, overrides["image_digest"], overrides["certificate_arn"])


@task(help=_INFRA_HELP)
def diff(c, env, image_digest=None, certificate_arn=None):
    """Show what deploying an environment's infrastructure would change."""
    _cdk("diff", env, image_digest, certificate_arn)


@task(name="deploy-infra", help={**_INFRA_HELP, "yes": "do not ask to approve IAM changes"})
def deploy_infra(c, env, image_digest=None, certificate_arn=None, yes=False):
    """Deploy an environment's CDK stacks (AWS_ENDPOINT_URL points it at an emulator)."""
    _cdk("deploy", env, image_digest, certificate_arn, approve=yes)


@task(help={"env": _INFRA_HELP["env"], "confirm": "the environment's name again (prod)"})
def destroy(c, env, confirm=None):
    """Destroy an environment's stacks; prod (and deletion-protected data) needs --confirm."""
    _cdk("destroy", env, confirm=confirm)


@task(help={"env": "environment whose account and region to bootstrap"})
def bootstrap(c, env):
    """Bootstrap CDK in an environment's account and region (once per account and region)."""
    _cdk("bootstrap", env)


@task(
    help={
        "unit": "run only the fast unit tests (no servers)",
        "containers": "run only the container lane (Podman: images, compose runtime; minutes)",
        "k": "pytest -k expression (applied to each lane)",
        "install": "install missing system packages with apt when root (default: yes)",
    }
)
def test(c, unit=False, containers=False, k="", install=True):
    """Install what the tests need (system packages when root) and run the test lanes.

    Without flags: the suite (unit and integration tests on real servers), then the container
    lane. Each lane's wall time is printed at the end; any failed lane fails the run.
    """
    from mlplatform.toolchain.node_deps import ensure_node_modules
    from mlplatform.toolchain.testing import packages_for, run_lane, select_lanes

    lanes = select_lanes(unit, containers)
    with _errors():
        if install:
            installed = system_deps.ensure(packages_for(lanes))
            if installed:
                err_console.print(f"installed with apt: {', '.join(installed)}")
        if ensure_node_modules():
            err_console.print("installed the pinned CDK CLI with npm ci")
        if recorded_runtime(state_paths()):
            err_console.print("note: the tests use their own stack and ports; yours keeps running")
    results = [run_lane(lane, REPO_ROOT, k) for lane in lanes]
    for r in results:
        mark = "[green]passed[/green]" if r.passed else f"[red]failed (exit {r.exit_code})[/red]"
        err_console.print(f"lane {r.lane:<10} {mark}  {r.seconds / 60:.1f} min")
    failed = [r for r in results if not r.passed]
    if failed:
        raise Exit(code=failed[0].exit_code)


@task
def lint(c):
    """Run ruff, mypy and hadolint over the repository."""
    bin_dir = Path(sys.executable).parent
    c.run(f"{sys.executable} -m ruff check .", pty=False)
    c.run(f"{sys.executable} -m mypy", pty=False)
    for dockerfile in sorted(REPO_ROOT.glob("*/Dockerfile")):
        c.run(f"{bin_dir / 'hadolint'} {dockerfile}", pty=False)


@task(help={"source": "lock only this training source's requirements.in (a source folder)"})
def lock(c, source=None):
    """Regenerate the hash-locked requirements (uv pip compile) and the image's RDS CA bundle.

    --source DIR locks one training source: DIR/requirements.in into DIR/requirements.txt.
    """
    from mlplatform.sources import load_source
    from mlplatform.sources.lock import lock_source
    from mlplatform.toolchain.locking import lock_all
    from mlplatform.toolchain.rds_ca import RDS_CA_BUNDLE, write_bundle

    with _errors():
        if source is not None:
            console.print(f"wrote {lock_source(load_source(source))}")
            return
        for path in lock_all():
            console.print(f"wrote {path}")
        changed = write_bundle()
        console.print(f"{'wrote' if changed else 'unchanged'} {RDS_CA_BUNDLE}")


@task(
    help={
        "module": "core module(s) to mutate, comma-separated: promotion, archive, gate, chain, "
        "config (default: all)",
        "jobs": "mutants tested at once (default: one per core)",
    }
)
def mutate(c, module="", jobs=0):
    """Mutation-test the core modules with mutmut and print each one's score (not in CI)."""
    from rich.table import Table

    from mlplatform.toolchain.mutation import run_mutation, select_modules

    with _errors():
        modules = select_modules(module)
        err_console.print(f"mutmut: {', '.join(modules)} (progress in mutants/invoke-mutate.log)")
        scores = run_mutation(modules, int(jobs))
    table = Table(title="mutation score")
    for col in ("module", "killed", "survived", "no tests", "other", "total", "score"):
        table.add_column(col)
    for s in scores:
        table.add_row(
            s.module,
            *(str(n) for n in (s.killed, s.survived, s.no_tests, s.other, s.total)),
            f"{s.percent:.1f}%",
        )
    console.print(table)
    for s in scores:
        for name in s.survivors:
            console.print(f"survived: {name}  (mutmut show {name})", soft_wrap=True)


@task(name="compose-file", help={"check": "fail if the committed file differs instead of writing"})
def compose_file(c, check=False):
    """Render compose/docker-compose.yml from the services in mlplatform/local/services.py."""
    from mlplatform.local.compose_file import COMPOSE_PATH, render

    with _errors():
        # The committed file comes from the repository's own environments.toml.
        text = render(load_environment("local", REPO_ROOT / "environments.toml"))
    if check:
        if COMPOSE_PATH.read_text(encoding="utf-8") != text:
            raise Exit(f"error: {COMPOSE_PATH} is stale; run `./kit compose-file`", 1)
        return
    COMPOSE_PATH.write_text(text, encoding="utf-8")
    console.print(f"wrote {COMPOSE_PATH}")


ns = Collection(
    # the local stack
    up, down, status, logs, env, doctor,
    # training, serving, promotion
    data, train, champion, reproduce, build, serve, emulate, promote,
    # SageMaker endpoints, and the whole release
    deploy_endpoint, traffic, rollback, endpoints, predict, deploy, parity, rotate_admin,
    # teams and users
    team_sync, user_add, user_remove, users, grant, audit,
    # infrastructure
    synth, diff, deploy_infra, destroy, bootstrap,
    # development
    test, lint, lock, compose_file, mutate,
)  # fmt: skip
