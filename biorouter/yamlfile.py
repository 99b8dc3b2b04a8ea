"""Reading YAML files and turning pydantic errors into ``file: a -> b: message`` problems.

Every configuration file non-developers edit goes through here, so every error they see has the
same shape: the file, the path of keys inside it, and what is wrong in plain words.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ValidationError

from biorouter.errors import ConfigError, Problem

__all__ = ["load_model", "problems_from_validation", "read_yaml_mapping"]

ModelT = TypeVar("ModelT", bound=BaseModel)

# pydantic's messages are good; a few read better for people editing YAML by hand.
_FRIENDLIER = {
    "extra_forbidden": "unknown key (check the spelling)",
    "missing": "required key is missing",
}


def read_yaml_mapping(path: Path, *, display: str | None = None) -> dict[str, Any]:
    """Parse ``path`` as a YAML mapping; an empty file is an empty mapping."""
    source = display or str(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError as e:
        raise ConfigError([Problem(source, (), "file not found")]) from e
    except UnicodeDecodeError as e:
        raise ConfigError([Problem(source, (), f"not UTF-8 text: {e.reason} at byte {e.start}")]) from e
    except OSError as e:
        raise ConfigError([Problem(source, (), f"cannot read file: {e}")]) from e
    try:
        data = yaml.safe_load(text) or {}
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark is not None else ""
        reason = getattr(e, "problem", None) or str(e)
        raise ConfigError([Problem(source, (), f"invalid YAML: {where}{reason}")]) from e
    if not isinstance(data, dict):
        raise ConfigError(
            [Problem(source, (), f"expected a mapping of keys at the top level, found {type(data).__name__}")]
        )
    return data


def _yaml_location(loc: tuple[Any, ...], data: Any) -> tuple[str | int, ...]:
    """``loc`` as keys that exist in the YAML: drops pydantic's union tags and ``[key]`` markers.

    For a discriminated union pydantic inserts the tag (``sentence-transformers``) between the
    field and its keys; a person editing the file never wrote that, so it is left out.
    """
    path: list[str | int] = []
    node = data
    for part in loc:
        if part == "[key]":
            continue
        if isinstance(node, dict) and part not in node and node.get("kind") == part:
            continue  # a union tag
        path.append(part)
        if isinstance(node, dict):
            node = node.get(part)
        elif isinstance(node, list) and isinstance(part, int) and 0 <= part < len(node):
            node = node[part]
        else:
            node = None
    return tuple(path)


def problems_from_validation(
    source: str, error: ValidationError, data: Any = None, *, unknown_key_hint: str = ""
) -> list[Problem]:
    """One Problem per pydantic error, located by its key path in the YAML (``data``)."""
    problems = []
    for item in error.errors(include_url=False):
        if item["loc"] and item["loc"][-1] == "[key]" and item["type"] == "string_pattern_mismatch":
            location = _yaml_location(item["loc"], data)
            name = item["input"]
            message = f"name {name!r} must be lower_snake_case (a-z, 0-9, _; starting with a letter)"
            problems.append(Problem(source, location[:-1], message))
            continue
        message = _FRIENDLIER.get(item["type"], item["msg"])
        if item["type"] == "extra_forbidden" and unknown_key_hint:
            message = f"{message[:-1]}; {unknown_key_hint})"
        if item["type"] not in _FRIENDLIER and "input" in item and item["type"] != "value_error":
            shown = repr(item["input"])
            if len(shown) <= 60 and not isinstance(item["input"], dict):
                message = f"{message} (got {shown})"
        message = message.removeprefix("Value error, ")
        problems.append(Problem(source, _yaml_location(tuple(item["loc"]), data), message))
    return problems


def load_model(path: Path, model: type[ModelT], *, display: str | None = None, unknown_key_hint: str = "") -> ModelT:
    """Read ``path`` and validate it as ``model``; every problem is reported at once."""
    source = display or str(path)
    data = read_yaml_mapping(path, display=source)
    try:
        return model.model_validate(data)
    except ValidationError as e:
        raise ConfigError(problems_from_validation(source, e, data, unknown_key_hint=unknown_key_hint)) from e
