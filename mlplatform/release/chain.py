"""`invoke deploy --env E`: one release of the whole platform, step by step, each idempotent.

    prod, local = resolve_targets("prod", "local")
    for result in deploy(prod, local, DeployRequest(image="mlflow.oci.tar"), reporter):
        print(result.step, result.changed, result.detail)

The steps, in order (a subset keeps this order):
  infra     CDK deploy of every stack; the migrate task gets the release's image while the service
            keeps the image it runs (a first deploy creates the service with no task)
  image     the MLflow image, and the training and serving images of each configured model's
            source, pushed to the environment's ECR repositories, by digest under an immutable
            release tag (ECR's API)
  migrate   the one-off migrate task run to completion (exit code 0) and recorded on its task
            definition (mlplatform.release.migration), before any server runs the new code
  service   CDK deploy again, now rolling the service to the release's image; refused unless the
            release's migration is recorded
  model     the source registry's `champion` promoted (copied, verified, registered once) and made
            `champion` in the environment's registry; the training/serving client user ensured
  endpoint  the SageMaker endpoint deployed from the registry's champion (and challenger), on
            the serving image the release pushed

Images: each comes from the request (an OCI archive or layout, or a local engine image), else
from a pin in environments.toml, else from what `invoke build` saved in the state folder. The
training and serving digests of a release, by source name, are recorded as the MLflow stack's
outputs (TrainingImageDigest, ServingImageDigest: `fraud=sha256:…,forecast=sha256:…`) by the
infra step, and read back from there by the endpoint step and by `invoke train --runner
sagemaker`: each model runs its own source's images.

Each step first looks at the environment and does nothing when it already is as wanted, so a
second run reports no change; the first failing step raises DeployError and nothing after it
runs. What the environment runs is read from the MLflow stack's outputs (ImageDigest,
ServiceImageDigest, TrainingImageDigest, ServingImageDigest) and ECS, so no state is kept on the
deploying machine. Every AWS call goes through boto3's chain and the CDK CLI: AWS, or an emulator
through AWS_ENDPOINT_URL, with the same code. docs/deploy.md has the reasons.
"""

from __future__ import annotations

import functools
import hashlib
import json
import re
import tempfile
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import botocore.exceptions
from mlflow.exceptions import MlflowException

from mlplatform.cloud.certificates import certificate_arn
from mlplatform.cloud.stack_outputs import (
    DeployedStack,
    mlflow_url,
    released_digest,
    released_digests,
)
from mlplatform.config import DIGEST_PATTERN
from mlplatform.errors import DeployError, PlatformError
from mlplatform.images.build import built_archive, image_name
from mlplatform.images.oci_archive import OciImage, export_from_engine, open_image
from mlplatform.names import (
    RELEASED_IMAGE_OUTPUTS,
    STACK_PARTS,
    Output,
    ecr_repository_arn,
    format_released,
    repository_output,
    stack_name,
)
from mlplatform.readiness import http_ok, wait_until
from mlplatform.release.ecr_push import image_present, push_image
from mlplatform.release.migration import migrate_run_task_request, migrated_digest, run_migration
from mlplatform.reporting import JsonFields, Reporter
from mlplatform.serving.rollout import STRATEGIES
from mlplatform.sources import configured_sources
from mlplatform.target import Target

__all__ = [
    "STEPS",
    "DeployError",
    "DeployRequest",
    "StepResult",
    "deploy",
    "parse_steps",
    "released_context",
]

STEPS = ("infra", "image", "migrate", "service", "model", "endpoint")
_IMAGE_STEPS = {"infra", "image", "migrate", "service"}
# How long the model step waits for the registry to serve after a rollout.
REGISTRY_READY_SECONDS = 600
_DIGEST = re.compile(DIGEST_PATTERN)
# What a step may raise besides the kit's own errors: still one line, never a traceback.
_FOREIGN_ERRORS = (
    botocore.exceptions.BotoCoreError,
    botocore.exceptions.ClientError,
    MlflowException,
)


