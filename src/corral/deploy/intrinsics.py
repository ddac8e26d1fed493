"""CloudFormation intrinsic functions and conditions, resolved against what is known.

``resolve(value, known)`` walks a template value and replaces ``Ref``, ``Fn::GetAtt``,
``Fn::Sub``, ``Fn::Join``, ``Fn::If``, ``Fn::Select``, ``Fn::Split``, ``Fn::FindInMap`` and
``Fn::Base64`` by their values; ``AWS::NoValue`` removes the key or item that holds it.
``evaluate_conditions`` decides the template's ``Conditions`` (``Fn::Equals``, ``Fn::Not``,
``Fn::And``, ``Fn::Or``, ``Condition``). ``references(value)`` lists the logical ids a value
depends on (the deploy order). Pure functions: no I/O.

A reference to a resource that is not created yet raises ``Pending`` (the deploy resolves
a resource's properties only after everything it refers to exists); anything Corral cannot
resolve raises ``errors.TemplateError`` naming it.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from corral.core import errors

__all__ = [
    "NO_VALUE",
    "Known",
    "Pending",
    "evaluate_conditions",
    "references",
    "resolve",
]

NO_VALUE = object()  # what AWS::NoValue resolves to: dropped from its container
_SUB_VARIABLE = re.compile(r"\$\{([^}!][^}]*)\}")


class Pending(Exception):
    """A value refers to a resource that does not exist yet (its logical id)."""

    def __init__(self, logical_id: str) -> None:
        super().__init__(logical_id)
        self.logical_id = logical_id


@dataclass(frozen=True)
class Known:
    """What a template's values can be resolved against."""

    parameters: Mapping[str, Any]  # by name; CommaDelimitedList values are lists
    pseudo: Mapping[str, Any]  # AWS::Region, AWS::AccountId, AWS::StackName, ...
    conditions: Mapping[str, bool] = field(default_factory=dict)
    mappings: Mapping[str, Any] = field(default_factory=dict)
    refs: Mapping[str, Any] = field(default_factory=dict)  # logical id -> its Ref
    attributes: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)  # id -> attrs
    resources: frozenset[str] = frozenset()  # every logical id of the template


def resolve(value: Any, known: Known) -> Any:
    """``value`` with every intrinsic replaced (``NO_VALUE`` when it is ``AWS::NoValue``).

    Raises:
        Pending: it refers to a resource not created yet.
        errors.TemplateError: an intrinsic Corral cannot resolve, or a malformed one.
    """
    if isinstance(value, list):
        items = [resolve(v, known) for v in value]
        return [v for v in items if v is not NO_VALUE]
    if not isinstance(value, dict):
        return value
    if len(value) == 1:
        ((key, argument),) = value.items()
        if key == "Ref":
            return _ref(argument, known)
        if key.startswith("Fn::") or key == "Condition":
            return _function(key, argument, known)
    resolved = {k: resolve(v, known) for k, v in value.items()}
    return {k: v for k, v in resolved.items() if v is not NO_VALUE}


def _ref(name: Any, known: Known) -> Any:
    if not isinstance(name, str):
        raise errors.TemplateError(f"Ref takes a name, not {name!r}")
    if name == "AWS::NoValue":
        return NO_VALUE
    if name in known.pseudo:
        return known.pseudo[name]
    if name in known.parameters:
        return known.parameters[name]
    if name in known.refs:
        return known.refs[name]
    if name in known.resources:
        raise Pending(name)
    raise errors.TemplateError(f"Ref to {name!r}: no parameter or resource has that name")


def _function(key: str, argument: Any, known: Known) -> Any:
    if key == "Fn::GetAtt":
        return _get_att(argument, known)
    if key == "Fn::Sub":
        return _sub(argument, known)
    if key == "Fn::Join":
        separator, items = _pair(key, argument)
        parts = resolve(items, known)
        if not isinstance(parts, list):
            raise errors.TemplateError(f"Fn::Join takes a list of values, not {parts!r}")
        return str(separator).join(_text(p, key) for p in parts)
    if key == "Fn::If":
        if not isinstance(argument, list) or len(argument) != 3:
            raise errors.TemplateError("Fn::If takes [condition name, value if true, if false]")
        return resolve(argument[1] if _condition(argument[0], known) else argument[2], known)
    if key == "Fn::Select":
        index, items = _pair(key, argument)
        chosen = resolve(items, known)
        position = int(resolve(index, known))
        if not isinstance(chosen, list) or not 0 <= position < len(chosen):
            raise errors.TemplateError(f"Fn::Select: no item {position} in {chosen!r}")
        return chosen[position]
    if key == "Fn::Split":
        separator, text = _pair(key, argument)
        return _text(resolve(text, known), key).split(str(separator))
    if key == "Fn::FindInMap":
        if not isinstance(argument, list) or len(argument) != 3:
            raise errors.TemplateError("Fn::FindInMap takes [map, top-level key, second key]")
        name, top, second = (resolve(a, known) for a in argument)
        try:
            return known.mappings[name][top][second]
        except (KeyError, TypeError):
            raise errors.TemplateError(
                f"Fn::FindInMap: Mappings has no {name}.{top}.{second}"
            ) from None
    if key == "Fn::Base64":
        return base64.b64encode(_text(resolve(argument, known), key).encode()).decode()
    if key in ("Fn::Equals", "Fn::Not", "Fn::And", "Fn::Or", "Condition"):
        return _truth(key, argument, known)
    raise errors.TemplateError(
        f"{key} is not supported by corral deploy (it resolves Ref, Fn::GetAtt, Fn::Sub, "
        "Fn::Join, Fn::If, Fn::Select, Fn::Split, Fn::FindInMap, Fn::Base64 and conditions)"
    )


