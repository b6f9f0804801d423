"""A context object with the attributes the Python runtime hands a handler, for in-process calls.

Tests and the fault harness call ``lambda_function.handler`` directly in their
own process, where there is no runtime to build the context. Everything that
runs in an execution environment (invoke.py, serve, the pool) gets awslambdaric's
own context instead, so this stand-in lives in testkit/, not in local_runtime/.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass, field
from typing import Any

from local_runtime.config import ACCOUNT_ID


@dataclass(frozen=True)
class CognitoIdentity:
    cognito_identity_id: str | None = None
    cognito_identity_pool_id: str | None = None


@dataclass
class LambdaContext:
    """Mirrors ``awslambdaric``'s context: same names, same types.

    ``memory_limit_in_mb`` is a string because the real runtime reads it from
    the environment and passes it on unconverted.
    """

    function_name: str
    memory_limit_in_mb: str
    invoked_function_arn: str
    log_group_name: str
    log_stream_name: str
    deadline_ms: int
    function_version: str = "$LATEST"
    aws_request_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    identity: CognitoIdentity = field(default_factory=CognitoIdentity)
    client_context: Any = None

    def get_remaining_time_in_millis(self) -> int:
        return max(0, self.deadline_ms - int(time.time() * 1000))


def function_arn(name: str, region: str, account_id: str = ACCOUNT_ID) -> str:
    return f"arn:aws:lambda:{region}:{account_id}:function:{name}"


def make_context(
    *,
    function_name: str,
    memory_mb: int,
    timeout_s: float,
    region: str,
    log_stream_name: str,
    request_id: str | None = None,
    client_context: Any = None,
) -> LambdaContext:
    """A context for one invocation whose clock starts now."""
    return LambdaContext(
        function_name=function_name,
        memory_limit_in_mb=str(memory_mb),
        invoked_function_arn=function_arn(function_name, region),
        log_group_name=f"/aws/lambda/{function_name}",
        log_stream_name=log_stream_name,
        deadline_ms=int(time.time() * 1000 + timeout_s * 1000),
        aws_request_id=request_id or str(uuid.uuid4()),
        client_context=client_context,
    )
