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
    "extra_forbidden": "unknown key (check the spelling; see profiles/README.md for the allowed keys)",
    "missing": "required key is missing",
}


def read_yaml_mapping(path: Path) -> dict[str, Any]:
    """Parse ``path`` as a YAML mapping; an empty file is an empty mapping."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError as e:
        raise ConfigError([Problem(str(path), (), "file not found")]) from e
    except (OSError, UnicodeDecodeError) as e:
        raise ConfigError([Problem(str(path), (), f"cannot read file: {e}")]) from e
    try:
        data = yaml.safe_load(text) or {}
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark is not None else ""
        reason = getattr(e, "problem", None) or str(e)
        raise ConfigError([Problem(str(path), (), f"invalid YAML: {where}{reason}")]) from e
    if not isinstance(data, dict):
        raise ConfigError(
            [Problem(str(path), (), f"expected a mapping of keys at the top level, found {type(data).__name__}")]
        )
    return data


def problems_from_validation(source: str, error: ValidationError) -> list[Problem]:
    """One Problem per pydantic error, located by its key path."""
    problems = []
    for item in error.errors(include_url=False):
        message = _FRIENDLIER.get(item["type"], item["msg"])
        if item["type"] not in _FRIENDLIER and "input" in item and item["type"] != "value_error":
            shown = repr(item["input"])
            if len(shown) <= 60 and not isinstance(item["input"], dict):
                message = f"{message} (got {shown})"
        message = message.removeprefix("Value error, ")
        problems.append(Problem(source, tuple(item["loc"]), message))
    return problems


def load_model(path: Path, model: type[ModelT], *, display: str | None = None) -> ModelT:
    """Read ``path`` and validate it as ``model``; every problem is reported at once."""
    source = display or str(path)
    data = read_yaml_mapping(path)
    try:
        return model.model_validate(data)
    except ValidationError as e:
        raise ConfigError(problems_from_validation(source, e)) from e