@dataclass(frozen=True)
class StepResult(JsonFields):
    """What one step did: `changed` is False when the environment already was as wanted."""

    step: str
    changed: bool
    detail: str


@dataclass(frozen=True)
class DeployRequest:
    """What to deploy (defaults: every step, images and models from configuration)."""

    steps: tuple[str, ...] = STEPS
    image: str | None = None  # OCI archive or layout directory, or a local engine image
    image_digest: str | None = None
    certificate_arn: str | None = None
    strategy: str | None = None
    # As `image`, for the training image (of the one configured source).
    training_image: str | None = None
    # An ECR URI by digest: the endpoint serves it as it is; else an image to release, as `image`
    # (of the one configured source).
    serving_image: str | None = None
    approve: bool = False  # let CDK apply IAM and security-group changes without asking
    # The models the model and endpoint steps release (default: every one the target configures).
    models: tuple[str, ...] = ()


def parse_steps(text: str | None) -> tuple[str, ...]:
    """`infra,image` -> the steps in chain order; DeployError naming an unknown one."""
    if not text:
        return STEPS
    wanted = [s.strip() for s in text.split(",") if s.strip()]
    unknown = [s for s in wanted if s not in STEPS]
    if unknown or not wanted:
        raise DeployError(
            f"unknown step {unknown[0] if unknown else text!r}; choose from {', '.join(STEPS)}"
        )
    return tuple(s for s in STEPS if s in wanted)


def deploy(
    target: Target, source: Target, request: DeployRequest, reporter: Reporter
) -> Iterator[StepResult]:
    """Release to `target`, its model from `source`'s registry: the requested steps in order.

    Each result is yielded as soon as its step ends; the first failure raises DeployError.
    """
    target.cloud_only("deploy targets a cloud environment", DeployError)
    if request.strategy is not None and request.strategy not in STRATEGIES:
        raise DeployError(
            f"unknown strategy {request.strategy!r}; choose one of {', '.join(STRATEGIES)}"
        )
    if request.image and request.image_digest:
        raise DeployError("pass --image or --image-digest, not both")
    with ExitStack() as stack:
        chain = _Chain(target, source, request, reporter)
        if _IMAGE_STEPS & set(request.steps):
            chain.open_release(stack)
            chain.check_release()
            # A cloud assembly of its own: no lock clash with `invoke synth` in infra/cdk.out.
            chain.cdk_out = Path(
                stack.enter_context(tempfile.TemporaryDirectory(prefix="mlp-cdk-"))
            )
        for step in request.steps:
            reporter.step(f"{step}: {target.name}")
            try:
                result = _STEP_RUNS[step](chain)
            except (PlatformError, *_FOREIGN_ERRORS) as exc:
                first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
                # The first line is the message; the cause stays chained for `--debug` readers.
                raise DeployError(f"{step} step failed: {first}") from exc
            reporter.done(f"{step}: {result.detail}")
            yield result


def released_context(target: Target, releasing: dict[str, dict[str, str]]) -> dict[str, str | None]:
    """The training and serving records (by image name) a deploy of `target`'s stacks records.

    Each source's digest being released, else the one the MLflow stack records, so that a
    deploy that releases neither (`invoke deploy-infra`, a second chain run) keeps them; a
    training pin in environments.toml still wins over the recorded ones.
    """
    stack = target.stack("mlflow", DeployError)
    outputs = {} if stack is None else stack.outputs
    context: dict[str, str | None] = {}
    for name in RELEASED_IMAGE_OUTPUTS:
        pinned = name == "training" and target.env.training.training_image_digest
        recorded = {} if pinned else released_digests(outputs, name)
        record = {**recorded, **releasing.get(name, {})}
        context[name] = format_released(record) if record else None
    return context


