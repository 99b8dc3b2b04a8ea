"""Strategy profiles: which deployment group serves which task, and under what rules.

A profile is a YAML file in ``profiles/`` edited by people who are not developers, so the models
here are strict (``extra="forbid"``: a typo such as ``alow_cloud`` fails loudly), bounded, and
documented field by field. Shape is checked here; whether the groups and tasks a profile names
exist is checked in :mod:`biorouter.serving.validate`, against ``litellm_config`` and ``utterances/``.

Some fields are parsed and validated now but enforced by later components (hardware needs by
profile selection, costs by the ledger); ``profiles/README.md`` says which.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, field_validator, model_validator

from biorouter.errors import ConfigError, Problem
from biorouter.files import display_path
from biorouter.governance.records import DEFAULT_RECORD_CUES
from biorouter.governance.sensitivity import BUILTIN_RULE_NAMES, SensitivityDetector, compile_pattern
from biorouter.routing.complexity import ComplexityConfig, Tier
from biorouter.routing.plans import StrategyPolicy, StrategySpec
from biorouter.yamlfile import load_model

__all__ = [
    "Behaviour",
    "ClassifierPolicy",
    "Costs",
    "Governance",
    "HardwareNeeds",
    "Profile",
    "Route",
    "SensitivePattern",
    "TaskBudget",
    "TierRoute",
    "load_profile",
    "load_profiles",
]

GroupName = str
TASK_PATTERN = r"^[a-z][a-z0-9_]*$"
TaskName = Annotated[str, StringConstraints(pattern=TASK_PATTERN)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _check_fallbacks(group: str, fallbacks: tuple[str, ...], owner: str) -> None:
    if group in fallbacks:
        raise ValueError(f"fallbacks list the {owner}'s own group '{group}'")
    if len(set(fallbacks)) != len(fallbacks):
        raise ValueError("fallbacks list a group twice")


class TierRoute(_Strict):
    """Where requests of one complexity tier of a route go; the route's ``allow_cloud`` still applies."""

    group: GroupName = Field(min_length=1, description="deployment group for this tier")
    fallbacks: tuple[GroupName, ...] = Field(default=(), description="tried in order when the group fails")
    max_tokens: int | None = Field(default=None, ge=1, le=1_000_000, description="default when unset")

    @model_validator(mode="after")
    def _fallbacks_differ_from_group(self) -> TierRoute:
        _check_fallbacks(self.group, self.fallbacks, "tier")
        return self


class Route(_Strict):
    """Where one task goes: a deployment group, and the groups allowed to take over if it fails."""

    group: GroupName = Field(min_length=1, description="deployment group (model_name in litellm_config)")
    allow_cloud: bool = Field(default=True, description="false keeps every request of this task on local deployments")
    fallbacks: tuple[GroupName, ...] = Field(default=(), description="tried in order when the group fails")
    max_tokens: int | None = Field(default=None, ge=1, le=1_000_000, description="default when unset")
    temperature: float | None = Field(default=None, ge=0, le=2, description="default when unset")
    tiers: dict[Tier, TierRoute] = Field(
        default_factory=dict,
        description="complexity tier (low, medium, high) -> where that tier goes; a tier not listed uses "
        "the route's own group (see the profile's complexity: section)",
    )
    strategy: StrategySpec = Field(
        default_factory=StrategySpec,
        description="single (one call, the default) | race | ensemble | cascade over the route's allowed groups",
    )

    def for_tier(self, tier: Tier | None) -> Route:
        """This route with the tier's group, fallbacks and max_tokens (itself when the tier is not listed)."""
        chosen = self.tiers.get(tier) if tier is not None else None
        if chosen is None:
            return self
        update: dict[str, object] = {"group": chosen.group, "fallbacks": chosen.fallbacks, "tiers": {}}
        if chosen.max_tokens is not None:
            update["max_tokens"] = chosen.max_tokens
        return self.model_copy(update=update)

    @model_validator(mode="after")
    def _fallbacks_differ_from_group(self) -> Route:
        _check_fallbacks(self.group, self.fallbacks, "route")
        return self


