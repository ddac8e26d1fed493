"""Applying a deploy's steps through the Lambda API (boto3, against Corral's endpoint).

One handler per resource type turns resolved CloudFormation properties into Lambda calls:
``create`` returns what the resource became (``Recorded``: physical id, attributes),
``update`` changes what changed, ``delete`` removes it. Physical names are the template's
(``FunctionName``, ``CapacityProviderName``, ``RoleName``) or ``<stack>-<logical id>``, so
that a deploy of the same template makes the same names. ``AWS::IAM::Role`` and
``AWS::Lambda::Permission`` are recorded, not enforced: Corral's access control is its keys.
"""

from __future__ import annotations

import hashlib
import io
import time
import zipfile
from collections.abc import Callable, Mapping
from typing import Any

from corral.core import errors
from corral.deploy.package import PLACEHOLDER_BUCKET, CodeSource, build
from corral.deploy.plan import Recorded

__all__ = ["Handler", "HANDLERS", "Target"]

Say = Callable[[str], None]


class Target:
    """Where a deploy goes: the Lambda client, the stack, the account and region, the code."""

    def __init__(
        self,
        lam: Any,
        stack: str,
        region: str,
        account: str,
        sources: Mapping[str, CodeSource],
        say: Say,
    ) -> None:
        self.lam = lam
        self.stack = stack
        self.region = region
        self.account = account
        self.sources = sources
        self.say = say
        self._built: dict[str, bytes] = {}

    def name(self, logical: str, given: Any, limit: int = 64) -> str:
        return str(given) if given else f"{self.stack}-{logical}"[:limit]

    def function_arn(self, name: str, qualifier: str | None = None) -> str:
        arn = f"arn:aws:lambda:{self.region}:{self.account}:function:{name}"
        return arn if qualifier is None else f"{arn}:{qualifier}"

    def code(self, logical: str, code: Mapping[str, Any], runtime: str | None) -> tuple[bytes, str]:
        """The zip of a function's ``Code`` and its digest.

        Raises:
            errors.TemplateError: code Corral cannot reach (S3, an image).
        """
        if "ZipFile" in code:
            extension = "js" if (runtime or "").startswith("nodejs") else "py"
            buffer = io.BytesIO()
            with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
                info = zipfile.ZipInfo(f"index.{extension}", (1980, 1, 1, 0, 0, 0))
                info.external_attr = 0o644 << 16
                archive.writestr(info, str(code["ZipFile"]))
            data = buffer.getvalue()
            return data, hashlib.sha256(data).hexdigest()
        if code.get("S3Bucket") == PLACEHOLDER_BUCKET and code.get("S3Key") in self.sources:
            key = str(code["S3Key"])
            if key not in self._built:
                self.say(f"{logical}: packaging {self.sources[key].path}")
                self._built[key] = build(self.sources[key], runtime)
            return self._built[key], key
        raise errors.TemplateError(
            f"{logical}: Corral cannot fetch code from {dict(code)}; give CodeUri (SAM) or Code "
            "(CloudFormation) as a local directory or .zip, or inline code"
        )


class Handler:
    """How one resource type is created, updated and deleted."""

    def create(self, target: Target, logical: str, props: dict[str, Any]) -> Recorded:
        raise NotImplementedError

    def update(
        self, target: Target, old: Recorded, props: dict[str, Any]
    ) -> Recorded:  # pragma: no cover - every handler overrides it
        raise NotImplementedError

    def delete(self, target: Target, old: Recorded) -> None:
        return None

    def digest(self, target: Target, logical: str, props: Mapping[str, Any]) -> str:
        """The digest of the resource's code, if it has code (``Function``)."""
        return ""


def _recorded(
    logical: str, kind: str, physical: str, props: Mapping[str, Any], **attributes: Any
) -> Recorded:
    return Recorded(logical, kind, physical, dict(props), attributes)


def _tags(props: Mapping[str, Any]) -> dict[str, str]:
    return {str(t["Key"]): str(t["Value"]) for t in props.get("Tags") or []}


class _Role(Handler):
    def create(self, target: Target, logical: str, props: dict[str, Any]) -> Recorded:
        name = target.name(logical, props.get("RoleName"))
        arn = f"arn:aws:iam::{target.account}:role{props.get('Path', '/')}{name}"
        role_id = "AROA" + hashlib.sha256(arn.encode()).hexdigest()[:17].upper()
        return _recorded(logical, "AWS::IAM::Role", name, props, Arn=arn, RoleId=role_id)

    def update(self, target: Target, old: Recorded, props: dict[str, Any]) -> Recorded:
        return self.create(target, old.logical_id, props)