def _pair(key: str, argument: Any) -> tuple[Any, Any]:
    if not isinstance(argument, list) or len(argument) != 2:
        raise errors.TemplateError(f"{key} takes a list of two values, not {argument!r}")
    return argument[0], argument[1]


def _text(value: Any, key: str) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str | int | float):
        return str(value)
    raise errors.TemplateError(f"{key}: {value!r} is not a string")


def _get_att(argument: Any, known: Known) -> Any:
    if isinstance(argument, str):
        argument = argument.split(".", 1)
    if not isinstance(argument, list) or len(argument) != 2:
        raise errors.TemplateError(f"Fn::GetAtt takes [resource, attribute], not {argument!r}")
    logical, attribute = argument[0], resolve(argument[1], known)
    if logical in known.attributes:
        found = known.attributes[logical]
        if attribute not in found:
            raise errors.TemplateError(
                f"Fn::GetAtt {logical}.{attribute}: Corral knows {', '.join(sorted(found))}"
            )
        return found[attribute]
    if logical in known.resources:
        raise Pending(logical)
    raise errors.TemplateError(f"Fn::GetAtt of {logical!r}: no resource has that name")


def _sub(argument: Any, known: Known) -> str:
    extra: Any = {}
    if isinstance(argument, str):
        text = argument
    else:
        text, extra = _pair("Fn::Sub", argument)
        if not isinstance(extra, dict):
            raise errors.TemplateError("Fn::Sub takes [text, {variable: value}]")
    if not isinstance(text, str):
        raise errors.TemplateError(f"Fn::Sub takes a string, not {text!r}")
    variables = {name: resolve(value, known) for name, value in extra.items()}

    def value_of(match: re.Match[str]) -> str:
        name = match.group(1).strip()
        if name in variables:
            return _text(variables[name], "Fn::Sub")
        if "." in name and not name.startswith("AWS::"):
            return _text(_get_att(name.split(".", 1), known), "Fn::Sub")
        return _text(_ref(name, known), "Fn::Sub")

    # ``${!Literal}`` stays as ``${Literal}``.
    return _SUB_VARIABLE.sub(value_of, text).replace("${!", "${")


def _condition(name: Any, known: Known) -> bool:
    if not isinstance(name, str) or name not in known.conditions:
        raise errors.TemplateError(f"condition {name!r} is not in the template's Conditions")
    return known.conditions[name]


def _truth(key: str, argument: Any, known: Known) -> bool:
    if key == "Condition":
        return _condition(argument, known)
    if key == "Fn::Equals":
        left, right = _pair(key, argument)
        return _text(resolve(left, known), key) == _text(resolve(right, known), key)
    if not isinstance(argument, list) or not argument:
        raise errors.TemplateError(f"{key} takes a list of conditions")
    values = [_as_bool(resolve(a, known), key) for a in argument]
    if key == "Fn::Not":
        return not values[0]
    return all(values) if key == "Fn::And" else any(values)


def _as_bool(value: Any, key: str) -> bool:
    if not isinstance(value, bool):
        raise errors.TemplateError(f"{key} takes conditions, not {value!r}")
    return value


def evaluate_conditions(conditions: Mapping[str, Any], known: Known) -> dict[str, bool]:
    """Every condition of the template, true or false (they may refer to each other).

    Raises:
        errors.TemplateError: a condition that is not one, or that refers to itself.
    """
    decided: dict[str, bool] = {}

    def decide(name: str, seen: tuple[str, ...]) -> bool:
        if name in decided:
            return decided[name]
        if name in seen:
            raise errors.TemplateError(f"condition {name} refers to itself")
        if name not in conditions:
            raise errors.TemplateError(f"condition {name!r} is not in the template's Conditions")
        for other in _conditions_in(conditions[name]):
            decide(other, (*seen, name))
        current = Known(
            parameters=known.parameters,
            pseudo=known.pseudo,
            conditions=decided,
            mappings=known.mappings,
        )
        value = resolve(conditions[name], current)
        decided[name] = _as_bool(value, f"condition {name}")
        return decided[name]

    for name in conditions:
        decide(name, ())
    return decided


def _conditions_in(value: Any) -> list[str]:
    if isinstance(value, list):
        return [c for v in value for c in _conditions_in(v)]
    if isinstance(value, dict):
        if len(value) == 1 and "Condition" in value and isinstance(value["Condition"], str):
            return [value["Condition"]]
        return [c for v in value.values() for c in _conditions_in(v)]
    return []


def references(value: Any) -> set[str]:
    """Names ``value`` refers to with ``Ref``, ``Fn::GetAtt`` or ``Fn::Sub`` (parameters and
    pseudo parameters included: the caller keeps the resources)."""
    found: set[str] = set()
    if isinstance(value, list):
        for item in value:
            found |= references(item)
    elif isinstance(value, dict):
        if len(value) == 1:
            ((key, argument),) = value.items()
            if key == "Ref" and isinstance(argument, str):
                return {argument}
            if key == "Fn::GetAtt":
                target = argument.split(".", 1)[0] if isinstance(argument, str) else argument[0]
                return {str(target)} | references(argument)
            if key == "Fn::Sub":
                text = argument if isinstance(argument, str) else argument[0]
                names = {
                    n.strip().split(".", 1)[0]
                    for n in _SUB_VARIABLE.findall(text if isinstance(text, str) else "")
                }
                if isinstance(argument, list) and len(argument) == 2:
                    names -= set(argument[1]) if isinstance(argument[1], dict) else set()
                    names |= references(argument[1])
                return names
        for item in value.values():
            found |= references(item)
    return found