class HardwareNeeds(_Strict):
    """What a machine must offer for this profile to fit (enforced by profile selection)."""

    gpu_types: tuple[str, ...] = Field(default=(), description="any of these GPU models, e.g. T4, L4, H100")
    min_gpus: int = Field(default=0, ge=0, le=1024)
    min_gpu_memory_gb: float = Field(default=0, ge=0, le=10_000, description="per GPU")
    slurm: Literal["required", "optional", "forbidden"] = "optional"
    cloud_apis: tuple[str, ...] = Field(
        default=(), description="environment variables that must be set, e.g. DEEPSEEK_API_KEY"
    )
    healthy_groups: tuple[GroupName, ...] = Field(default=(), description="local groups that must answer")


class ClassifierPolicy(_Strict):
    """How sure the task classifier must be before its answer is trusted."""

    min_confidence: float = Field(
        default=0.1,
        ge=0,
        le=1,
        description="below this score (0..1) the request is unsure (see when_unsure); on external prompts "
        "right answers scored a median 0.31 and wrong ones 0.15 with the default encoder",
    )
    per_task: dict[TaskName, float] = Field(
        default_factory=dict,
        description="task -> its own min_confidence (biorouter tune --data FILE proposes them)",
    )
    when_unsure: Literal["default_route", "safer_of_top_two"] = Field(
        default="default_route",
        description="an unsure request goes to the default route, or to the safer (local) of the routes of "
        "the two best-scoring tasks",
    )
    prefer: dict[TaskName, float] = Field(
        default_factory=dict,
        description="task -> margin: the task takes the request whenever its score is within this margin of "
        "the best task's (for safety, where a miss costs more than a detour; biorouter eval --cross-source "
        "proposes one)",
    )

    @field_validator("prefer")
    @classmethod
    def _margins_in_range(cls, value: dict[str, float]) -> dict[str, float]:
        for task, margin in value.items():
            if not 0 <= margin <= 1:
                raise ValueError(f"margin of '{task}' must be between 0 and 1, not {margin}")
        return value

    @field_validator("per_task")
    @classmethod
    def _thresholds_in_range(cls, value: dict[str, float]) -> dict[str, float]:
        for task, threshold in value.items():
            if not 0 <= threshold <= 1:
                raise ValueError(f"threshold of '{task}' must be between 0 and 1, not {threshold}")
        return value

    def threshold(self, task: str) -> float:
        """The confidence ``task`` needs before its route is trusted."""
        return self.per_task.get(task, self.min_confidence)


class Behaviour(_Strict):
    num_retries: int = Field(default=2, ge=0, le=10, description="retries per group before falling back")
    timeout_s: float = Field(default=120, gt=0, le=3600)
    cache: Literal["off", "on-premises", "shared"] = Field(
        default="off", description="'on-premises' allows caching local-only requests"
    )


class TaskBudget(_Strict):
    """A budget of its own for one task, on top of the profile's."""

    daily_budget_usd: float | None = Field(default=None, ge=0)
    monthly_budget_usd: float | None = Field(default=None, ge=0)


class Costs(_Strict):
    """Spend limits in US dollars, enforced by the ledger (local $0 deployments are never limited)."""

    max_per_request_usd: float | None = Field(
        default=None,
        ge=0,
        description="a request estimated above this goes to the cheapest group under it, or is refused",
    )
    daily_budget_usd: float | None = Field(default=None, ge=0, description="cloud spend per UTC day, whole profile")
    monthly_budget_usd: float | None = Field(default=None, ge=0, description="cloud spend per UTC month")
    warn_at: float = Field(default=0.8, gt=0, le=1, description="fraction of a budget that triggers a warning")
    per_task: dict[TaskName, TaskBudget] = Field(default_factory=dict, description="task -> its own budgets")
    default_max_tokens: int = Field(
        default=1024, ge=1, le=1_000_000, description="answer length assumed for the estimate when none is set"
    )
    ledger_unavailable: Literal["closed", "open"] = Field(
        default="closed",
        description="when the shared ledger (Redis) is unreachable: 'closed' keeps cloud spend off until it "
        "returns (local groups still serve); 'open' keeps spending, counted in memory",
    )


