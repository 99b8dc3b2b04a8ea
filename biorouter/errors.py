"""The one exception family biorouter raises.

    BiorouterError                     anything biorouter itself refuses or cannot do
    ├── ConfigError                    profiles/, utterances/, litellm_config or settings are wrong;
    │                                  carries every Problem found, each naming file and key path
    ├── ClassifierError                the encoder or the semantic router could not load or answer
    ├── SelectionError                 no profile fits this machine (lists each profile and why)
    ├── RequestError                   the request itself cannot be routed (no text, unknown task hint)
    └── RoutingError                   no deployment group can serve a decided request
        └── KeptLocalError             a local-only request no local deployment could serve: refused,
                                       never widened to the cloud (HTTP 503 from the proxy)

Callers catch ``BiorouterError`` to handle every failure of ours; LiteLLM's own exceptions
(upstream errors after retries and fallbacks) pass through untouched, so a client sees the
same errors it would see from LiteLLM alone.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

__all__ = [
    "BiorouterError",
    "ClassifierError",
    "ConfigError",
    "KeptLocalError",
    "Problem",
    "RequestError",
    "RoutingError",
    "SelectionError",
    "described",
    "quoted_label",
]


def described(value: object) -> str:
    """What a request field holds, by kind only: error messages are logged, so they never echo its text.

    A malformed field may well carry the prompt or an identifier (the fuzzers put a record number
    in every shape they send), and LiteLLM logs the detail of every error it returns.
    """
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return "a negative number" if value < 0 else f"a {type(value).__name__}"
    if isinstance(value, str):
        return f"a string of {len(value)} characters" if value else "an empty string"
    if isinstance(value, dict):
        return "an object"
    if isinstance(value, list):
        return "a list"
    return f"a {type(value).__name__}"


_LABEL = re.compile(r"[A-Za-z][\w./:-]{0,63}")


def quoted_label(value: str) -> str:
    """A client's label (a model, task or role name) quoted for an error message, or its kind if it is not a label."""
    return f"'{value}'" if _LABEL.fullmatch(value) else described(value)


@dataclass(frozen=True)
class Problem:
    """One thing wrong in one file, rendered as ``file: a -> b -> c: message``."""

    source: str
    location: tuple[str | int, ...]
    message: str
    severity: Literal["error", "warning"] = "error"

    def __str__(self) -> str:
        where = " -> ".join(str(part) for part in self.location)
        text = f"{self.source}: {where}: {self.message}" if where else f"{self.source}: {self.message}"
        return text if self.severity == "error" else f"{text} (warning)"


class BiorouterError(Exception):
    """Base of every error biorouter raises on purpose."""


class ConfigError(BiorouterError):
    """One or more configuration files are invalid; ``problems`` lists each one."""

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = list(problems)
        lines = "\n".join(f"  {p}" for p in self.problems)
        count = len(self.problems)
        super().__init__(f"{count} configuration problem{'s' if count != 1 else ''}:\n{lines}")


class ClassifierError(BiorouterError):
    """The task classifier (encoder or index) failed to load or to answer."""


class SelectionError(BiorouterError):
    """No profile's hardware needs are met by this machine, and none was chosen explicitly."""


class RequestError(BiorouterError):
    """The request cannot be routed as sent: the message says what to change."""


class RoutingError(BiorouterError):
    """No deployment group the profile allows can serve this request."""


class KeptLocalError(RoutingError):
    """A local-only request that no local deployment could serve; it was refused, not sent to the cloud.

    ``rules`` names what made it local-only (``route:<task>``, ``content:<detector rule>``), never
    the request text.
    """

    def __init__(self, message: str, *, rules: tuple[str, ...] = ()) -> None:
        super().__init__(message)
        self.rules = rules
