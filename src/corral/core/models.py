"""Plain values shared by every layer: lifecycle enums and frozen dataclasses.

Naming follows the style guide: a ``...Spec`` or ``...Target`` is desired state (what the user
configured), a ``...State`` enum is observed lifecycle. Units are in field names. Wire shapes
(Lambda JSON) live in ``api/shapes.py``; rows live in ``store``; these are the values between.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, NamedTuple

__all__ = [
    "LATEST",
    "LATEST_PUBLISHED",
    "Alias",
    "CapacityProvider",
    "CapacityProviderState",
    "EnvironmentState",
    "Function",
    "FunctionSpec",
    "FunctionState",
    "FunctionVersion",
    "InstanceRequirements",
    "InstanceState",
    "InstanceType",
    "InvocationType",
    "LastUpdateStatus",
    "LoggingConfig",
    "ManagedInstancesConfig",
    "ScalingConfig",
    "ScalingMode",
    "ScalingPolicy",
    "VersionRef",
    "default_concurrency_per_vcpu",
    "is_published",
]

LATEST = "$LATEST"
LATEST_PUBLISHED = "$LATEST.PUBLISHED"


def is_published(version: str) -> bool:
    """Whether ``version`` names a published version (a number or ``$LATEST.PUBLISHED``)."""
    return version == LATEST_PUBLISHED or version.isdigit()


class FunctionState(StrEnum):
    """``FunctionConfiguration.State``."""

    PENDING = "Pending"
    ACTIVE = "Active"
    INACTIVE = "Inactive"
    FAILED = "Failed"
    DEACTIVATING = "Deactivating"
    DEACTIVATED = "Deactivated"
    ACTIVE_NON_INVOCABLE = "ActiveNonInvocable"
    DELETING = "Deleting"


class LastUpdateStatus(StrEnum):
    """``FunctionConfiguration.LastUpdateStatus``."""

    SUCCESSFUL = "Successful"
    FAILED = "Failed"
    IN_PROGRESS = "InProgress"


class CapacityProviderState(StrEnum):
    """``CapacityProvider.State``."""

    PENDING = "Pending"
    ACTIVE = "Active"
    FAILED = "Failed"
    DELETING = "Deleting"


class ScalingMode(StrEnum):
    """``CapacityProviderScalingConfig.ScalingMode``."""

    AUTO = "Auto"
    MANUAL = "Manual"


class InvocationType(StrEnum):
    """The ``X-Amz-Invocation-Type`` header of Invoke."""

    REQUEST_RESPONSE = "RequestResponse"
    EVENT = "Event"
    DRY_RUN = "DryRun"


class EnvironmentState(StrEnum):
    """The observed lifecycle of one execution environment."""

    STARTING = "Starting"
    READY = "Ready"
    DRAINING = "Draining"
    STOPPED = "Stopped"
    FAILED = "Failed"


class InstanceState(StrEnum):
    """The observed lifecycle of one instance of a capacity provider."""

    PENDING = "Pending"
    RUNNING = "Running"
    DRAINING = "Draining"
    TERMINATED = "Terminated"


@dataclass(frozen=True)
class InstanceType:
    """An EC2 instance type Managed Instances can use: its size and on-demand price."""

    name: str
    family: str
    category: str
    architecture: str
    vcpus: int
    memory_mib: int
    price_per_hour: float
    gpus: int = 0
    gpu_model: str | None = None
    gpu_memory_gib: int = 0

    @property
    def memory_gib_per_vcpu(self) -> float:
        return self.memory_mib / 1024 / self.vcpus


class VersionRef(NamedTuple):
    """A function version: ``("orders", "3")``, ``("orders", "$LATEST")``."""

    function: str
    version: str

    def __str__(self) -> str:
        return f"{self.function}:{self.version}"


@dataclass(frozen=True)
class LoggingConfig:
    """``LoggingConfig`` of a function."""

    log_format: str = "Text"
    application_log_level: str | None = None
    system_log_level: str | None = None
    log_group: str = ""

    def group_for(self, function_name: str) -> str:
        """The log group the function writes to (AWS's default: ``/aws/lambda/<name>``)."""
        return self.log_group or f"/aws/lambda/{function_name}"


def default_concurrency_per_vcpu(runtime: str) -> int:
    """Lambda's default ``PerExecutionEnvironmentMaxConcurrency`` per vCPU (Python: 16,
    Node.js: 64, others 32; LMI_FACTS.md, concurrency by runtime)."""
    if runtime.startswith("python"):
        return 16
    return 64 if runtime.startswith("nodejs") else 32


@dataclass(frozen=True)
class ManagedInstancesConfig:
    """``LambdaManagedInstancesCapacityProviderConfig`` of a function."""

    capacity_provider_arn: str
    per_environment_max_concurrency: int | None = None
    memory_gib_per_vcpu: float = 2.0

    @property
    def capacity_provider_name(self) -> str:
        return self.capacity_provider_arn.rsplit(":", 1)[-1]

    def vcpus(self, memory_size_mb: int) -> int:
        """Whole vCPUs of one execution environment: memory / ratio, rounded up."""
        return max(1, math.ceil(memory_size_mb / (self.memory_gib_per_vcpu * 1024)))

    def concurrency(self, memory_size_mb: int, runtime: str) -> int:
        """Slots per execution environment: the configured value or the runtime's default."""
        if self.per_environment_max_concurrency is not None:
            return self.per_environment_max_concurrency
        return self.vcpus(memory_size_mb) * default_concurrency_per_vcpu(runtime)


@dataclass(frozen=True)
class FunctionSpec:
    """The configuration of one function version, as the user set it."""

    runtime: str
    handler: str
    role: str
    code_sha256: str
    code_size: int
    memory_size_mb: int = 128
    timeout_s: int = 3
    description: str = ""
    environment: Mapping[str, str] = field(default_factory=dict)
    # Whether ``Environment`` was ever given (AWS shows ``{"Variables": {}}`` then, and no
    # ``Environment`` at all for a function never given one).
    environment_given: bool = False
    architectures: tuple[str, ...] = ("x86_64",)
    ephemeral_storage_mb: int = 512
    logging: LoggingConfig = field(default_factory=LoggingConfig)
    managed: ManagedInstancesConfig | None = None
    package_type: str = "Zip"
    tracing_mode: str = "PassThrough"

    @property
    def is_managed(self) -> bool:
        """Whether this version runs on a capacity provider (Lambda Managed Instances)."""
        return self.managed is not None

    @property
    def concurrency(self) -> int:
        """Invocations one execution environment serves at once (1 for classic functions)."""
        if self.managed is None:
            return 1
        return self.managed.concurrency(self.memory_size_mb, self.runtime)


@dataclass(frozen=True)
class FunctionVersion:
    """One version of a function: ``$LATEST``, ``$LATEST.PUBLISHED`` or a number."""

    function_name: str
    version: str
    spec: FunctionSpec
    state: FunctionState
    last_modified_s: float
    revision_id: str
    state_reason: str = ""
    state_reason_code: str = ""
    last_update_status: LastUpdateStatus = LastUpdateStatus.SUCCESSFUL
    last_update_status_reason: str = ""
    last_update_status_reason_code: str = ""

    @property
    def ref(self) -> VersionRef:
        return VersionRef(self.function_name, self.version)


@dataclass(frozen=True)
class Function:
    """A function's identity and the settings that are not per version."""

    name: str
    created_s: float
    reserved_concurrency: int | None = None
    last_version_number: int = 0
    # A digest of ``$LATEST`` when the last numbered version was published from it.
    published_spec: str = ""


@dataclass(frozen=True)
class Alias:
    """A named pointer to a version, with optional weighted routing."""

    function_name: str
    name: str
    function_version: str
    revision_id: str
    description: str = ""
    routing_weights: Mapping[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class InstanceRequirements:
    """Which instance types a capacity provider may use."""

    architectures: tuple[str, ...] = ("x86_64",)
    allowed_instance_types: tuple[str, ...] = ()
    excluded_instance_types: tuple[str, ...] = ()


@dataclass(frozen=True)
class ScalingPolicy:
    """A target-tracking policy: keep ``metric`` near ``target_value`` percent."""

    metric: str
    target_value: float


@dataclass(frozen=True)
class CapacityProvider:
    """A pool of instances that Managed Instances functions run on."""

    name: str
    arn: str
    state: CapacityProviderState
    subnet_ids: tuple[str, ...]
    security_group_ids: tuple[str, ...]
    operator_role_arn: str
    last_modified_s: float
    requirements: InstanceRequirements = field(default_factory=InstanceRequirements)
    max_vcpu_count: int = 400
    scaling_mode: ScalingMode = ScalingMode.AUTO
    scaling_policies: tuple[ScalingPolicy, ...] = ()
    kms_key_arn: str = ""
    propagate_tags_mode: str = ""
    propagate_explicit_tags: Mapping[str, str] = field(default_factory=dict)
    system_log_level: str = ""
    log_group: str = ""

    @property
    def system_log_group(self) -> str:
        """Where the provider's system log (instance lifecycle events) goes."""
        return self.log_group or f"/aws/lambda/capacity-provider/{self.name}"


@dataclass(frozen=True)
class ScalingConfig:
    """``FunctionScalingConfig`` of a published version; ``None`` means the default."""

    min_environments: int | None = None
    max_environments: int | None = None

    DEFAULT_MIN = 3

    @property
    def effective_min(self) -> int:
        return self.DEFAULT_MIN if self.min_environments is None else self.min_environments

    @property
    def deactivated(self) -> bool:
        """``min = max = 0`` deactivates a version without deleting it."""
        return self.min_environments == 0 and self.max_environments == 0


@dataclass(frozen=True)
class EventInvokeConfig:
    """How asynchronous invocations of one qualifier are retried and where their records go
    (``PutFunctionEventInvokeConfig``); ``None`` means AWS's default."""

    function_name: str
    qualifier: str  # "$LATEST" for the unqualified function
    last_modified_s: float
    max_retry_attempts: int | None = None
    max_event_age_s: int | None = None
    on_success: str | None = None  # a Lambda function ARN
    on_failure: str | None = None


@dataclass(frozen=True)
class FunctionUrlConfig:
    """A function URL (``CreateFunctionUrlConfig``) of ``$LATEST`` or of an alias."""

    function_name: str
    qualifier: str  # "$LATEST" for the unqualified function, else an alias name
    url_id: str
    auth_type: str  # NONE | AWS_IAM
    invoke_mode: str  # BUFFERED | RESPONSE_STREAM
    created_s: float
    modified_s: float
    # AWS's ``Cors`` structure as given (AllowOrigins, AllowMethods, ...), or None.
    cors: Mapping[str, Any] | None = None
    # Whether InvokeMode was ever given (Create/Update answers show it only then).
    invoke_mode_given: bool = False