BuiltinRule = Literal[BUILTIN_RULE_NAMES]  # type: ignore[valid-type]


class SensitivePattern(_Strict):
    """One of the lab's own identifier formats, e.g. its sample IDs, that must stay local."""

    name: str = Field(pattern=r"^[a-z][a-z0-9_]*$", description="recorded in the Decision when it fires")
    regex: str = Field(min_length=1, max_length=2000, description="a regular expression (Python syntax)")
    description: str = ""
    ignore_case: bool = False

    @field_validator("regex")
    @classmethod
    def _usable(cls, value: str) -> str:
        problem = compile_pattern(value)
        if problem is not None:
            raise ValueError(problem)
        return value


class Governance(_Strict):
    """What keeps sensitive data on local deployments, beyond the per-route ``allow_cloud``."""

    sensitive_patterns: tuple[SensitivePattern, ...] = Field(
        default=(), description="the lab's own identifier formats; a match keeps the request local"
    )
    disabled_rules: tuple[BuiltinRule, ...] = Field(
        default=(), description=f"built-in detector rules to switch off: {', '.join(BUILTIN_RULE_NAMES)}"
    )
    cloud_only: bool = Field(
        default=False,
        description="the profile knowingly has no local group: requests carrying sensitive content are refused "
        "(silences the validate warning)",
    )
    record_cues: int = Field(
        default=DEFAULT_RECORD_CUES,
        ge=2,
        le=6,
        description="how many kinds of note structure (shorthand, vitals, body-system headings, shift times, care "
        "verbs, events about one patient) make a text a patient record; lower is stricter",
    )
    sensitive_cloud_request: Literal["refuse", "reroute"] = Field(
        default="refuse",
        description="a request naming a cloud group directly but carrying sensitive content is refused, "
        "or re-routed to the local groups its task would use",
    )

    @model_validator(mode="after")
    def _unique_pattern_names(self) -> Governance:
        names = [p.name for p in self.sensitive_patterns]
        if len(set(names)) != len(names):
            raise ValueError("sensitive_patterns use the same name twice")
        return self

    def detector(self) -> SensitivityDetector:
        return SensitivityDetector.build(
            disabled=self.disabled_rules,
            patterns=[(p.name, p.regex, p.ignore_case) for p in self.sensitive_patterns],
            record_cues=self.record_cues,
        )

    def weakened(self) -> list[str]:
        """What this profile switched off or loosened against the default, in plain words (empty: default)."""
        off = set(self.disabled_rules)
        parts = []
        if "person:name" in off:
            parts.append("person names found only by the NER model (no cue a rule knows) go to the cloud")
        if "record:clinical_note" in off:
            parts.append("clinical notes without a name or identifier go to the cloud")
        if "record:lab_results" in off:
            parts.append("one patient's dated lab rows without an identifier go to the cloud")
        if self.record_cues > DEFAULT_RECORD_CUES:
            parts.append(
                f"a note needs {self.record_cues} kinds of note structure (default {DEFAULT_RECORD_CUES}) "
                "to count as a patient record, so shorter notes may go to the cloud"
            )
        parts.extend(f"the '{name}' identifier rule is off" for name in self.disabled_rules if ":" not in name)
        return parts

    def describe(self) -> str:
        """How strict this profile's detector is, in plain words (``biorouter validate`` prints it)."""
        off = set(self.disabled_rules)
        layers = ["identifiers (IDs, cards, IBANs, phones, e-mail, addresses, MRNs, dates of birth)"]
        if not {"record:clinical_note", "record:lab_results"} <= off:
            layers.append(f"patient records (notes with {self.record_cues}+ kinds of note structure, dated lab rows)")
        if "person:name" not in off:
            layers.append("person names near a personal cue (spaCy NER)")
        text = "keeps local any request carrying " + "; ".join(layers)
        if self.sensitive_patterns:
            text += f"; plus {len(self.sensitive_patterns)} lab pattern(s)"
        weakened = self.weakened()
        return text + (" - weakened: " + "; ".join(weakened) if weakened else " (the default strictness)")


