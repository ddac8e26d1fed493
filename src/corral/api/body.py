"""Typed access to a JSON request body, with AWS's validation wording.

``Body(data)`` wraps the decoded object; each accessor checks type and constraints and
raises ``errors.Validation`` (``ValidationException``) or ``errors.InvalidRequest`` with
the ``1 validation error detected: Value ... at 'field' failed to satisfy constraint: ...``
sentence AWS uses. Field paths are lower camel case, as in AWS's messages.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

from corral.core import errors

__all__ = ["Body", "camel", "parse_json_object"]

_MAX_DEPTH = 32


def camel(name: str) -> str:
    """``MemorySize`` -> ``memorySize`` (AWS's field naming in messages)."""
    return name[:1].lower() + name[1:] if name else name


def parse_json_object(raw: bytes) -> dict[str, Any]:
    """Decode a request body that must be a JSON object (empty means ``{}``).

    Raises:
        errors.InvalidContent: not JSON, too deeply nested, or not an object.
    """
    if not raw.strip():
        return {}
    try:
        data = json.loads(raw)
    except (ValueError, RecursionError) as exc:
        raise errors.InvalidContent(f"Could not parse request body into json: {exc}") from exc
    if not isinstance(data, dict):
        raise errors.InvalidContent("Could not parse request body into json: expected an object")
    if _depth(data) > _MAX_DEPTH:
        raise errors.InvalidContent("Could not parse request body into json: nested too deeply")
    return data


def _depth(value: Any, level: int = 0) -> int:
    if level > _MAX_DEPTH:
        return level
    if isinstance(value, dict):
        return max((_depth(v, level + 1) for v in value.values()), default=level + 1)
    if isinstance(value, list):
        return max((_depth(v, level + 1) for v in value), default=level + 1)
    return level


def _shown(value: Any) -> str:
    text = value if isinstance(value, str) else json.dumps(value, default=str)
    return text if len(text) <= 256 else text[:256] + "..."


class Body:
    """A JSON object from a request, read field by field."""

    def __init__(self, data: Mapping[str, Any], prefix: str = "") -> None:
        self._data = data
        self._prefix = prefix

    def path(self, key: str) -> str:
        return f"{self._prefix}{camel(key)}"

    def has(self, key: str) -> bool:
        return self._data.get(key) is not None

    def raw(self, key: str) -> Any:
        return self._data.get(key)

    def fail(self, key: str, value: Any, constraint: str) -> errors.Validation:
        return errors.Validation(
            errors.constraint_message(
                None if value is None else _shown(value), self.path(key), constraint
            )
        )

    def string(
        self,
        key: str,
        *,
        required: bool = False,
        min_len: int = 0,
        max_len: int | None = None,
        pattern: str | None = None,
        enum: tuple[str, ...] | None = None,
    ) -> str | None:
        value = self._data.get(key)
        if value is None:
            if required:
                raise self.fail(key, None, "Member must not be null")
            return None
        if not isinstance(value, str):
            raise self.fail(key, value, "Member must be a string")
        if len(value) < min_len:
            raise self.fail(
                key, value, f"Member must have length greater than or equal to {min_len}"
            )
        if max_len is not None and len(value) > max_len:
            raise self.fail(key, value, f"Member must have length less than or equal to {max_len}")
        if pattern is not None and not re.fullmatch(pattern, value):
            raise self.fail(
                key, value, f"Member must satisfy regular expression pattern: {pattern}"
            )
        if enum is not None and value not in enum:
            raise self.fail(key, value, f"Member must satisfy enum value set: [{', '.join(enum)}]")
        return value

    def integer(
        self, key: str, *, required: bool = False, low: int | None = None, high: int | None = None
    ) -> int | None:
        value = self._data.get(key)
        if value is None:
            if required:
                raise self.fail(key, None, "Member must not be null")
            return None
        if isinstance(value, bool) or not isinstance(value, int):
            raise self.fail(key, value, "Member must be an integer")
        _check_range(self, key, value, low, high)
        return value

    def number(
        self,
        key: str,
        *,
        required: bool = False,
        low: float | None = None,
        high: float | None = None,
    ) -> float | None:
        value = self._data.get(key)
        if value is None:
            if required:
                raise self.fail(key, None, "Member must not be null")
            return None
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise self.fail(key, value, "Member must be a number")
        _check_range(self, key, value, low, high)
        return float(value)

    def boolean(self, key: str) -> bool | None:
        value = self._data.get(key)
        if value is None:
            return None
        if not isinstance(value, bool):
            raise self.fail(key, value, "Member must be a boolean")
        return value

    def obj(self, key: str, *, required: bool = False) -> Body | None:
        value = self._data.get(key)
        if value is None:
            if required:
                raise self.fail(key, None, "Member must not be null")
            return None
        if not isinstance(value, dict):
            raise self.fail(key, value, "Member must be a structure")
        return Body(value, prefix=self.path(key) + ".")

    def string_list(
        self,
        key: str,
        *,
        min_items: int = 0,
        max_items: int | None = None,
        item_pattern: str | None = None,
    ) -> list[str] | None:
        value = self._data.get(key)
        if value is None:
            return None
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise self.fail(key, value, "Member must be a list of strings")
        if len(value) < min_items:
            raise self.fail(
                key,
                _list_text(value),
                f"Member must have length greater than or equal to {min_items}",
            )
        if max_items is not None and len(value) > max_items:
            raise self.fail(
                key, _list_text(value), f"Member must have length less than or equal to {max_items}"
            )
        if item_pattern is not None:
            for item in value:
                if not re.fullmatch(item_pattern, item):
                    raise self.fail(
                        key,
                        _list_text(value),
                        f"Member must satisfy constraint: [Member must satisfy regular "
                        f"expression pattern: {item_pattern}]",
                    )
        return list(value)

    def string_map(self, key: str) -> dict[str, str] | None:
        value = self._data.get(key)
        if value is None:
            return None
        if not isinstance(value, dict) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in value.items()
        ):
            raise self.fail(key, value, "Member must be a map of strings to strings")
        return dict(value)

    def obj_list(
        self, key: str, *, min_items: int = 0, max_items: int | None = None
    ) -> list[Body] | None:
        value = self._data.get(key)
        if value is None:
            return None
        if not isinstance(value, list) or not all(isinstance(v, dict) for v in value):
            raise self.fail(key, value, "Member must be a list of structures")
        if len(value) < min_items:
            raise self.fail(
                key, value, f"Member must have length greater than or equal to {min_items}"
            )
        if max_items is not None and len(value) > max_items:
            raise self.fail(
                key, value, f"Member must have length less than or equal to {max_items}"
            )
        return [Body(v, prefix=f"{self.path(key)}.{i + 1}.member.") for i, v in enumerate(value)]


def _list_text(items: list[str]) -> str:
    return "[" + ", ".join(items) + "]"


def _check_range(body: Body, key: str, value: float, low: float | None, high: float | None) -> None:
    if low is not None and value < low:
        raise body.fail(key, value, f"Member must have value greater than or equal to {_num(low)}")
    if high is not None and value > high:
        raise body.fail(key, value, f"Member must have value less than or equal to {_num(high)}")


def _num(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else str(value)
