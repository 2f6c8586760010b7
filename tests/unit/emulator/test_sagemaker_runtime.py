"""The emulated InvokeEndpoint (mlplatform.emulator.sagemaker_runtime) in moto, in process.

The model server is a stand-in here (a small HTTP server in this process that echoes what it
got): these tests check what the emulator sends it and how it maps the answer, as SageMaker
does. That the real scoring server answers with the model's predictions is
tests/integration/test_deploy.py::test_the_endpoint_answers_with_the_champions_predictions.
"""

from __future__ import annotations

import gzip
import io
import json
import tarfile
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import boto3
import botocore.exceptions
import pytest
from moto import mock_aws
from moto.sagemakerruntime.responses import SageMakerRuntimeResponse

from mlplatform.emulator import ecr_images, sagemaker_runtime
from mlplatform.errors import ServiceStartError
from mlplatform.images.oci_archive import open_image
from mlplatform.names import LOCK_LABEL, SOURCE_LABEL
from mlplatform.release.ecr_push import push_image
from mlplatform.reporting import SilentReporter
from tests.oci_images import write_archive

REGION = "eu-west-1"
ENDPOINT = "mlp-prod-fraud-classifier"
BUCKET = "models"


class _Echo(BaseHTTPRequestHandler):
    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        status = 400 if body == b"bad" else 200
        answer = json.dumps(
            {"got": body.decode(), "type": self.headers["Content-Type"]}
            if status == 200
            else {"message": "Invalid input. Data is not compatible\nwith the model signature"}
        ).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(answer)))
        self.end_headers()
        self.wfile.write(answer)

    def log_message(self, *args: Any) -> None:
        pass


