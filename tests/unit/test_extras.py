"""``corral:`` tags: what they turn on, and what they refuse (pure)."""

from __future__ import annotations

import pytest

from corral.core import errors
from corral.core.extras import (
    FunctionExtras,
    ProviderExtras,
    check_provider_tags,
    function_extras,
    provider_extras,
    stored_provider_extras,
)


def test_without_corral_tags_everything_is_as_on_aws() -> None:
    assert function_extras({"team": "a", "corral": "not ours"}) == FunctionExtras()
    assert FunctionExtras().queue_timeout_ms == 0


def test_the_queue_tags_are_read_with_their_default_bound() -> None:
    extras = function_extras({"corral:queue-timeout-ms": " 2500 "})
    assert extras.queue_timeout_ms == 2500
    assert extras.queue_limit(slots=12) == 120
    assert function_extras({"corral:queue-max": "7"}).queue_limit(slots=12) == 7
    assert function_extras({"corral:queue-timeout-ms": "900000"}).queue_timeout_ms == 900000


@pytest.mark.parametrize(
    ("tags", "message"),
    [
        ({"corral:queue-timeout-ms": "-1"}, "from 0 to 900000, not '-1'"),
        ({"corral:queue-timeout-ms": "900001"}, "from 0 to 900000, not '900001'"),
        ({"corral:queue-timeout-ms": "1.5"}, "from 0 to 900000, not '1.5'"),
        ({"corral:queue-max": ""}, "from 1 to 100000, not ''"),
        ({"corral:queue-timeout": "1"}, "corral:queue-timeout is not a Corral setting"),
    ],
)
def test_bad_values_and_unknown_keys_are_refused(tags: dict[str, str], message: str) -> None:
    with pytest.raises(errors.InvalidRequest) as refused:
        function_extras(tags)
    assert message in refused.value.message
    assert refused.value.lambda_error == "InvalidParameterValueException"


def test_capacity_providers_take_an_idle_timeout_in_its_range_only() -> None:
    check_provider_tags({"team": "x"})
    assert provider_extras({"corral:idle-timeout-s": " 600 "}).idle_timeout_s == 600
    assert provider_extras({}).idle_timeout_s is None
    for bad in ("59", "86401", "soon"):
        with pytest.raises(errors.InvalidRequest, match="from 60 to 86400"):
            check_provider_tags({"corral:idle-timeout-s": bad})
    with pytest.raises(errors.InvalidRequest, match="known: corral:idle-timeout-s"):
        check_provider_tags({"corral:queue-timeout-ms": "600"})
    assert stored_provider_extras({"corral:idle-timeout-s": "1"}) == ProviderExtras()


@pytest.mark.parametrize("tag", ["corral:fork-after-init", "corral:kill-on-timeout"])
def test_worker_switches_take_true_or_false_in_any_case(tag: str) -> None:
    assert function_extras({tag: "TRUE"}) != FunctionExtras()
    assert function_extras({tag: " false "}) == FunctionExtras()
    for bad in ("yes", "1", ""):
        with pytest.raises(errors.InvalidRequest, match=f"Tag {tag} must be true or false"):
            function_extras({tag: bad})


def test_an_unknown_tag_is_told_the_switches_too() -> None:
    with pytest.raises(errors.InvalidRequest, match="corral:fork-after-init"):
        function_extras({"corral:fork": "true"})
