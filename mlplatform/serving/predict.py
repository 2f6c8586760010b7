"""`invoke predict`: one request to an environment's model, as a client application sends it.

    predict(prod, b'{"dataframe_records": [...]}')    # prod's SageMaker endpoint
    predict(local, body, "text/csv", port=8080)        # `invoke serve`'s /invocations

A cloud environment's endpoint is called through SageMaker's runtime API with boto3's own chain
(AWS, or the emulated account through AWS_ENDPOINT_URL, where the endpoint's own model answers:
mlplatform/emulator/sagemaker_runtime.py). The local environment has no SageMaker: its endpoint is
`invoke serve` on 127.0.0.1, which speaks the same /invocations contract.
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import botocore.exceptions
import requests

from mlplatform.names import endpoint_name
from mlplatform.serving.rollout import EndpointError
from mlplatform.target import Target

__all__ = ["Prediction", "predict", "request_body"]


@dataclass(frozen=True)
class Prediction:
    """The model's answer: its body and content type, and the variant that served it."""

    body: bytes
    content_type: str
    variant: str | None  # None: `invoke serve` has no variants

    @property
    def text(self) -> str:
        """The body as text (an undecodable byte shown as U+FFFD)."""
        return self.body.decode("utf-8", errors="replace")

    def as_json(self) -> dict[str, Any]:
        """variant, content_type, and the body parsed where it is JSON (else its text)."""
        try:
            body: Any = json.loads(self.text)
        except ValueError:
            body = self.text
        return {"variant": self.variant, "content_type": self.content_type, "body": body}


def request_body(source: str) -> bytes:
    """The bytes of the request: a file's, or standard input's for "-"."""
    if source == "-":
        if sys.stdin.isatty():  # nothing piped: reading would wait for the terminal
            raise EndpointError("no request: pipe one in, or pass --input FILE")
        return sys.stdin.buffer.read()
    try:
        return Path(source).read_bytes()
    except OSError as exc:
        raise EndpointError(f"cannot read the request {source}: {exc.strerror}") from exc


def _one_line(text: str, limit: int = 300) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


def _refused(status: object, message: str) -> EndpointError:
    return EndpointError(f"the model refused the request ({status}): {_one_line(message)}")


def _local(body: bytes, content_type: str, port: int) -> Prediction:
    url = f"http://127.0.0.1:{port}/invocations"
    try:
        answer = requests.post(url, data=body, headers={"Content-Type": content_type}, timeout=60)
    except requests.ConnectionError as exc:
        raise EndpointError(
            f"nothing answers at {url}; start the endpoint with `invoke serve` (or pass --port)"
        ) from exc
    if answer.status_code >= 400:
        raise _refused(answer.status_code, answer.text)
    return Prediction(answer.content, answer.headers.get("Content-Type", ""), None)


def _sagemaker(
    target: Target, body: bytes, content_type: str, variant: str | None, model: str | None
) -> Prediction:
    name = endpoint_name(target.env, target.env.model(model))
    request = {"EndpointName": name, "Body": body, "ContentType": content_type}
    if variant:
        request["TargetVariant"] = variant
    try:
        answer = target.client("sagemaker-runtime").invoke_endpoint(**request)
    except botocore.exceptions.ClientError as exc:
        error = exc.response.get("Error", {})
        if error.get("Code") == "ModelError":
            original = exc.response.get("OriginalMessage") or error.get("Message", "")
            raise _refused(exc.response.get("OriginalStatusCode", "error"), original) from exc
        raise EndpointError(
            f"cannot invoke {name} in {target.name}: {_one_line(error.get('Message', str(exc)))}"
        ) from exc
    return Prediction(
        answer["Body"].read(), answer.get("ContentType", ""), answer.get("InvokedProductionVariant")
    )


def predict(
    target: Target,
    body: bytes,
    content_type: str = "application/json",
    variant: str | None = None,
    port: int = 8080,
    model: str | None = None,
) -> Prediction:
    """Send `body` to a model's endpoint in the environment and return the model's answer.

    `variant` names a production variant and `model` the endpoint's model (cloud only; default:
    the environment's only model); `port` is `invoke serve`'s (local only).
    A refused request, an unknown endpoint or nothing listening is one EndpointError line.
    """
    if not body.strip():
        raise EndpointError("the request body is empty; pass --input FILE (or - for stdin)")
    if target.is_local:
        if variant:
            raise EndpointError("--variant is for a cloud endpoint; `invoke serve` has none")
        return _local(body, content_type, port)
    return _sagemaker(target, body, content_type, variant, model)