class _Permission(Handler):
    def create(self, target: Target, logical: str, props: dict[str, Any]) -> Recorded:
        return _recorded(logical, "AWS::Lambda::Permission", f"{target.stack}-{logical}", props)

    def update(self, target: Target, old: Recorded, props: dict[str, Any]) -> Recorded:
        return self.create(target, old.logical_id, props)


_PROVIDER_KEYS = ("VpcConfig", "PermissionsConfig", "InstanceRequirements", "KmsKeyArn")


class _CapacityProvider(Handler):
    def create(self, target: Target, logical: str, props: dict[str, Any]) -> Recorded:
        name = target.name(logical, props.get("CapacityProviderName"), 140)
        params: dict[str, Any] = {k: props[k] for k in _PROVIDER_KEYS if k in props}
        if "VpcConfig" in params:  # optional in a template, required by the API
            params["VpcConfig"] = {"SecurityGroupIds": [], **params["VpcConfig"]}
        if "CapacityProviderScalingConfig" in props:
            params["CapacityProviderScalingConfig"] = props["CapacityProviderScalingConfig"]
        if props.get("Tags"):
            params["Tags"] = _tags(props)
        found = target.lam.create_capacity_provider(CapacityProviderName=name, **params)
        arn = found["CapacityProvider"]["CapacityProviderArn"]
        _wait(
            lambda: (
                target.lam.get_capacity_provider(CapacityProviderName=name)["CapacityProvider"][
                    "State"
                ]
                == "Active"
            ),
            f"capacity provider {name} to be Active",
        )
        return _recorded(logical, "AWS::Lambda::CapacityProvider", name, props, Arn=arn)

    def update(self, target: Target, old: Recorded, props: dict[str, Any]) -> Recorded:
        fixed = [k for k in _PROVIDER_KEYS if old.properties.get(k) != props.get(k)]
        if fixed:
            raise errors.TemplateError(
                f"{old.logical_id}: {', '.join(fixed)} of a capacity provider cannot change; "
                "give it another logical id (a new provider) or delete the stack first"
            )
        if old.properties.get("CapacityProviderScalingConfig") != props.get(
            "CapacityProviderScalingConfig"
        ):
            target.lam.update_capacity_provider(
                CapacityProviderName=old.physical_id,
                CapacityProviderScalingConfig=props.get("CapacityProviderScalingConfig") or {},
            )
        return Recorded(old.logical_id, old.type, old.physical_id, dict(props), old.attributes)

    def delete(self, target: Target, old: Recorded) -> None:
        _gone(lambda: target.lam.delete_capacity_provider(CapacityProviderName=old.physical_id))


