"""Reading a template: YAML (with CloudFormation's short tags, ``!Ref``, ``!GetAtt``, ...) or
JSON, and deciding its parameters.

``load(path)`` returns the template as plain data, intrinsics in their long form
(``{"Fn::GetAtt": [...]}``), the way AWS's tools read it. ``parameter_values(template,
overrides)`` applies ``Default``, ``--parameter-overrides``, ``AllowedValues``,
``AllowedPattern`` and the types (``CommaDelimitedList`` becomes a list).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

from corral.core import errors

__all__ = ["is_sam", "load", "parameter_values", "parse"]

_SAM_TRANSFORM = "AWS::Serverless-2016-10-31"


class _Loader(yaml.SafeLoader):
    """YAML with CloudFormation's tags (a loader of its own: yaml.SafeLoader stays as it is)."""


def _intrinsic(loader: yaml.SafeLoader, suffix: str, node: yaml.Node) -> dict[str, Any]:
    name = suffix if suffix in ("Ref", "Condition") else f"Fn::{suffix}"
    if suffix == "GetAtt" and isinstance(node, yaml.ScalarNode):
        return {name: str(loader.construct_scalar(node)).split(".", 1)}
    if isinstance(node, yaml.ScalarNode):
        return {name: loader.construct_scalar(node)}
    if isinstance(node, yaml.SequenceNode):
        return {name: loader.construct_sequence(node, deep=True)}
    assert isinstance(node, yaml.MappingNode)
    return {name: loader.construct_mapping(node, deep=True)}


_Loader.add_multi_constructor("!", _intrinsic)


def parse(text: str, where: str) -> dict[str, Any]:
    """A template from its text (JSON or YAML).

    Raises:
        errors.TemplateError: not a template, with the line the parser stopped at.
    """
    try:
        data = json.loads(text) if text.lstrip().startswith("{") else yaml.load(text, _Loader)
    except (ValueError, yaml.YAMLError) as exc:
        raise errors.TemplateError(f"{where} is not valid YAML or JSON: {exc}") from None
    if not isinstance(data, dict) or not isinstance(data.get("Resources"), dict):
        raise errors.TemplateError(f"{where} has no Resources section: it is not a template")
    for logical, resource in data["Resources"].items():
        if not isinstance(resource, dict) or not isinstance(resource.get("Type"), str):
            raise errors.TemplateError(f"{where}: resource {logical} has no Type")
    return data


def load(path: Path) -> dict[str, Any]:
    """The template in ``path``.

    Raises:
        errors.TemplateError: unreadable, or not a template.
    """
    try:
        text = path.read_text()
    except (OSError, UnicodeDecodeError) as exc:
        raise errors.TemplateError(f"cannot read {path}: {exc}") from None
    return parse(text, str(path))


def is_sam(template: Mapping[str, Any]) -> bool:
    """Whether the template asks for AWS's SAM transform."""
    transform = template.get("Transform")
    names = transform if isinstance(transform, list) else [transform]
    return _SAM_TRANSFORM in names


def parameter_values(template: Mapping[str, Any], overrides: Mapping[str, str]) -> dict[str, Any]:
    """Each parameter's value: the override, else its ``Default``.

    Raises:
        errors.TemplateError: an unknown override, a missing value, or a value the
            parameter's constraints refuse.
    """
    declared: Mapping[str, Any] = template.get("Parameters") or {}
    unknown = sorted(set(overrides) - set(declared))
    if unknown:
        raise errors.TemplateError(
            f"--parameter-overrides names {', '.join(unknown)}, which the template does not "
            f"declare (it has: {', '.join(sorted(declared)) or 'no parameters'})"
        )
    values: dict[str, Any] = {}
    for name, spec in declared.items():
        spec = spec or {}
        raw = overrides.get(name, spec.get("Default"))
        if raw is None:
            raise errors.TemplateError(
                f"parameter {name} has no Default: give it with --parameter-overrides {name}=..."
            )
        values[name] = _typed(name, spec, str(raw) if not isinstance(raw, list) else raw)
    return values


def _typed(name: str, spec: Mapping[str, Any], raw: Any) -> Any:
    kind = str(spec.get("Type", "String"))
    allowed = [str(v) for v in spec.get("AllowedValues") or []]
    if kind in ("CommaDelimitedList", "List<Number>") or kind.startswith("List<"):
        items = raw if isinstance(raw, list) else [v.strip() for v in str(raw).split(",")]
        return [str(v) for v in items]
    text = str(raw)
    if allowed and text not in allowed:
        raise errors.TemplateError(
            f"parameter {name} must be one of {', '.join(allowed)}, not {text!r}"
        )
    pattern = spec.get("AllowedPattern")
    if pattern and not re.fullmatch(str(pattern), text):
        raise errors.TemplateError(f"parameter {name} must match {pattern}, not {text!r}")
    if kind == "Number":
        try:
            float(text)
        except ValueError:
            raise errors.TemplateError(f"parameter {name} must be a number, not {text!r}") from None
    return text
