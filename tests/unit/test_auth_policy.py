"""Key roles and the refusals they cause (pure rules)."""

from __future__ import annotations

import pytest

from corral.auth.operations import operation_of
from corral.auth.policy import ApiKey, Role, authorize, check_patterns, new_key
from corral.core import errors

ACCOUNT = "123456789012"


def _key(role: Role, *patterns: str) -> ApiKey:
    return ApiKey("AKCRTEST", "secret", role, patterns, "ci", 0.0)


def test_an_admin_key_may_call_everything() -> None:
    admin = _key(Role.ADMIN)
    for operation in ("CreateFunction", "DeleteFunction", "/corral/v1/keys", "Invoke"):
        authorize(admin, operation, "anything", "*", ACCOUNT)


def test_an_invoke_key_invokes_matching_functions_only() -> None:
    invoker = _key(Role.INVOKE, "orders-*", "billing")
    authorize(invoker, "Invoke", "orders-eu", "arn", ACCOUNT)
    authorize(invoker, "InvokeAsync", "billing", "arn", ACCOUNT)
    with pytest.raises(errors.AccessDenied) as denied:
        authorize(invoker, "Invoke", "billing-2", "arn:fn", ACCOUNT)
    assert denied.value.message.startswith(
        "User: arn:aws:iam::123456789012:user/ci is not authorized to perform: "
        "lambda:InvokeFunction on resource: arn:fn because"
    )
    for operation in ("GetFunction", "ListFunctions", "CreateFunction", "PublishVersion"):
        with pytest.raises(errors.AccessDenied) as denied:
            authorize(invoker, operation, "orders-eu", "arn", ACCOUNT)
        assert f"lambda:{operation}" in denied.value.message
    with pytest.raises(errors.AccessDenied) as denied:
        authorize(invoker, "/corral/v1/state", None, "*", ACCOUNT)
    assert "corral:/corral/v1/state" in denied.value.message
    with pytest.raises(errors.AccessDenied):
        authorize(invoker, "Invoke", None, "*", ACCOUNT)  # Invoke that names no function


def test_patterns_are_case_sensitive_shell_patterns() -> None:
    invoker = _key(Role.INVOKE, "Orders-?", "[ab]*")
    authorize(invoker, "Invoke", "Orders-1", "arn", ACCOUNT)
    authorize(invoker, "Invoke", "beta", "arn", ACCOUNT)
    for name in ("orders-1", "Orders-12", "gamma"):
        with pytest.raises(errors.AccessDenied):
            authorize(invoker, "Invoke", name, "arn", ACCOUNT)


@pytest.mark.parametrize(
    ("role", "patterns", "message"),
    [
        (Role.ADMIN, ["x"], "takes no patterns"),
        (Role.INVOKE, [], "needs at least one function-name pattern"),
        (Role.INVOKE, ["a b"], "is not a function-name pattern"),
        (Role.INVOKE, ["x" * 171], "is not a function-name pattern"),
    ],
)
def test_bad_patterns_are_refused(role: Role, patterns: list[str], message: str) -> None:
    with pytest.raises(errors.InvalidRequest) as refused:
        check_patterns(role, patterns)
    assert message in refused.value.message


def test_new_keys_look_like_aws_keys_and_never_repeat() -> None:
    keys = [new_key(Role.INVOKE, ["a*", "a*"], "ci", 1.0) for _ in range(50)]
    assert len({k.access_key_id for k in keys}) == 50 and len({k.secret for k in keys}) == 50
    first = keys[0]
    assert first.access_key_id.startswith("AKCR") and len(first.access_key_id) == 20
    assert len(first.secret) == 40 and first.function_patterns == ("a*",)
    assert "SecretAccessKey" not in first.public() and first.secret not in str(first.public())
    with pytest.raises(errors.InvalidRequest):
        new_key(Role.ADMIN, [], "bad name!", 1.0)


@pytest.mark.parametrize(
    ("method", "path", "operation", "function"),
    [
        ("POST", "/2015-03-31/functions/f/invocations", "Invoke", "f"),
        ("POST", "/2015-03-31/functions/f%3A1/invocations", "Invoke", "f:1"),
        ("POST", "/2014-11-13/functions/f/invoke-async/", "InvokeAsync", "f"),
        ("GET", "/2015-03-31/functions/f", "GetFunction", "f"),
        ("GET", "/2015-03-31/functions/", "ListFunctions", None),
        ("POST", "/2015-03-31/functions", "CreateFunction", None),
        ("GET", "/2015-03-31/functions/f/aliases/live", "GetAlias", "f"),
        ("GET", "/2025-11-30/capacity-providers/p", "GetCapacityProvider", None),
        ("GET", "/corral/v1/state", "/corral/v1/state", None),
        (
            "DELETE",
            "/2015-03-31/functions/f/invocations",
            "/2015-03-31/functions/f/invocations",
            None,
        ),
    ],
)
def test_the_operation_of_a_request_comes_from_botocores_model(
    method: str, path: str, operation: str, function: str | None
) -> None:
    found = operation_of(method, path)
    assert (found.name, found.function_name) == (operation, function)
