"""moto gap: SageMaker UpdateEndpoint is not implemented (moto 5.2).

This adds it to moto's SageMaker backend and response handler, as MLflow's own test suite does:
the endpoint switches to the new config's variants at once and the request's DeploymentConfig is
kept on the endpoint object so tests can check the rollout request SageMaker would act on. An
update whose models the roles cannot pull or read (mlplatform.emulator.strict_iam) fails as in AWS:
the endpoint keeps its config and gets a FailureReason. What it
cannot show: blue/green traffic shifting, baking, and alarm-triggered rollback, which happen
inside SageMaker over minutes.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from moto.sagemaker.models import SageMakerModelBackend
from moto.sagemaker.responses import SageMakerResponse

from mlplatform.emulator.strict_iam import strict_update_check

__all__ = ["update_endpoint_supported"]


def _backend_update(
    self: Any,
    endpoint_name: str,
    endpoint_config_name: str,
    deployment_config: dict[str, Any] | None,
) -> Any:
    endpoint = self.endpoints[endpoint_name]
    config = self.describe_endpoint_config(endpoint_config_name)
    refused = strict_update_check(self, endpoint_name, endpoint_config_name)
    if refused is not None:
        # As SageMaker does: the update fails, the endpoint keeps serving the old config.
        endpoint.failure_reason = refused
        endpoint.endpoint_status = "InService"
        return endpoint
    endpoint.failure_reason = None
    endpoint.endpoint_config_name = endpoint_config_name
    endpoint.production_variants = endpoint._process_production_variants(
        config["ProductionVariants"]
    )
    endpoint.deployment_config = deployment_config
    endpoint.endpoint_status = "InService"
    return endpoint


def _response_update(self: Any) -> Any:
    from moto.core.responses import ActionResult

    endpoint = self.sagemaker_backend.update_endpoint(
        self._get_param("EndpointName"),
        self._get_param("EndpointConfigName"),
        self._get_param("DeploymentConfig"),
    )
    return ActionResult({"EndpointArn": endpoint.arn})


@contextmanager
def update_endpoint_supported() -> Iterator[None]:
    """Within the block, moto answers UpdateEndpoint."""
    SageMakerModelBackend.update_endpoint = _backend_update  # type: ignore[attr-defined]
    SageMakerResponse.update_endpoint = _response_update  # type: ignore[attr-defined]
    try:
        yield
    finally:
        del SageMakerModelBackend.update_endpoint  # type: ignore[attr-defined]
        del SageMakerResponse.update_endpoint  # type: ignore[attr-defined]