def _wait(ready: Callable[[], bool], what: str, timeout_s: float = 120.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not ready():
        if time.monotonic() > deadline:
            raise errors.TemplateError(f"gave up waiting for {what} after {timeout_s:.0f} s")
        time.sleep(0.05)


def _gone(call: Callable[[], Any]) -> None:
    """Make a delete call; a resource already gone is fine."""
    try:
        call()
    except Exception as exc:
        if type(exc).__name__ != "ResourceNotFoundException":
            raise


# Function properties passed to CreateFunction/UpdateFunctionConfiguration as they are.
_FUNCTION_KEYS = (
    "Runtime",
    "Role",
    "Handler",
    "Description",
    "Timeout",
    "MemorySize",
    "Environment",
    "Architectures",
    "EphemeralStorage",
    "LoggingConfig",
    "CapacityProviderConfig",
)
# Not creatable on update (UpdateFunctionConfiguration does not take them).
_CREATE_ONLY = ("Architectures", "CapacityProviderConfig")
# What Corral does not serve; said, then left out.
_IGNORED = (
    "VpcConfig",
    "Layers",
    "DeadLetterConfig",
    "TracingConfig",
    "KmsKeyArn",
    "FileSystemConfigs",
    "ImageConfig",
    "SnapStart",
    "CodeSigningConfigArn",
    "RuntimeManagementConfig",
    "RecursiveLoop",
)


class _Function(Handler):
    def digest(self, target: Target, logical: str, props: Mapping[str, Any]) -> str:
        code = props.get("Code") or {}
        if code.get("S3Bucket") == PLACEHOLDER_BUCKET and code.get("S3Key") in target.sources:
            return str(code["S3Key"])  # the sources' digest: no need to build to know it
        return target.code(logical, code, props.get("Runtime"))[1]

    def create(self, target: Target, logical: str, props: dict[str, Any]) -> Recorded:
        name = target.name(logical, props.get("FunctionName"))
        zipped, digest = target.code(logical, props.get("Code") or {}, props.get("Runtime"))
        ignored = [k for k in _IGNORED if k in props]
        if ignored:
            target.say(f"{logical}: Corral ignores {', '.join(ignored)}")
        params = {k: props[k] for k in _FUNCTION_KEYS if k in props}
        if props.get("Tags"):
            params["Tags"] = _tags(props)
        target.lam.create_function(FunctionName=name, Code={"ZipFile": zipped}, **params)
        try:
            _settled(target, name)
            self._after(target, name, props, None)
        except Exception:
            # Not recorded yet: the rollback would not know it.
            _gone(lambda: target.lam.delete_function(FunctionName=name))
            raise
        found = Recorded(
            logical,
            "AWS::Lambda::Function",
            name,
            dict(props),
            {"Arn": target.function_arn(name)},
            digest,
        )
        return found

    def update(self, target: Target, old: Recorded, props: dict[str, Any]) -> Recorded:
        name = old.physical_id
        if props.get("FunctionName", name) != name:
            raise errors.TemplateError(
                f"{old.logical_id}: FunctionName cannot change ({name} -> "
                f"{props['FunctionName']}); give the function another logical id"
            )
        fixed = [k for k in _CREATE_ONLY if old.properties.get(k) != props.get(k)]
        if fixed:
            raise errors.TemplateError(
                f"{old.logical_id}: {', '.join(fixed)} of a function cannot change; give it "
                "another logical id (a new function)"
            )
        zipped, digest = target.code(old.logical_id, props.get("Code") or {}, props.get("Runtime"))
        changed = {
            k: props.get(k)
            for k in _FUNCTION_KEYS
            if k not in _CREATE_ONLY and old.properties.get(k) != props.get(k)
        }
        if changed:
            # A property gone from the template goes back to Lambda's default.
            defaults = {
                "Environment": {"Variables": {}},
                "Description": "",
                "Timeout": 3,
                "MemorySize": 128,
            }
            params = {k: v if v is not None else defaults.get(k) for k, v in changed.items()}
            params = {k: v for k, v in params.items() if v is not None}
            target.lam.update_function_configuration(FunctionName=name, **params)
            _settled(target, name)
        if digest != old.code_digest:
            target.lam.update_function_code(FunctionName=name, ZipFile=zipped)
            _settled(target, name)
        arn = target.function_arn(name)
        old_tags, new_tags = _tags(old.properties), _tags(props)
        if old_tags != new_tags:
            gone = [k for k in old_tags if k not in new_tags]
            if gone:
                target.lam.untag_resource(Resource=arn, TagKeys=gone)
            if new_tags:
                target.lam.tag_resource(Resource=arn, Tags=new_tags)
        self._after(target, name, props, old.properties)
        return Recorded(old.logical_id, old.type, name, dict(props), {"Arn": arn}, digest)

    @staticmethod
    def _after(
        target: Target, name: str, props: Mapping[str, Any], old: Mapping[str, Any] | None
    ) -> None:
        """Reserved concurrency, and $LATEST.PUBLISHED with its scaling."""
        reserved = props.get("ReservedConcurrentExecutions")
        if reserved is not None:
            target.lam.put_function_concurrency(
                FunctionName=name, ReservedConcurrentExecutions=int(reserved)
            )
        elif old is not None and old.get("ReservedConcurrentExecutions") is not None:
            target.lam.delete_function_concurrency(FunctionName=name)
        # CloudFormation publishes $LATEST.PUBLISHED of a Managed Instances function itself.
        latest_published = props.get("PublishToLatestPublished")
        if props.get("CapacityProviderConfig") and latest_published not in (False, "false"):
            target.lam.publish_version(FunctionName=name, PublishTo="LATEST_PUBLISHED")
            scaling = props.get("FunctionScalingConfig")
            if scaling:
                target.lam.put_function_scaling_config(
                    FunctionName=name, Qualifier="$LATEST.PUBLISHED", FunctionScalingConfig=scaling
                )

    def delete(self, target: Target, old: Recorded) -> None:
        _gone(lambda: target.lam.delete_function(FunctionName=old.physical_id))


def _settled(target: Target, name: str, qualifier: str = "$LATEST") -> None:
    """Wait until a function (version) is done being created or updated.

    Raises:
        errors.TemplateError: it failed (Lambda's reason), or took more than 3 minutes.
    """
    seen: dict[str, Any] = {}

    def ready() -> bool:
        seen.update(target.lam.get_function_configuration(FunctionName=name, Qualifier=qualifier))
        if seen.get("State") == "Failed" or seen.get("LastUpdateStatus") == "Failed":
            reason = seen.get("StateReason") or seen.get("LastUpdateStatusReason") or "failed"
            raise errors.TemplateError(f"{name}:{qualifier} failed: {reason}")
        return seen.get("State") in ("Active", "ActiveNonInvocable") and seen.get(
            "LastUpdateStatus"
        ) in (None, "Successful")

    _wait(ready, f"{name}:{qualifier} to be ready", 180.0)


def _function_name(value: Any) -> tuple[str, str | None]:
    """A ``FunctionName`` property (a name, or an ARN, maybe qualified) as name, qualifier."""
    text = str(value)
    if ":function:" in text:
        name, _, qualifier = text.split(":function:", 1)[1].partition(":")
        return name, qualifier or None
    name, _, qualifier = text.partition(":")
    return name, qualifier or None


class _Version(Handler):
    def create(self, target: Target, logical: str, props: dict[str, Any]) -> Recorded:
        name, _ = _function_name(props["FunctionName"])
        params = {"Description": props["Description"]} if props.get("Description") else {}
        number = target.lam.publish_version(FunctionName=name, **params)["Version"]
        self._scaling(target, name, number, props)
        managed = target.lam.get_function_configuration(FunctionName=name, Qualifier=number)
        if managed.get("CapacityProviderConfig"):
            target.say(f"{logical}: waiting for version {number}'s environments")
            target.lam.get_waiter("published_version_active").wait(
                FunctionName=name, Qualifier=number, WaiterConfig={"Delay": 1, "MaxAttempts": 180}
            )
        arn = target.function_arn(name, number)
        return _recorded(
            logical,
            "AWS::Lambda::Version",
            arn,
            props,
            Version=number,
            FunctionArn=target.function_arn(name),
        )

    @staticmethod
    def _scaling(target: Target, name: str, number: str, props: Mapping[str, Any]) -> None:
        if props.get("FunctionScalingConfig"):
            target.lam.put_function_scaling_config(
                FunctionName=name,
                Qualifier=number,
                FunctionScalingConfig=props["FunctionScalingConfig"],
            )

    def update(self, target: Target, old: Recorded, props: dict[str, Any]) -> Recorded:
        # A version is immutable; only its scaling may change.
        name, _ = _function_name(props["FunctionName"])
        self._scaling(target, name, str(old.attributes["Version"]), props)
        return Recorded(old.logical_id, old.type, old.physical_id, dict(props), old.attributes)

    def delete(self, target: Target, old: Recorded) -> None:
        if old.retain:
            return
        name, _ = _function_name(old.properties["FunctionName"])
        _gone(
            lambda: target.lam.delete_function(
                FunctionName=name, Qualifier=str(old.attributes["Version"])
            )
        )


def _routing(props: Mapping[str, Any]) -> dict[str, Any]:
    weights = (props.get("RoutingConfig") or {}).get("AdditionalVersionWeights") or []
    return {
        "RoutingConfig": {
            "AdditionalVersionWeights": {
                str(w["FunctionVersion"]): float(w["FunctionWeight"]) for w in weights
            }
        }
    }


class _Alias(Handler):
    def create(self, target: Target, logical: str, props: dict[str, Any]) -> Recorded:
        name, _ = _function_name(props["FunctionName"])
        target.lam.create_alias(
            FunctionName=name,
            Name=props["Name"],
            FunctionVersion=str(props["FunctionVersion"]),
            Description=props.get("Description", ""),
            **_routing(props),
        )
        arn = target.function_arn(name, props["Name"])
        return _recorded(logical, "AWS::Lambda::Alias", arn, props, AliasArn=arn)

    def update(self, target: Target, old: Recorded, props: dict[str, Any]) -> Recorded:
        name, _ = _function_name(props["FunctionName"])
        if (name, props["Name"]) != (
            _function_name(old.properties["FunctionName"])[0],
            old.properties["Name"],
        ):
            self.delete(target, old)
            return self.create(target, old.logical_id, props)
        target.lam.update_alias(
            FunctionName=name,
            Name=props["Name"],
            FunctionVersion=str(props["FunctionVersion"]),
            Description=props.get("Description", ""),
            **_routing(props),
        )
        return Recorded(old.logical_id, old.type, old.physical_id, dict(props), old.attributes)

    def delete(self, target: Target, old: Recorded) -> None:
        name, _ = _function_name(old.properties["FunctionName"])
        _gone(lambda: target.lam.delete_alias(FunctionName=name, Name=old.properties["Name"]))


_URL_KEYS = ("AuthType", "Cors", "InvokeMode")


class _Url(Handler):
    def create(self, target: Target, logical: str, props: dict[str, Any]) -> Recorded:
        name, qualifier = _function_name(props["TargetFunctionArn"])
        where = {"FunctionName": name, **({"Qualifier": qualifier} if qualifier else {})}
        params = {k: props[k] for k in _URL_KEYS if k in props}
        made = target.lam.create_function_url_config(**where, **params)
        return _recorded(
            logical,
            "AWS::Lambda::Url",
            str(props["TargetFunctionArn"]),
            props,
            FunctionUrl=made["FunctionUrl"],
            FunctionArn=made["FunctionArn"],
        )

    def update(self, target: Target, old: Recorded, props: dict[str, Any]) -> Recorded:
        if props["TargetFunctionArn"] != old.properties["TargetFunctionArn"]:
            self.delete(target, old)
            return self.create(target, old.logical_id, props)
        name, qualifier = _function_name(props["TargetFunctionArn"])
        where = {"FunctionName": name, **({"Qualifier": qualifier} if qualifier else {})}
        params = {k: props.get(k) for k in _URL_KEYS}
        params["Cors"] = params["Cors"] or {}
        params = {k: v for k, v in params.items() if v is not None}
        made = target.lam.update_function_url_config(**where, **params)
        return Recorded(
            old.logical_id,
            old.type,
            old.physical_id,
            dict(props),
            {"FunctionUrl": made["FunctionUrl"], "FunctionArn": made["FunctionArn"]},
        )

    def delete(self, target: Target, old: Recorded) -> None:
        name, qualifier = _function_name(old.properties["TargetFunctionArn"])
        where = {"FunctionName": name, **({"Qualifier": qualifier} if qualifier else {})}
        _gone(lambda: target.lam.delete_function_url_config(**where))


_EIC_KEYS = ("MaximumRetryAttempts", "MaximumEventAgeInSeconds", "DestinationConfig")


class _EventInvokeConfig(Handler):
    def create(self, target: Target, logical: str, props: dict[str, Any]) -> Recorded:
        name, _ = _function_name(props["FunctionName"])
        qualifier = str(props.get("Qualifier") or "$LATEST")
        params = {k: props[k] for k in _EIC_KEYS if props.get(k) not in (None, {})}
        target.lam.put_function_event_invoke_config(
            FunctionName=name, Qualifier=qualifier, **params
        )
        return _recorded(logical, "AWS::Lambda::EventInvokeConfig", f"{name}:{qualifier}", props)

    def update(self, target: Target, old: Recorded, props: dict[str, Any]) -> Recorded:
        if old.physical_id != (
            f"{_function_name(props['FunctionName'])[0]}:{props.get('Qualifier') or '$LATEST'}"
        ):
            self.delete(target, old)
        return self.create(target, old.logical_id, props)

    def delete(self, target: Target, old: Recorded) -> None:
        name, _, qualifier = old.physical_id.partition(":")
        _gone(
            lambda: target.lam.delete_function_event_invoke_config(
                FunctionName=name, Qualifier=qualifier
            )
        )


HANDLERS: dict[str, Handler] = {
    "AWS::IAM::Role": _Role(),
    "AWS::Lambda::Permission": _Permission(),
    "AWS::Lambda::CapacityProvider": _CapacityProvider(),
    "AWS::Lambda::Function": _Function(),
    "AWS::Lambda::Version": _Version(),
    "AWS::Lambda::Alias": _Alias(),
    "AWS::Lambda::Url": _Url(),
    "AWS::Lambda::EventInvokeConfig": _EventInvokeConfig(),
}