class Profile(_Strict):
    version: Literal[1] = Field(description="schema version of this file; currently 1")
    name: str = Field(pattern=r"^[a-z][a-z0-9_]*$", description="must match the file name; 'auto' is reserved")
    description: str = Field(min_length=1)
    priority: int = Field(default=0, ge=0, le=1000, description="higher wins when several profiles fit")
    hardware: HardwareNeeds = Field(default_factory=HardwareNeeds)
    classifier: ClassifierPolicy = Field(default_factory=ClassifierPolicy)
    default_route: Route = Field(description="serves unsure classifications and tasks without a route")
    routes: dict[TaskName, Route] = Field(min_length=1, description="task name -> route")
    behaviour: Behaviour = Field(default_factory=Behaviour)
    governance: Governance = Field(default_factory=Governance)
    costs: Costs = Field(default_factory=Costs)
    complexity: ComplexityConfig = Field(
        default_factory=ComplexityConfig, description="the tier estimator for routes that list tiers"
    )
    embedding_route: Route | None = Field(
        default=None,
        description='where /v1/embeddings and biorouter.aembedding() with model "auto" go (embedding groups)',
    )
    strategies: StrategyPolicy = Field(
        default_factory=StrategyPolicy,
        description="strategies a request may ask for in metadata.biorouter_strategy (none by default)",
    )

    @field_validator("name")
    @classmethod
    def _not_reserved(cls, value: str) -> str:
        if value == "auto":
            raise ValueError("'auto' is reserved: it asks biorouter to select a profile by hardware")
        return value

    def route_for(self, task: str) -> Route | None:
        return self.routes.get(task)

    def groups(self) -> set[GroupName]:
        """Every group this profile may send traffic to (tiers and the embedding route included)."""
        routes = [self.default_route, *self.routes.values()]
        routes += [r.for_tier(tier) for r in routes for tier in r.tiers]
        if self.embedding_route is not None:
            routes.append(self.embedding_route)
        return {g for r in routes for g in (r.group, *r.fallbacks)}


def load_profile(path: Path, *, display: str | None = None) -> Profile:
    """Load and shape-check one profile; the file name must match its ``name``."""
    source = display or str(path)
    profile = load_model(path, Profile, display=source, unknown_key_hint="profiles/README.md lists every key")
    if profile.name != path.stem:
        raise ConfigError([Problem(source, ("name",), f"'{profile.name}' does not match the file name '{path.stem}'")])
    return profile


def load_profiles(folder: Path, *, display_root: Path | None = None) -> dict[str, Profile]:
    """Every ``*.yaml`` profile in ``folder``; all problems of all files in one ConfigError."""
    if not folder.is_dir():
        raise ConfigError([Problem(str(folder), (), "profiles folder not found")])
    profiles: dict[str, Profile] = {}
    problems: list[Problem] = []
    for path in sorted(folder.glob("*.yaml")):
        display = display_path(path, display_root)
        try:
            profiles[path.stem] = load_profile(path, display=display)
        except ConfigError as e:
            problems.extend(e.problems)
    if problems:
        raise ConfigError(problems)
    if not profiles:
        raise ConfigError([Problem(str(folder), (), "no *.yaml profiles found")])
    return profiles