class _Chain:
    """The steps, sharing what they learn about the environment."""

    def __init__(
        self, target: Target, source: Target, request: DeployRequest, reporter: Reporter
    ) -> None:
        self.target = target
        self.env = target.env
        self.source = source
        self.request = request
        self.reporter = reporter
        self.image: OciImage | None = None
        self.digest = ""
        # The training and serving images this release pushes: image name -> source name -> it.
        self.released: dict[str, dict[str, OciImage]] = {}
        self.cdk_out: Path | None = None

    # -- the release's image -------------------------------------------------------------------

    def _open(self, stack: ExitStack, text: str) -> OciImage:
        """An image to push: an OCI archive or layout, else a local engine image (exported)."""
        source = Path(text)
        if not source.exists() and not text.startswith((".", "/")):
            tmp = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="mlp-image-")))
            self.reporter.step(f"exporting {text} from the container engine")
            source = export_from_engine(text, tmp)
        return stack.enter_context(open_image(source))

    def _built(self, name: str) -> str | None:
        """The archive `invoke build` saved for `name`, if there is one."""
        archive = built_archive(self.target.paths, name)
        return str(archive) if archive.is_file() else None

    def open_release(self, stack: ExitStack) -> None:
        """Find the images to release: MLflow's, then the training and serving images.

        MLflow's is opened (and checked) or given by digest; the other two are opened.
        """
        request = self.request
        pinned = request.image_digest or self.env.mlflow.image_digest
        source = request.image or (None if pinned else self._built("mlflow"))
        if source:
            self.image = self._open(stack, source)
            self.digest = self.image.digest
        elif not pinned:
            raise DeployError(
                f"no MLflow image to release: run `invoke build`, pass --image (OCI archive or "
                f"local image) or --image-digest, or set [{self.env.name}.mlflow] image_digest"
            )
        else:
            self._check_digest(pinned)
        if not {"infra", "image"} & set(request.steps):
            return  # only those two steps record or push the training and serving images
        sources = configured_sources(self.env)
        for name in RELEASED_IMAGE_OUTPUTS:
            for source in sources:
                side = self._release_source(name, source, len(sources))
                if side:
                    self.released.setdefault(name, {})[source] = self._open(stack, side)

    def _release_source(self, name: str, source: str, sources: int) -> str | None:
        """Where source `source`'s training or serving image comes from; None: not released."""
        if name == "training":
            named, pinned = self.request.training_image, self.env.training.training_image_digest
            setting, option = "training] training_image_digest", "--training-image"
        else:
            serving = self.request.serving_image
            if serving and ecr_repository_arn(serving):
                return None  # served as it is, from where it already is
            named, pinned = serving, self.env.sagemaker.serving_image
            setting, option = "sagemaker] serving_image", "--serving-image"
        if named and pinned:
            # The pin would win where the image is used: releasing another one would be a lie.
            raise DeployError(
                f"[{self.env.name}.{setting} pins the {name} image; remove the pin to release "
                f"{named}"
            )
        if named and sources > 1:
            raise DeployError(
                f"{option} names one image and {self.env.name} trains {sources} sources: let "
                "`invoke build` build each source's (the chain takes them from there)"
            )
        # Not built here: the release keeps the one the stack records (the endpoint step and
        # SageMaker jobs say how to release one when there is none).
        return named or (None if pinned else self._built(image_name(name, source)))

    def _check_digest(self, digest: str) -> None:
        if not _DIGEST.match(digest):
            raise DeployError(f"--image-digest {digest!r} is not sha256:<64 hex>")
        self.digest = digest

    def check_release(self) -> None:
        """Refuse what would fail later, before any step changes anything.

        A digest that ECR does not have; a training or serving image the stack would not
        record (no infra step).
        """
        outputs = self._outputs("mlflow")
        if outputs is None or repository_output("mlflow") not in outputs:
            return  # a first deploy: the repositories come with the infra step
        if "infra" not in self.request.steps:
            for name, images in self.released.items():
                for source, image in images.items():
                    recorded = released_digest(outputs, name, source)
                    if recorded != image.digest:
                        shown = f"{recorded[:19]}…" if recorded else "none"
                        raise DeployError(
                            f"source {source}'s {name} image {image.digest[:19]}… is not the "
                            f"release's ({shown}, the MLflow stack's "
                            f"{RELEASED_IMAGE_OUTPUTS[name]}); add the infra step to release it"
                        )
        if self.image is not None or "image" not in self.request.steps:
            return
        repository = self._repository(outputs)
        if not image_present(self._client("ecr"), repository, self.digest):
            raise self._not_in_ecr(repository)

    # -- helpers -------------------------------------------------------------------------------

    @property
    def short(self) -> str:
        """The release's digest as messages show it."""
        return self.digest[:19] + "…"

    def _not_in_ecr(self, repository: str) -> DeployError:
        return DeployError(
            f"{self.short} is not in {repository}; pass --image with the image "
            "(OCI archive or local image) to push it"
        )

    @staticmethod
    def _repository(outputs: dict[str, str], name: str = "mlflow") -> str:
        """The repository name in one of the MLflow stack's <Name>RepositoryUri (after the host)."""
        return outputs[repository_output(name)].split("/", 1)[1]

    def _client(self, service: str) -> Any:
        return self.target.client(service)

    def _stack(self, part: str) -> str:
        return stack_name(self.env, part)

    def _described(self, part: str) -> DeployedStack | None:
        """A stack's status and outputs, or None when it is not deployed."""
        return self.target.stack(part, DeployError)

    def _outputs(self, part: str) -> dict[str, str] | None:
        """A stack's outputs, or None when it is not deployed."""
        described = self._described(part)
        return None if described is None else described.outputs

    def _require(self, stack: DeployedStack, *keys: str) -> dict[str, str]:
        """`stack`'s outputs, or one line naming its status, the missing keys and the fix."""
        command = f"`invoke deploy --env {self.env.name} --steps infra`"
        return stack.require(keys, DeployError, command)

    def _required_outputs(self, part: str, *keys: str) -> dict[str, str]:
        stack = self._described(part)
        if stack is None:
            raise DeployError(
                f"stack {self._stack(part)} is not deployed; run the infra step first "
                "(invoke deploy --steps infra)"
            )
        return self._require(stack, *keys)

    def _service_digest(self) -> str | None:
        """The image the MLflow service runs now (None: no stack yet, or no task yet)."""
        stack = self._described("mlflow")
        # A stack whose first deploy never completed runs nothing: the infra step deploys over
        # it as over no stack, and the later steps refuse it for its missing outputs.
        if stack is None or stack.never_created:
            return None
        value = stack.outputs.get(Output.SERVICE_IMAGE_DIGEST)
        if value is None:
            # A stack deployed before the kit reported it: what the running service uses.
            return self._digest_from_ecs(stack)
        return value if _DIGEST.match(value) else None

    def _digest_from_ecs(self, stack: DeployedStack) -> str:
        outputs = self._require(stack, Output.CLUSTER_NAME, Output.SERVICE_NAME)
        ecs = self._client("ecs")
        service = ecs.describe_services(
            cluster=outputs[Output.CLUSTER_NAME], services=[outputs[Output.SERVICE_NAME]]
        )["services"]
        image = ""
        if service:
            definition = ecs.describe_task_definition(taskDefinition=service[0]["taskDefinition"])
            image = definition["taskDefinition"]["containerDefinitions"][0].get("image", "")
        digest = image.rpartition("@")[2]
        if not _DIGEST.match(digest):
            raise DeployError(
                f"cannot tell which image {outputs[Output.SERVICE_NAME]} runs "
                f"({image or 'no service'}); deploy the infra with `invoke deploy-infra` first"
            )
        return digest

    @functools.cached_property
    def certificate_arn(self) -> str | None:
        """The certificate named, configured, or issued in ACM for the MLflow domain."""
        return certificate_arn(
            self.env, lambda: self._client("acm"), self.request.certificate_arn, DeployError
        )

    def _fingerprints(self) -> dict[str, str | None]:
        cfn = self._client("cloudformation")
        prints: dict[str, str | None] = {}
        for part in STACK_PARTS:
            try:
                body = cfn.get_template(StackName=self._stack(part))["TemplateBody"]
            except botocore.exceptions.ClientError:
                prints[part] = None
                continue
            except botocore.exceptions.BotoCoreError as exc:
                raise DeployError(f"cannot reach CloudFormation: {exc}") from exc
            text = body if isinstance(body, str) else json.dumps(body, sort_keys=True)
            prints[part] = hashlib.sha256(text.encode()).hexdigest()
        return prints

    def _cdk_deploy(self, service_image_digest: str | None) -> list[str]:
        """Deploy every stack; return the parts whose template changed."""
        from mlplatform.release.cdk_cli import cdk_command
        from mlplatform.toolchain.node_deps import ensure_node_modules

        ensure_node_modules()
        releasing = {
            name: {source: image.digest for source, image in images.items()}
            for name, images in self.released.items()
        }
        released = released_context(self.target, releasing)
        before = self._fingerprints()
        cdk_command(
            self.env,
            "deploy",
            image_digest=self.digest,
            certificate_arn=self.certificate_arn,
            service_image_digest=service_image_digest,
            training_image_digests=released["training"],
            serving_image_digests=released["serving"],
            approve=self.request.approve,
            output=self.cdk_out,
            output_to_stderr=True,
        )
        after = self._fingerprints()
        return [part for part in STACK_PARTS if before[part] != after[part]]

    # -- the steps -----------------------------------------------------------------------------

    def _warn_never_created(self) -> None:
        """Say which stacks a failed first deploy left behind: CDK deletes or replaces them."""
        for part in STACK_PARTS:
            stack = self._described(part)
            if stack is not None and stack.never_created:
                self.reporter.warn(
                    f"stack {stack.name} is in {stack.status} (its first deploy never "
                    "completed); the CDK CLI re-creates it"
                )

    def _infra(self) -> StepResult:
        from mlplatform.release.cdk_context import NO_SERVICE_IMAGE

        self._warn_never_created()
        # The service stays on what it runs; with no stack yet (or no task yet), on no image.
        running = self._service_digest()
        changed = self._cdk_deploy(running or NO_SERVICE_IMAGE)
        if not changed:
            return StepResult("infra", False, f"{len(STACK_PARTS)} stacks up to date")
        return StepResult(
            "infra", True, f"deployed {', '.join(changed)} (migrate task on {self.short})"
        )

    def _image(self) -> StepResult:
        names = ("mlflow", *self.released)
        outputs = self._required_outputs("mlflow", *map(repository_output, names))
        ecr = self._client("ecr")
        repository = self._repository(outputs)
        if self.image is None and not image_present(ecr, repository, self.digest):
            raise self._not_in_ecr(repository)
        images = [("mlflow", self.image)] + [
            (name, image) for name, each in self.released.items() for image in each.values()
        ]
        changed, details = False, []
        for name, image in images:
            repository = self._repository(outputs, name)
            short = (image.digest if image else self.digest)[:19] + "…"
            if image is not None and push_image(ecr, repository, image, self.reporter):
                changed = True
                details.append(f"pushed {short} to {repository} ({image.size / 2**20:.1f} MiB)")
            else:
                details.append(f"{short} already in {repository}")
        return StepResult("image", changed, "; ".join(details))

    def _migration_outputs(self) -> dict[str, str]:
        outputs = self._required_outputs(
            "mlflow",
            Output.CLUSTER_NAME,
            Output.MIGRATE_TASK_DEFINITION_ARN,
            Output.TASK_SECURITY_GROUP_ID,
        )
        if outputs.get(Output.IMAGE_DIGEST) != self.digest:
            raise DeployError(
                f"the migrate task runs {outputs.get(Output.IMAGE_DIGEST)}, not "
                f"{self.short}; run the infra step for this image first"
            )
        return outputs

    def _migrate(self) -> StepResult:
        if self._service_digest() == self.digest:
            return StepResult("migrate", False, f"the service already runs {self.short}")
        outputs = self._migration_outputs()
        ecs = self._client("ecs")
        if migrated_digest(ecs, outputs[Output.MIGRATE_TASK_DEFINITION_ARN]) == self.digest:
            return StepResult("migrate", False, f"the database was migrated for {self.short}")
        outputs |= self._required_outputs("network", Output.PRIVATE_SUBNET_IDS)
        try:
            task = run_migration(ecs, migrate_run_task_request(outputs), self.digest, self.reporter)
        except PlatformError as exc:
            raise DeployError(f"{exc}; see log group /{self.env.name_prefix}/mlflow") from exc
        return StepResult("migrate", True, f"task {task} migrated the database for {self.short}")

    def _service(self) -> StepResult:
        if self._service_digest() == self.digest:
            return StepResult("service", False, f"already runs {self.short}")
        outputs = self._migration_outputs()
        if (
            migrated_digest(self._client("ecs"), outputs[Output.MIGRATE_TASK_DEFINITION_ARN])
            != self.digest
        ):
            raise DeployError(
                f"the database has not been migrated for {self.short}; run the migrate step first "
                "(a server on an old schema fails, two migrating servers race)"
            )
        self._cdk_deploy(self.digest)
        if self._service_digest() != self.digest:
            raise DeployError(f"the service does not report {self.short} after the deploy")
        return StepResult("service", True, f"rolled {self._stack('mlflow')} to {self.short}")

    @functools.cache  # noqa: B019 (one chain, one wait)
    def _wait_for_registry(self) -> None:
        """Wait until the registry answers /health before the model step uses it.

        A rolled service's tasks take minutes to pass the load balancer's health check.
        """
        url = mlflow_url(self.env, self._client("cloudformation"), DeployError)
        if http_ok(f"{url}/health"):
            return
        self.reporter.step(f"waiting for {self.env.name}'s MLflow at {url}")
        wait_until(
            lambda: http_ok(f"{url}/health"),
            service=f"{self.env.name}'s MLflow at {url} (see its ECS events and logs)",
            timeout=REGISTRY_READY_SECONDS,
            log=None,
            interval=2,
        )

    def _model(self) -> StepResult:
        from mlplatform.release.model import release_champion

        self._wait_for_registry()
        changed, details = False, list[str]()
        for model in self._models():
            moved, detail = release_champion(self.target, self.source, model, self.reporter)
            changed, details = changed or moved, [*details, detail]
        return StepResult("model", changed, "; ".join(details))

    def _models(self) -> list[str]:
        """The models to release: the request's (each one configured), else every configured."""
        env = self.target.env
        return [env.model(m) for m in self.request.models] or list(env.models)

    def _endpoint(self) -> StepResult:
        from mlplatform.serving.endpoints import EndpointRequest
        from mlplatform.serving.endpoints import deploy as deploy_endpoint

        self._wait_for_registry()
        # An ECR URI is served as it is; else the serving image the release recorded.
        serving = self.request.serving_image
        image = serving if serving and ecr_repository_arn(serving) else None
        changed, details = False, list[str]()
        for model in self._models():
            endpoint = EndpointRequest(self.request.strategy, None, image, model)
            outcome, plans = deploy_endpoint(self.target, endpoint, self.reporter)
            versions = ", ".join(f"{p.variant} v{p.model_version}" for p in plans)
            verb = "created" if outcome.created else "updated" if outcome.changed else "unchanged"
            changed = changed or outcome.changed
            details.append(f"{outcome.endpoint_name} {verb} ({versions})")
        return StepResult("endpoint", changed, "; ".join(details))


# The chain's steps, each with the method that runs it (STEPS gives their order).
_STEP_RUNS: dict[str, Callable[[_Chain], StepResult]] = {
    "infra": _Chain._infra,
    "image": _Chain._image,
    "migrate": _Chain._migrate,
    "service": _Chain._service,
    "model": _Chain._model,
    "endpoint": _Chain._endpoint,
}
