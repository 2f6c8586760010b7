"""moto gap: SageMaker InvokeEndpoint answers canned text; here the endpoint's own model answers.

    boto3.client("sagemaker-runtime").invoke_endpoint(EndpointName=..., Body=b'{"inputs": ...}')

moto 5.2 returns the string "body" for every request. In the kit's AWS server, an InvokeEndpoint
on an InService endpoint is served as SageMaker serves it:

- the variant is the one the request names (TargetVariant) or, as SageMaker routes traffic, one
  drawn at random by the variants' current weights;
- the variant's model archive is read from this account's S3 at the ModelDataUrl its model names
  (the bytes `invoke deploy` uploaded), unpacked, and served by the serving image's entrypoint
  (`python -m scoring_server serve`, MLflow's scoring server on SageMaker's contract), started
  once per archive and image and kept until the emulator stops (it runs in the emulator's
  process group, which the supervisor stops as a whole);
- it runs in the environment of the image's lock: the pushed image's config (ecr_images.py)
  names the training source and the sha256 of the lock it holds; the server runs on the cached
  environment of that lock, else on one made now from a configured source whose lock has that
  sha256 (neither: the model's error says so); an image without those labels (not built by the
  kit) runs on the kit's own Python;
- the request body, Content-Type and Accept go to its /invocations; the answer comes back with
  the model's content type and x-Amzn-Invoked-Production-Variant; an error status from the model
  is ModelError (HTTP 424) with OriginalStatusCode and OriginalMessage, as SageMaker returns it;
  a body over 6 MB, an unknown endpoint or one not InService is a ValidationError.

What it cannot show: the serving image's bytes (the entrypoint runs from this checkout, in an
environment made from the same lock; the image itself runs in tests/container), instance
start-up and health checks, the 60-second invocation timeout, and per-instance concurrency. An
environment not made yet is made on the first invocation (a minute or so), which SageMaker does
before the endpoint is InService.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import shutil
import socket
import subprocess
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import requests
from moto.core.exceptions import JsonRESTError
from moto.s3.models import s3_backends
from moto.sagemaker.models import sagemaker_backends
from moto.sagemakerruntime.responses import SageMakerRuntimeResponse

from mlplatform.config import load_environments
from mlplatform.emulator.account import MODELS_VARIABLE
from mlplatform.emulator.ecr_images import image_labels
from mlplatform.errors import PlatformError, ServiceStartError
from mlplatform.names import LOCK_LABEL, SOURCE_LABEL
from mlplatform.readiness import http_ok, wait_until
from mlplatform.reporting import SilentReporter
from mlplatform.serving.local import scoring_command, scoring_environment, unpack
from mlplatform.sources import configured_sources
from mlplatform.sources.environment import made_environment, source_python

__all__ = ["MAX_PAYLOAD_BYTES", "install"]

MAX_PAYLOAD_BYTES = 6 * 1024 * 1024  # SageMaker's real-time request limit


class _ModelError(JsonRESTError):
    """What SageMaker answers when the container returned an error status."""

    code = 424

    def __init__(self, status: int, message: str, endpoint: str, account: str) -> None:
        super().__init__(
            "ModelError",
            f"Received {'client' if status < 500 else 'server'} error ({status}) from primary "
            f'with message "{message}". See the endpoint\'s log in account {account} for '
            "more information.",
        )
        self.description = json.dumps(
            {
                "__type": "ModelError",
                "message": self.message,
                "OriginalStatusCode": status,
                "OriginalMessage": message,
                "LogStreamArn": f"/aws/sagemaker/Endpoints/{endpoint}",
            }
        )


def _validation_error(message: str) -> JsonRESTError:
    return JsonRESTError("ValidationError", message)


@dataclass
class _Server:
    process: subprocess.Popen[bytes]
    port: int


class _ModelServers:
    """One scoring server per model archive (by sha256) and interpreter, started on first use."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._servers: dict[tuple[str, Path | None], _Server] = {}

    def url(self, archive: bytes, python: Path | None) -> str:
        """The URL of a scoring server for `archive` on `python`, started now if none is running.

        A server that does not start is stopped and raised as the model's error (500).
        """
        digest = hashlib.sha256(archive).hexdigest()
        with self._lock:
            server = self._servers.get((digest, python))
            if server is None or server.process.poll() is not None:
                server = self._servers[(digest, python)] = self._start(digest, archive, python)
        return f"http://127.0.0.1:{server.port}"

    @staticmethod
    def _start(digest: str, archive: bytes, python: Path | None) -> _Server:
        folder = os.environ.get(MODELS_VARIABLE)
        if not folder:
            raise RuntimeError(f"the emulator was started without {MODELS_VARIABLE}")
        # One folder per archive and interpreter: two images may serve the same archive.
        key = hashlib.sha256(f"{digest}\n{python}".encode()).hexdigest()
        root = Path(folder) / key[:16]
        root.mkdir(parents=True, exist_ok=True)
        tarball = root / "model.tar.gz"
        tarball.write_bytes(archive)
        model_dir = unpack(tarball, root / "model")
        with socket.socket() as probe:  # a free port, chosen by the kernel
            probe.bind(("127.0.0.1", 0))
            port = int(probe.getsockname()[1])
        log = root / "scoring.log"
        with open(log, "ab") as out:
            # No session of its own: the supervisor stops it with the emulator's group.
            process = subprocess.Popen(
                scoring_command(model_dir, port, workers=1, python=python),
                env=scoring_environment(),
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        try:
            wait_until(
                lambda: http_ok(f"http://127.0.0.1:{port}/ping"),
                service=f"the model server for {digest[:12]}",
                timeout=120,
                log=log,
                alive=lambda: process.poll() is None,
            )
        except ServiceStartError:
            process.kill()
            process.wait()
            raise
        return _Server(process, port)


_SERVERS = _ModelServers()


def _variant(endpoint: Any, config: Any, wanted: str | None) -> dict[str, Any]:
    variants: list[dict[str, Any]] = endpoint.production_variants
    if wanted:
        for variant in variants:
            if variant["VariantName"] == wanted:
                return variant
        raise _validation_error(f"Variant {wanted} not found for endpoint {endpoint.endpoint_name}")
    # moto records no CurrentWeight for a variant created with weight 0: the config's weight
    # stands until UpdateEndpointWeightsAndCapacities sets one.
    initial = {v["VariantName"]: v.get("InitialVariantWeight", 1.0) for v in config}
    weights = [float(v.get("CurrentWeight", initial.get(v["VariantName"], 1.0))) for v in variants]
    if not variants or sum(weights) <= 0:
        raise _validation_error(f"Endpoint {endpoint.endpoint_name} has no variant with traffic")
    # Traffic routing, not a secret: any generator will do.
    return random.choices(variants, weights=weights)[0]  # noqa: S311


def _container(account: str, region: str, config: Any, variant_name: str) -> dict[str, Any]:
    """The primary container (Image, ModelDataUrl) of the variant's SageMaker model."""
    backend = sagemaker_backends[account][region]
    (model_name,) = [v["ModelName"] for v in config if v["VariantName"] == variant_name]
    return dict(backend._models[model_name].primary_container or {})


def _model_archive(account: str, container: dict[str, Any], endpoint_name: str) -> bytes:
    url = str(container.get("ModelDataUrl", ""))
    bucket, _, key = url.removeprefix("s3://").partition("/")
    found = s3_backends[account]["aws"].get_object(bucket, key) if bucket and key else None
    if found is None:
        raise _ModelError(500, f"model data {url or '(none)'} not found", endpoint_name, account)
    return bytes(found.value)


def _image_python(account: str, region: str, image: str, endpoint_name: str) -> Path | None:
    """The interpreter of the environment of the image's lock (None: the kit's own).

    The image's labels name its source and the sha256 of its lock. The environment is the one
    made of that lock (by whichever source: the same bytes, the same packages), else one made
    now from a configured source's lock with that sha256.
    """
    labels = image_labels(account, region, image) or {}
    name, lock = labels.get(SOURCE_LABEL), labels.get(LOCK_LABEL, "")
    if not name:
        return None  # an image the kit did not build: nothing says which environment it holds
    python = made_environment(lock)
    if python is not None:
        return python
    try:
        for env in load_environments().values():
            for source in configured_sources(env).values():
                if source.lock.is_file() and source.lock_sha256() == lock:
                    return source_python(source, SilentReporter())
    except PlatformError as exc:
        message = f"the serving image's environment: {exc}"
        raise _ModelError(500, message, endpoint_name, account) from exc
    raise _ModelError(
        500,
        f"the serving image of source {name} holds lock sha256 {lock[:12]}…, which no "
        "environment here is made of and no configured source's lock has: train or serve the "
        "model here once (invoke serve --model M makes its environment)",
        endpoint_name,
        account,
    )


def _invoke_endpoint(self: SageMakerRuntimeResponse) -> Any:
    name = str(self._get_params().get("EndpointName") or self.path.split("/")[2])
    account, region = self.current_account, self.region
    backend = sagemaker_backends[account][region]
    endpoint = backend.endpoints.get(name)
    if endpoint is None:
        raise _validation_error(f"Endpoint {name} of account {account} not found.")
    if endpoint.endpoint_status != "InService":
        raise _validation_error(
            f"Endpoint {name} of account {account} is {endpoint.endpoint_status}, not InService."
        )
    body = self.body if isinstance(self.body, bytes) else str(self.body).encode()
    if len(body) > MAX_PAYLOAD_BYTES:
        raise _validation_error(
            f"Request payload of {len(body)} bytes exceeds the limit of {MAX_PAYLOAD_BYTES}."
        )
    config = backend.endpoint_configs[endpoint.endpoint_config_name].production_variants
    variant = _variant(endpoint, config, self.headers.get("X-Amzn-SageMaker-Target-Variant"))
    container = _container(account, region, config, variant["VariantName"])
    archive = _model_archive(account, container, name)
    python = _image_python(account, region, str(container.get("Image", "")), name)
    try:
        url = _SERVERS.url(archive, python)
    except ServiceStartError as exc:
        # As SageMaker reports a container that never answers /ping: the model's failure.
        raise _ModelError(500, str(exc), name, account) from exc
    headers = {
        "Content-Type": self.headers.get("Content-Type") or "application/json",
        "Accept": self.headers.get("Accept") or "application/json",
    }
    try:
        answer = requests.post(f"{url}/invocations", data=body, headers=headers, timeout=60)
    except requests.RequestException as exc:
        raise _ModelError(500, f"the model server did not answer: {exc}", name, account) from exc
    if answer.status_code >= 400:
        raise _ModelError(answer.status_code, answer.text.strip()[:1024], name, account)
    return (
        200,
        {
            "Content-Type": answer.headers.get("Content-Type", "application/json"),
            "x-Amzn-Invoked-Production-Variant": variant["VariantName"],
        },
        answer.content,
    )


def install() -> None:
    """From now on, this process's moto answers InvokeEndpoint with the endpoint's model.

    The models folder starts empty: the account is new, so are its endpoints.
    """
    folder = os.environ.get(MODELS_VARIABLE)
    if folder:
        shutil.rmtree(folder, ignore_errors=True)
    SageMakerRuntimeResponse.invoke_endpoint = _invoke_endpoint  # type: ignore[method-assign]
