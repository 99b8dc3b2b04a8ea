"""The deployment groups LiteLLM serves, as biorouter needs to know them.

LiteLLM owns ``litellm_config/config.yaml``; biorouter reads only what routing needs from each
``model_list`` entry: its group (``model_name``), and from ``model_info`` its locality
(``local`` or ``cloud``), its mode (``chat`` or ``embedding``) and its context window. A
deployment whose locality is not declared counts as cloud: a forgotten line must never let
sensitive data out.

The same :class:`Catalogue` is built from the config file (Python API, CLI) and from the model
list of the running proxy's router, so both entry points judge groups the same way.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from biorouter.errors import ConfigError
from biorouter.yamlfile import load_model, problems_from_validation

__all__ = ["Catalogue", "Deployment", "Group", "LiteLLMConfig", "load_litellm_config", "parse_model_list"]

Locality = Literal["local", "cloud"]


class _Open(BaseModel):
    # LiteLLM owns these sections and accepts many more keys than biorouter reads.
    model_config = ConfigDict(extra="allow", frozen=True)


class ModelInfo(_Open):
    locality: Locality | None = Field(default=None, description="unset counts as cloud")
    mode: Literal["chat", "embedding", "completion"] = "chat"
    max_input_tokens: int | None = Field(default=None, ge=1)


class LiteLLMParams(_Open):
    model: str = Field(min_length=1)
    api_base: str | None = None


class Deployment(_Open):
    model_name: str = Field(min_length=1)
    litellm_params: LiteLLMParams
    model_info: ModelInfo = Field(default_factory=ModelInfo)

    @property
    def locality(self) -> Locality:
        return self.model_info.locality or "cloud"


class LiteLLMConfig(_Open):
    model_list: list[Deployment] = Field(min_length=1)
    router_settings: dict[str, Any] = Field(default_factory=dict)
    litellm_settings: dict[str, Any] = Field(default_factory=dict)

    @field_validator("model_list")
    @classmethod
    def _without_biorouters_own(cls, value: list[Deployment]) -> list[Deployment]:
        return [d for d in value if not is_biorouter_deployment(d)]


BIOROUTER_PROVIDER = "biorouter/"  # models biorouter serves itself inside the proxy (biorouter.proxy.strategy)


def is_biorouter_deployment(deployment: Deployment) -> bool:
    """A pseudo deployment served by biorouter's own provider (e.g. ``biorouter-strategy``), not a model.

    It is left out of the catalogue, prices and probes: profiles cannot route to it, and it is
    never mistaken for a real (cloud) deployment.
    """
    return deployment.litellm_params.model.startswith(BIOROUTER_PROVIDER)


class Group(BaseModel):
    """One deployment group: every deployment sharing a ``model_name``."""

    model_config = ConfigDict(frozen=True)

    name: str
    locality: Locality  # cloud if any deployment of the group is (or is undeclared)
    mode: str
    deployments: int
    undeclared_locality: int = 0
    max_input_tokens: int | None = None

    @property
    def is_local(self) -> bool:
        return self.locality == "local"


class Catalogue(BaseModel):
    model_config = ConfigDict(frozen=True)

    groups: Mapping[str, Group]

    @classmethod
    def from_deployments(cls, deployments: Iterable[Deployment]) -> Catalogue:
        by_name: dict[str, list[Deployment]] = {}
        for d in deployments:
            by_name.setdefault(d.model_name, []).append(d)
        groups = {}
        for name, members in by_name.items():
            windows = [m.model_info.max_input_tokens for m in members if m.model_info.max_input_tokens]
            groups[name] = Group(
                name=name,
                locality="local" if all(m.locality == "local" for m in members) else "cloud",
                mode=members[0].model_info.mode,
                deployments=len(members),
                undeclared_locality=sum(m.model_info.locality is None for m in members),
                max_input_tokens=min(windows) if windows else None,
            )
        return cls(groups=groups)

    @classmethod
    def from_model_list(cls, model_list: Iterable[Mapping[str, Any]]) -> Catalogue:
        """From a LiteLLM router's live ``model_list`` (dicts), as the proxy holds it."""
        return cls.from_deployments(parse_model_list(model_list))

    def names(self) -> list[str]:
        return sorted(self.groups)

    def is_local(self, group: str) -> bool:
        """Unknown groups are not local: they cannot be proven to be."""
        found = self.groups.get(group)
        return found is not None and found.is_local


def parse_model_list(model_list: Iterable[Mapping[str, Any]]) -> list[Deployment]:
    """Deployments from a LiteLLM ``model_list`` of dicts; one ConfigError naming every bad entry's field."""
    deployments = []
    for entry in model_list:
        try:
            deployment = Deployment.model_validate(dict(entry))
        except ValidationError as e:
            raise ConfigError(problems_from_validation("litellm model_list", e)) from e
        if not is_biorouter_deployment(deployment):
            deployments.append(deployment)
    return deployments


def load_litellm_config(path: Path, *, display: str | None = None) -> LiteLLMConfig:
    return load_model(path, LiteLLMConfig, display=display)
