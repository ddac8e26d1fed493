"""Values for tests: valid by default, any field replaceable."""

from __future__ import annotations

import dataclasses
from typing import Any

from corral.core import models

PROVIDER_ARN = "arn:aws:lambda:us-east-1:123456789012:capacity-provider:pool-1"


def function_spec(**changes: Any) -> models.FunctionSpec:
    """A valid ``FunctionSpec``; keyword arguments replace its fields."""
    base = models.FunctionSpec(
        runtime="python3.12",
        handler="app.handler",
        role="arn:aws:iam::123456789012:role/r",
        code_sha256="sha=",
        code_size=1,
    )
    return dataclasses.replace(base, **changes)
