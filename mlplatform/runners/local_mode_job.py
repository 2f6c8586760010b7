"""One SageMaker local-mode training job, run in the SDK's own environment (not the kit's).

    python local_mode_job.py < spec.json

The SageMaker Python SDK (v2, requirements/local-container.txt) pins older protobuf and rich than
the kit, so it lives in a virtualenv of its own and this file imports only the standard library,
boto3 and sagemaker. The kit (mlplatform/runners/local_container.py) writes the spec on stdin and
reads the result file; keys never travel through the spec or the command line: boto3 reads the
local stack's credentials file (AWS_SHARED_CREDENTIALS_FILE) and nothing else (AWS_CONFIG_FILE is
the null device, instance metadata is off).
"""

from __future__ import annotations

import json
import logging
import sys
import traceback
from typing import Any

REQUIRED = (
    "image",
    "job_name",
    "region",
    "s3_endpoint",
    "channels",
    "output_path",
    "hyperparameters",
    "environment",
    "container_root",
    "result_file",
)


def _host_network_container(base: Any) -> Any:
    """The SDK's container class with host networking.

    The kit's native stack listens on 127.0.0.1 only, which a container on the SDK's bridge
    network (`sagemaker-local`) cannot reach. The SDK's `local.container_config` is merged into
    each service, but the SDK then always adds `networks`, and Compose refuses a service with both
    (`declares mutually exclusive network_mode and networks`): the service's `networks` must go.
    """

    class HostNetworkContainer(base):  # type: ignore[misc]
        def _create_docker_host(self, *args: Any, **kwargs: Any) -> dict[str, Any]:
            config: dict[str, Any] = super()._create_docker_host(*args, **kwargs)
            config.pop("networks", None)
            config["network_mode"] = "host"
            return config

    return HostNetworkContainer


def run(spec: dict[str, Any]) -> dict[str, Any]:
    """Run the job through `Estimator(instance_type="local").fit()`; return where the model is."""
    import boto3
    import sagemaker.local.local_session as local_session
    from sagemaker.estimator import Estimator
    from sagemaker.inputs import TrainingInput
    from sagemaker.local import LocalSession

    local_session._SageMakerContainer = _host_network_container(local_session._SageMakerContainer)
    session = LocalSession(
        boto_session=boto3.Session(region_name=spec["region"]),
        s3_endpoint_url=spec["s3_endpoint"],
        # An explicit SDK config, so no defaults file of this machine or user (or an S3 URI one
        # names) is read; and no telemetry call to AWS, which this machine must not reach.
        sagemaker_config={
            "SchemaVersion": "1.0",
            "SageMaker": {"PythonSDK": {"Modules": {"TelemetryOptOut": True}}},
        },
    )
    session.config = {
        "local": {
            "local_code": True,
            "container_root": spec["container_root"],
            "container_config": {"network_mode": "host"},
        }
    }
    estimator = Estimator(
        image_uri=spec["image"],
        # Local mode assumes no role; the SDK only requires the argument.
        role="arn:aws:iam::000000000000:role/local-mode",
        instance_count=1,
        instance_type="local",
        output_path=spec["output_path"],
        hyperparameters=spec["hyperparameters"],
        environment=spec["environment"],
        sagemaker_session=session,
    )
    inputs = {
        name: TrainingInput(uri, content_type="text/csv") for name, uri in spec["channels"].items()
    }
    estimator.fit(inputs=inputs, job_name=spec["job_name"], wait=True, logs="All")
    return {"model_data": estimator.model_data}


def main() -> int:
    """Read the spec from stdin, run the job, write {"model_data"} or {"error"} to result_file."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    spec = json.load(sys.stdin)
    missing = [key for key in REQUIRED if key not in spec]
    if missing:
        print(f"local_mode_job: spec lacks {missing}", file=sys.stderr)
        return 2
    try:
        result = run(spec)
        code = 0
    except Exception as exc:
        traceback.print_exc()
        result = {"error": f"{type(exc).__name__}: {exc}".strip().splitlines()[0][:500]}
        code = 1
    with open(spec["result_file"], "w", encoding="utf-8") as fh:
        json.dump(result, fh)
    return code


if __name__ == "__main__":
    sys.exit(main())
