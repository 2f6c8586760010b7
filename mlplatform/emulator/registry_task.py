"""An environment's MLflow task in its emulated account, started as its Fargate service starts it.

    python -m mlplatform.emulator.registry_task prod   # `invoke emulate --env prod --account`

ECS starts the service's task once a deploy gives the service an image; until then the account
has no task. This waits for the same moment (the MLflow stack reporting the image its service
runs), prepares what RDS and ECS's secret injection provide in AWS (environment.py
`prepare_registry`), then becomes the task's entrypoint, `python -m mlflow_server serve
--migrate`, in this process, so the emulation's supervisor stops the server as it stops the task.
"""

from __future__ import annotations

import os
import re
import sys
import time

from mlplatform.child_env import inherited_environment
from mlplatform.cloud.stack_outputs import describe_stack
from mlplatform.config import DIGEST_PATTERN
from mlplatform.emulator.environment import Emulation
from mlplatform.errors import PlatformError
from mlplatform.names import Output, stack_name
from mlplatform.target import resolve_targets

__all__ = ["main", "service_has_image"]

_DIGEST = re.compile(DIGEST_PATTERN)


def service_has_image(emulation: Emulation) -> bool:
    """Whether the environment's MLflow stack reports an image its service runs."""
    cloudformation = emulation.aws_client("cloudformation")
    stack = describe_stack(cloudformation, stack_name(emulation.env, "mlflow"))
    if stack is None or stack.never_created:
        return False
    return bool(_DIGEST.match(stack.outputs.get(Output.SERVICE_IMAGE_DIGEST, "")))


def main(argv: list[str]) -> int:
    """Wait for the service's image, prepare the registry, exec its server."""
    (name,) = argv
    emulation = Emulation(*resolve_targets(name, "local"))
    print(f"{name}'s MLflow service: waiting for `invoke deploy` to give it an image", flush=True)
    while True:
        try:
            if service_has_image(emulation):
                break
        except PlatformError as exc:  # the account restarting: ask again
            print(exc, flush=True)
        time.sleep(1)
    emulation.prepare_registry()
    program = emulation.registry_program()
    print(f"{name}'s MLflow service: starting its task", flush=True)
    environment = {**inherited_environment(), **program.environment}
    # The task becomes its server: signals from the supervisor reach MLflow itself.
    os.execve(program.command[0], list(program.command), environment)  # noqa: S606


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