def archive(name: str) -> bytes:
    """A model.tar.gz of one file, the same bytes every time (gzip's time fixed)."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        data = name.encode()
        info = tarfile.TarInfo("MLmodel")
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
    return gzip.compress(buffer.getvalue(), mtime=0)


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[SimpleNamespace]:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "emulator")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "emulator")
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Echo)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    served: list[bytes] = []
    pythons: list[Path | None] = []

    class Servers:
        def url(self, model: bytes, python: Path | None) -> str:
            served.append(model)
            pythons.append(python)
            return f"http://127.0.0.1:{server.server_address[1]}"

    monkeypatch.setattr(sagemaker_runtime, "_SERVERS", Servers())
    monkeypatch.setattr(
        SageMakerRuntimeResponse, "invoke_endpoint", sagemaker_runtime._invoke_endpoint
    )
    try:
        with mock_aws():
            sm = boto3.client("sagemaker", region_name=REGION)
            s3 = boto3.client("s3", region_name=REGION)
            s3.create_bucket(
                Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint": REGION}
            )
            variants = []
            for variant, weight in (("champion", 0.0), ("challenger", 1.0)):
                s3.put_object(Bucket=BUCKET, Key=f"{variant}.tar.gz", Body=archive(variant))
                sm.create_model(
                    ModelName=f"m-{variant}",
                    ExecutionRoleArn="arn:aws:iam::123456789012:role/endpoint",
                    PrimaryContainer={
                        "Image": "123456789012.dkr.ecr.eu-west-1.amazonaws.com/serving:1",
                        "ModelDataUrl": f"s3://{BUCKET}/{variant}.tar.gz",
                    },
                )
                variants.append(
                    {
                        "VariantName": variant,
                        "ModelName": f"m-{variant}",
                        "InitialInstanceCount": 1,
                        "InstanceType": "ml.m5.large",
                        "InitialVariantWeight": weight,
                    }
                )
            sm.create_endpoint_config(EndpointConfigName="c", ProductionVariants=variants)
            sm.create_endpoint(EndpointName=ENDPOINT, EndpointConfigName="c")
            runtime = boto3.client("sagemaker-runtime", region_name=REGION)
            yield SimpleNamespace(runtime=runtime, served=served, s3=s3, sm=sm, pythons=pythons)
    finally:
        server.shutdown()


def invoke(aws: SimpleNamespace, body: bytes, **extra: str) -> dict[str, Any]:
    return dict(
        aws.runtime.invoke_endpoint(
            EndpointName=ENDPOINT, Body=body, ContentType="text/csv", **extra
        )
    )


def test_the_request_reaches_the_model_of_the_variant_traffic_goes_to(aws) -> None:  # type: ignore[no-untyped-def]
    answers = [invoke(aws, b"1,2\n") for _ in range(20)]
    # The champion has weight 0: every request goes to the challenger, with its own archive.
    assert {a["InvokedProductionVariant"] for a in answers} == {"challenger"}
    assert json.loads(answers[0]["Body"].read()) == {"got": "1,2\n", "type": "text/csv"}
    assert answers[0]["ContentType"] == "application/json"
    assert aws.served == [archive("challenger")] * 20


def test_a_target_variant_is_served_by_its_own_model(aws) -> None:  # type: ignore[no-untyped-def]
    answer = invoke(aws, b"1,2\n", TargetVariant="champion")
    assert answer["InvokedProductionVariant"] == "champion"
    assert aws.served == [archive("champion")]


def error(aws: SimpleNamespace, body: bytes, **extra: str) -> dict[str, Any]:
    with pytest.raises(botocore.exceptions.ClientError) as raised:
        invoke(aws, body, **extra)
    return dict(raised.value.response)


def test_what_sagemaker_refuses_is_refused_as_sagemaker_does(aws) -> None:  # type: ignore[no-untyped-def]
    refused = error(aws, b"bad")
    assert refused["Error"]["Code"] == "ModelError"
    assert refused["ResponseMetadata"]["HTTPStatusCode"] == 424
    assert refused["OriginalStatusCode"] == 400
    assert "Data is not compatible" in refused["OriginalMessage"]
    assert refused["Error"]["Message"].startswith("Received client error (400) from primary")

    unknown = error(aws, b"1", TargetVariant="blue")
    assert unknown["Error"] == {
        "Code": "ValidationError",
        "Message": f"Variant blue not found for endpoint {ENDPOINT}",
    }
    big = error(aws, b"x" * (sagemaker_runtime.MAX_PAYLOAD_BYTES + 1))
    assert (
        big["Error"]["Code"] == "ValidationError"
        and "exceeds the limit" in (big["Error"]["Message"])
    )
    with pytest.raises(botocore.exceptions.ClientError, match="not found"):
        aws.runtime.invoke_endpoint(EndpointName="nope", Body=b"1")
    # Only the body the model itself refused reached a model; what SageMaker refuses never does.
    assert aws.served == [archive("challenger")]


def test_a_model_archive_gone_from_s3_is_a_model_error(aws) -> None:  # type: ignore[no-untyped-def]
    aws.s3.delete_object(Bucket=BUCKET, Key="challenger.tar.gz")
    gone = error(aws, b"1,2\n")
    assert gone["Error"]["Code"] == "ModelError"
    assert gone["OriginalMessage"] == f"model data s3://{BUCKET}/challenger.tar.gz not found"


def test_a_model_server_that_fails_or_does_not_answer_is_a_model_error(  # type: ignore[no-untyped-def]
    aws, monkeypatch: pytest.MonkeyPatch
) -> None:
    class NeverStarts:
        def url(self, model: bytes, python: Path | None) -> str:
            raise ServiceStartError("the model server for 0123 exited during start", "")

    monkeypatch.setattr(sagemaker_runtime, "_SERVERS", NeverStarts())
    failed = error(aws, b"1,2\n")
    assert (failed["Error"]["Code"], failed["OriginalStatusCode"]) == ("ModelError", 500)
    assert failed["OriginalMessage"] == "the model server for 0123 exited during start"

    class Gone:
        def url(self, model: bytes, python: Path | None) -> str:
            return "http://127.0.0.1:9"  # discard: nothing listens

    monkeypatch.setattr(sagemaker_runtime, "_SERVERS", Gone())
    silent = error(aws, b"1,2\n")
    assert silent["OriginalMessage"].startswith("the model server did not answer: ")


def _labelled_endpoint(aws: SimpleNamespace, tmp_path: Path, lock: str, layer: bytes) -> str:
    """An endpoint whose model runs an image pushed here, labelled as the kit labels its own."""
    ecr = boto3.client("ecr", region_name=REGION)
    ecr.create_repository(repositoryName="mlp-prod/serving")
    labels = {SOURCE_LABEL: "forecast", LOCK_LABEL: lock}
    write_archive(tmp_path / "serving.tar", {"layer": layer}, labels=labels)
    with open_image(tmp_path / "serving.tar") as image:
        push_image(ecr, "mlp-prod/serving", image, SilentReporter())
        uri = f"123456789012.dkr.ecr.{REGION}.amazonaws.com/mlp-prod/serving@{image.digest}"
    aws.sm.create_model(
        ModelName="m-labelled",
        ExecutionRoleArn="arn:aws:iam::123456789012:role/endpoint",
        PrimaryContainer={"Image": uri, "ModelDataUrl": f"s3://{BUCKET}/champion.tar.gz"},
    )
    aws.sm.create_endpoint_config(
        EndpointConfigName="labelled",
        ProductionVariants=[
            {"VariantName": "champion", "ModelName": "m-labelled", "InitialInstanceCount": 1,
             "InstanceType": "ml.m5.large", "InitialVariantWeight": 1.0}
        ],
    )  # fmt: skip
    aws.sm.create_endpoint(EndpointName="labelled", EndpointConfigName="labelled")
    return uri


def test_the_model_runs_in_the_environment_of_its_pushed_images_lock(  # type: ignore[no-untyped-def]
    aws, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """The pushed image's config names its lock; the server runs on that lock's environment.
    An image of the fixture's (a tag, no pushed config) runs on the kit's own Python."""
    monkeypatch.setattr(
        ecr_images.ECRBackend, "complete_layer_upload", ecr_images._complete_layer_upload
    )
    lock = "ab" * 32
    # A layer over the size the emulator keeps: its bytes are dropped, the config's are not.
    uri = _labelled_endpoint(aws, tmp_path, lock, b"x" * (ecr_images.KEPT_BLOB_BYTES + 1))
    assert ecr_images.image_labels("123456789012", REGION, uri) == {
        SOURCE_LABEL: "forecast",
        LOCK_LABEL: lock,
    }
    assert ecr_images.image_labels("123456789012", "us-east-1", uri) is None  # another region
    assert all(len(b) <= ecr_images.KEPT_BLOB_BYTES for b in ecr_images._BLOBS.values())

    made = tmp_path / "environment" / "bin" / "python"
    monkeypatch.setattr(sagemaker_runtime, "made_environment", {lock: made}.get)
    aws.runtime.invoke_endpoint(EndpointName="labelled", Body=b"1,2\n", ContentType="text/csv")
    invoke(aws, b"1,2\n")
    assert aws.pythons == [made, None]

    # A lock no environment here is made of, and no configured source has: the model's error.
    monkeypatch.setattr(sagemaker_runtime, "made_environment", lambda sha: None)
    with pytest.raises(botocore.exceptions.ClientError) as caught:
        aws.runtime.invoke_endpoint(EndpointName="labelled", Body=b"1,2\n", ContentType="text/csv")
    failed = caught.value.response
    assert failed["Error"]["Code"] == "ModelError"
    assert failed["OriginalMessage"].startswith(
        "the serving image of source forecast holds lock sha256 abababababab…, which no "
        "environment here is made of and no configured source's lock has"
    )
