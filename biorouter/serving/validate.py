"""``biorouter validate``: every configuration file, checked in two phases.

Phase 1 (shape) parses each file on its own: ``biorouter.yaml``, every profile, LiteLLM's config
and the utterance files, with pydantic's strict models. Phase 2 (references) checks that the
files agree: every group a profile names exists in ``litellm_config``; every task a profile
routes has utterances; a route that keeps data local offers no cloud group; the active profile
exists. Every problem of every file is collected before reporting, so one run shows everything a
person has to fix.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

from pydantic import BaseModel, ConfigDict

from biorouter.classify.utterances import utterance_problems
from biorouter.costs.prices import group_prices
from biorouter.errors import ConfigError, Problem
from biorouter.files import display_path
from biorouter.routing.catalogue import Catalogue, Deployment, load_litellm_config
from biorouter.routing.profiles import Profile, Route, load_profile
from biorouter.settings import Settings

__all__ = ["ValidationReport", "check_profile", "validate_all"]


class ValidationReport(BaseModel):
    model_config = ConfigDict(frozen=True)

    problems: tuple[Problem, ...]
    profiles: tuple[str, ...]
    tasks: Mapping[str, int]  # task -> number of utterances
    groups: Mapping[str, str]  # group -> locality
    governance: Mapping[str, str] = {}  # profile -> how strict its sensitivity detector is, in plain words

    @property
    def errors(self) -> list[Problem]:
        return [p for p in self.problems if p.severity == "error"]

    @property
    def warnings(self) -> list[Problem]:
        return [p for p in self.problems if p.severity == "warning"]

    @property
    def ok(self) -> bool:
        return not self.errors


def _unknown_group(group: str, catalogue: Catalogue) -> str:
    return f"unknown group '{group}' (known: {', '.join(catalogue.names())})"


def _check_route(
    source: str, where: tuple[str, ...], route: Route, catalogue: Catalogue, problems: list[Problem]
) -> None:
    if route.group not in catalogue.groups:
        problems.append(Problem(source, (*where, "group"), _unknown_group(route.group, catalogue)))
    for index, group in enumerate(route.fallbacks):
        if group not in catalogue.groups:
            problems.append(Problem(source, (*where, "fallbacks", index), _unknown_group(group, catalogue)))
    if not route.allow_cloud:
        if route.group in catalogue.groups and not catalogue.is_local(route.group):
            problems.append(
                Problem(
                    source, (*where, "group"), f"'{route.group}' is a cloud group but the route sets allow_cloud: false"
                )
            )
        for index, group in enumerate(route.fallbacks):
            if group in catalogue.groups and not catalogue.is_local(group):
                problems.append(
                    Problem(
                        source,
                        (*where, "fallbacks", index),
                        f"'{group}' is a cloud group but the route sets allow_cloud: false "
                        "(it would be skipped at run time)",
                    )
                )


def check_profile(source: str, profile: Profile, catalogue: Catalogue, tasks: Mapping[str, int]) -> list[Problem]:
    """Reference checks for one shape-valid profile."""
    problems: list[Problem] = []
    named = [(("default_route",), profile.default_route), *((("routes", t), r) for t, r in profile.routes.items())]
    for place, checked in named:
        _check_route(source, place, checked, catalogue, problems)
        for tier in checked.tiers:
            _check_route(source, (*place, "tiers", tier), checked.for_tier(tier), catalogue, problems)
    for task in profile.routes:
        if tasks and task not in tasks:
            problems.append(
                Problem(
                    source, ("routes", task), f"no utterances/{task}.txt: the classifier cannot recognise this task"
                )
            )
    if profile.embedding_route is not None:
        _check_route(source, ("embedding_route",), profile.embedding_route, catalogue, problems)
        route = profile.embedding_route
        for where, group in (
            (("group",), route.group),
            *((("fallbacks", i), g) for i, g in enumerate(route.fallbacks)),
        ):
            if group in catalogue.groups and catalogue.groups[group].mode != "embedding":
                message = (
                    f"'{group}' serves {catalogue.groups[group].mode} models, not embeddings (skipped at run time)"
                )
                problems.append(Problem(source, ("embedding_route", *where), message, "warning"))
    problems.extend(strategy_problems(source, profile, catalogue))
    no_local_group = not any(catalogue.is_local(g) for g in profile.groups())
    if catalogue.groups and no_local_group and not profile.governance.cloud_only:
        problems.append(
            Problem(
                source,
                ("governance",),
                "no local group in any route: requests carrying sensitive content will be refused "
                "(set cloud_only: true to acknowledge)",
                "warning",
            )
        )
    for weakened in profile.governance.weakened():
        problems.append(Problem(source, ("governance",), f"detector weakened: {weakened}", "warning"))
    for index, group in enumerate(profile.hardware.healthy_groups):
        if group not in catalogue.groups:
            problems.append(Problem(source, ("hardware", "healthy_groups", index), _unknown_group(group, catalogue)))
    for task in sorted(set(tasks) - set(profile.routes)):
        problems.append(
            Problem(source, ("routes",), f"no route for task '{task}': its requests take the default route", "warning")
        )
    return problems


def validate_all(settings: Settings, *, litellm_config: Path | None = None) -> ValidationReport:
    """Check every file biorouter reads; never raises for a problem in them."""
    home = settings.home
    problems: list[Problem] = []

    # phase 1: shape, file by file
    config_path = litellm_config or settings.litellm_config_path
    catalogue = Catalogue(groups={})
    standins = False
    try:
        config = load_litellm_config(config_path, display=display_path(config_path, home))
        catalogue = Catalogue.from_deployments(config.model_list)
        standins = is_standin_config(config.model_list)
        for index, deployment in enumerate(config.model_list):
            if deployment.model_info.locality is None:
                problems.append(
                    Problem(
                        display_path(config_path, home),
                        ("model_list", index, "model_info", "locality"),
                        f"not declared for '{deployment.model_name}': it counts as cloud",
                        "warning",
                    )
                )
        problems.extend(address_problems(config.model_list, display_path(config_path, home)))
        for group, price in sorted(group_prices(config.model_list).items()):
            if price is None:
                problems.append(
                    Problem(
                        display_path(config_path, home),
                        ("model_list", group),
                        "no known price for this cloud group: budgets cannot limit its spend "
                        "(set input_cost_per_token and output_cost_per_token in model_info)",
                        "warning",
                    )
                )
    except ConfigError as e:
        problems.extend(e.problems)

    utterances, utterance_issues = utterance_problems(settings.utterances_path, display_root=home)
    problems.extend(utterance_issues)
    tasks = {task: len(lines) for task, lines in utterances.items()}

    profiles: dict[str, tuple[str, Profile]] = {}
    folder = settings.profiles_path
    if not folder.is_dir():
        problems.append(Problem(display_path(folder, home), (), "profiles folder not found"))
    else:
        paths = sorted(folder.glob("*.yaml"))
        if not paths:
            problems.append(Problem(display_path(folder, home), (), "no *.yaml profiles found"))
        for path in paths:
            source = display_path(path, home)
            try:
                profiles[path.stem] = (source, load_profile(path, display=source))
            except ConfigError as e:
                problems.extend(e.problems)

    # phase 2: references between files
    if catalogue.groups:
        for name, (source, profile) in profiles.items():
            found = check_profile(source, profile, catalogue, tasks)
            if standins and name != settings.active_profile:
                found = _as_standin_note(source, name, profile, catalogue, found)
            problems.extend(found)
    # an active profile whose file exists but failed to parse is already reported above
    active = settings.active_profile
    if folder.is_dir() and active != "auto" and not (folder / f"{active}.yaml").exists():
        problems.append(
            Problem(
                "biorouter.yaml",
                ("profile",),
                f"active profile '{active}' has no file profiles/{active}.yaml (or use 'auto' to select by hardware)",
            )
        )
    return ValidationReport(
        problems=tuple(problems),
        profiles=tuple(sorted(profiles)),
        tasks=tasks,
        groups={name: group.locality for name, group in sorted(catalogue.groups.items())},
        governance={name: profile.governance.describe() for name, (_, profile) in sorted(profiles.items())},
    )


# -- where local servers are, and the demo's stand-in configs ------------------------------------------------


def address_problems(deployments: Sequence[Deployment], source: str) -> list[Problem]:
    """A warning per local deployment whose ``api_base`` is ``os.environ/NAME`` with NAME unset.

    LiteLLM would fail each of its requests ("Missing credentials"); ``biorouter detect`` reports
    the same fact for the same reason (:func:`biorouter.hardware.probes.resolve_env`).
    """
    from biorouter.hardware.probes import resolve_env

    found: list[Problem] = []
    for index, deployment in enumerate(deployments):
        if deployment.locality != "local":
            continue
        _, unset = resolve_env(deployment.litellm_params.api_base)
        if unset is not None:
            message = (
                f"group '{deployment.model_name}' has no address: {unset}, so its requests fail inside LiteLLM "
                "(see 'biorouter detect')"
            )
            found.append(Problem(source, ("model_list", index, "litellm_params", "api_base"), message, "warning"))
    return found


STANDIN_MARK = "biorouter_standin"  # model_info key biorouter.testing.devstack.standin_config sets


def is_standin_config(deployments: Sequence[Deployment]) -> bool:
    """A deployment list ``serve --dev`` wrote: every deployment carries the stand-in mark."""
    return bool(deployments) and all((d.model_info.model_extra or {}).get(STANDIN_MARK) is True for d in deployments)


def _as_standin_note(
    source: str, name: str, profile: Profile, catalogue: Catalogue, found: list[Problem]
) -> list[Problem]:
    """A profile a stand-in config was not written for: its missing groups as one note, not an error each.

    A stand-in config holds the groups of the profile ``serve --dev`` ran, so every other profile
    names groups it lacks; that is expected, not a mistake in the profile. Problems unrelated to
    missing groups are kept as they are.
    """
    missing = sorted(g for g in profile.groups() if g not in catalogue.groups)
    if not missing:
        return found
    kept = [p for p in found if not p.message.startswith("unknown group '") and not _because_missing(p, missing)]
    note = (
        f"this stand-in config lacks {', '.join(missing)}, so profile '{name}' cannot be served from it "
        f"(a switch to it is refused there); 'biorouter serve --dev --profile {name}' stands in for its groups"
    )
    return [*kept, Problem(source, (), note, "warning")]


def _because_missing(problem: Problem, missing: Sequence[str]) -> bool:
    """A strategy or judge complaint that only arises because a group is absent from this config."""
    return problem.location[-1:] in (("kind",), ("n",), ("judge",)) and any(g in problem.message for g in missing)


# -- orchestration strategies (biorouter.routing.strategies) -------------------------------------------------------


def _check_strategy(
    source: str, where: tuple[str | int, ...], route: Route, catalogue: Catalogue, problems: list[Problem]
) -> None:
    """A route's strategy against the groups the route offers: judge among them, n not above them."""
    spec = route.strategy
    if spec.kind == "single":
        return
    chain = [g for g in (route.group, *route.fallbacks) if g in catalogue.groups]
    if not route.allow_cloud:
        chain = [g for g in chain if catalogue.is_local(g)]
    if spec.judge is not None:
        if spec.judge not in catalogue.groups:
            problems.append(Problem(source, (*where, "judge"), _unknown_group(spec.judge, catalogue)))
        elif spec.judge not in chain:
            problems.append(
                Problem(
                    source,
                    (*where, "judge"),
                    f"judge '{spec.judge}' is not one of the groups this route may use ({', '.join(chain)}): "
                    "add it to the route's fallbacks",
                )
            )
    answering = [g for g in chain if g != spec.judge]
    wanted = spec.n or (2 if spec.kind != "cascade" else len(answering))
    if len(answering) < 2:
        problems.append(
            Problem(
                source,
                (*where, "kind"),
                f"'{spec.kind}' needs at least two groups to answer, the route offers {len(answering)} "
                f"({', '.join(answering) or 'none'}): add fallbacks or use single",
            )
        )
    elif wanted > len(answering):
        problems.append(
            Problem(
                source,
                (*where, "n"),
                f"n is {wanted} but the route offers {len(answering)} groups to answer ({', '.join(answering)})",
            )
        )


def strategy_problems(source: str, profile: Profile, catalogue: Catalogue) -> list[Problem]:
    """Reference checks of every route's strategy and of the strategies requests may ask for."""
    problems: list[Problem] = []
    _check_strategy(source, ("default_route", "strategy"), profile.default_route, catalogue, problems)
    for task, route in profile.routes.items():
        _check_strategy(source, ("routes", task, "strategy"), route, catalogue, problems)
    for index, spec in enumerate(profile.strategies.requestable):
        if spec.judge is not None and spec.judge not in catalogue.groups:
            where = ("strategies", "requestable", index, "judge")
            problems.append(Problem(source, where, _unknown_group(spec.judge, catalogue)))
    return problems
