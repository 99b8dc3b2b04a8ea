"""Profile files and ``biorouter.yaml``: what loads, and what a person sees when a file is wrong."""

from __future__ import annotations

import os
import textwrap
from pathlib import Path

import pytest
import yaml
from pydantic import ValidationError

from biorouter.errors import ConfigError, Problem
from biorouter.routing.profiles import Profile, load_profile, load_profiles
from biorouter.settings import find_home, load_settings

MINIMAL = """\
version: 1
name: {name}
description: A test profile.
default_route: {{group: t4-generalist}}
routes:
  biomedical: {{group: t4-bio, allow_cloud: false}}
"""

REQUIRED_KEYS = ("version", "name", "description", "default_route", "routes")


@pytest.fixture(autouse=True)
def _no_biorouter_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    # tests/conftest.py points BIOROUTER_HOME at the checkout; these tests choose their own home
    for name in list(os.environ):
        if name.startswith("BIOROUTER_"):
            monkeypatch.delenv(name)


def write(folder: Path, name: str, text: str | bytes) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


def write_profile(tmp_path: Path, text: str | bytes, name: str = "x") -> Path:
    return write(tmp_path / "profiles", f"{name}.yaml", text)


def profile_problems(path: Path) -> list[str]:
    """Every problem loading ``path`` reports, as a person reads it (``profiles/x.yaml: a -> b: ...``)."""
    with pytest.raises(ConfigError) as excinfo:
        load_profile(path, display=f"profiles/{path.name}")
    return [str(p) for p in excinfo.value.problems]


# --- a valid profile ---------------------------------------------------------------------------


def test_minimal_profile_loads_with_documented_defaults(tmp_path: Path) -> None:
    profile = load_profile(write_profile(tmp_path, MINIMAL.format(name="x")))

    assert profile.name == "x"
    assert profile.default_route.group == "t4-generalist"
    assert profile.default_route.allow_cloud is True
    assert profile.default_route.fallbacks == ()
    biomedical = profile.route_for("biomedical")
    assert biomedical is not None
    assert biomedical.group == "t4-bio"
    assert biomedical.allow_cloud is False
    assert profile.route_for("code_generation") is None
    assert profile.priority == 0
    assert profile.groups() == {"t4-generalist", "t4-bio"}


def test_profile_groups_include_every_fallback(tmp_path: Path) -> None:
    text = MINIMAL.format(name="x") + "  code_generation: {group: t4-coder, fallbacks: [deepseek-v3, gpt-4o]}\n"
    profile = load_profile(write_profile(tmp_path, text))
    assert profile.groups() == {"t4-generalist", "t4-bio", "t4-coder", "deepseek-v3", "gpt-4o"}


def test_profile_models_are_frozen(tmp_path: Path) -> None:
    profile = load_profile(write_profile(tmp_path, MINIMAL.format(name="x")))
    with pytest.raises(ValidationError):
        profile.default_route.allow_cloud = False  # type: ignore[misc]


# --- shape errors, one file --------------------------------------------------------------------


def test_typo_in_route_key_is_reported_with_file_and_key_path(tmp_path: Path) -> None:
    text = MINIMAL.format(name="x").replace("allow_cloud: false", "alow_cloud: false")
    problems = profile_problems(write_profile(tmp_path, text))
    assert len(problems) == 1
    assert problems[0].startswith("profiles/x.yaml: routes -> biomedical -> alow_cloud: unknown key")
    assert "check the spelling" in problems[0]


def test_typo_at_top_level_is_reported_with_its_key(tmp_path: Path) -> None:
    problems = profile_problems(write_profile(tmp_path, MINIMAL.format(name="x") + "priorty: 5\n"))
    assert len(problems) == 1
    assert problems[0].startswith("profiles/x.yaml: priorty: unknown key")


def test_config_error_message_lists_every_problem_and_keeps_the_validation_cause(tmp_path: Path) -> None:
    text = MINIMAL.format(name="x").replace("allow_cloud: false", "alow_cloud: false") + "priorty: 5\n"
    with pytest.raises(ConfigError) as excinfo:
        load_profile(write_profile(tmp_path, text), display="profiles/x.yaml")
    message = str(excinfo.value)
    assert message.startswith("2 configuration problems:\n")
    assert "  profiles/x.yaml: routes -> biomedical -> alow_cloud: unknown key" in message
    assert "  profiles/x.yaml: priorty: unknown key" in message
    assert isinstance(excinfo.value.__cause__, ValidationError)


def test_non_boolean_allow_cloud_is_rejected_and_shows_the_value(tmp_path: Path) -> None:
    text = MINIMAL.format(name="x").replace("allow_cloud: false", "allow_cloud: maybe")
    problems = profile_problems(write_profile(tmp_path, text))
    assert len(problems) == 1
    assert problems[0].startswith(
        "profiles/x.yaml: routes -> biomedical -> allow_cloud: Input should be a valid boolean"
    )
    assert problems[0].endswith("(got 'maybe')")


def test_text_where_a_number_belongs_is_rejected(tmp_path: Path) -> None:
    problems = profile_problems(write_profile(tmp_path, MINIMAL.format(name="x") + "priority: high\n"))
    assert len(problems) == 1
    assert problems[0].startswith("profiles/x.yaml: priority: Input should be a valid integer")
    assert "'high'" in problems[0]


@pytest.mark.parametrize(
    ("extra", "expected"),
    [
        (
            "classifier: {min_confidence: 1.5}\n",
            "profiles/x.yaml: classifier -> min_confidence: Input should be less than or equal to 1 (got 1.5)",
        ),
        (
            "classifier: {min_confidence: -0.1}\n",
            "profiles/x.yaml: classifier -> min_confidence: Input should be greater than or equal to 0 (got -0.1)",
        ),
        (
            "behaviour: {num_retries: 11}\n",
            "profiles/x.yaml: behaviour -> num_retries: Input should be less than or equal to 10 (got 11)",
        ),
        (
            "behaviour: {timeout_s: 0}\n",
            "profiles/x.yaml: behaviour -> timeout_s: Input should be greater than 0 (got 0)",
        ),
        (
            "costs: {warn_at: 1.2}\n",
            "profiles/x.yaml: costs -> warn_at: Input should be less than or equal to 1 (got 1.2)",
        ),
        (
            "costs: {daily_budget_usd: -5}\n",
            "profiles/x.yaml: costs -> daily_budget_usd: Input should be greater than or equal to 0 (got -5)",
        ),
    ],
)
def test_out_of_range_profile_numbers_name_the_key_and_the_bound(tmp_path: Path, extra: str, expected: str) -> None:
    assert profile_problems(write_profile(tmp_path, MINIMAL.format(name="x") + extra)) == [expected]


@pytest.mark.parametrize(
    ("setting", "expected"),
    [
        ("temperature: 3", "temperature: Input should be less than or equal to 2 (got 3)"),
        ("temperature: -0.5", "temperature: Input should be greater than or equal to 0 (got -0.5)"),
        ("max_tokens: 0", "max_tokens: Input should be greater than or equal to 1 (got 0)"),
    ],
)
def test_out_of_range_route_settings_name_the_route(tmp_path: Path, setting: str, expected: str) -> None:
    text = MINIMAL.format(name="x").replace("allow_cloud: false", f"allow_cloud: false, {setting}")
    assert profile_problems(write_profile(tmp_path, text)) == [f"profiles/x.yaml: routes -> biomedical -> {expected}"]


def test_boundary_values_are_accepted(tmp_path: Path) -> None:
    text = MINIMAL.format(name="x").replace("allow_cloud: false", "allow_cloud: false, temperature: 2, max_tokens: 1")
    profile = load_profile(write_profile(tmp_path, text + "classifier: {min_confidence: 1}\n"))
    assert profile.classifier.min_confidence == 1
    assert profile.routes["biomedical"].temperature == 2


def test_missing_default_route_is_reported(tmp_path: Path) -> None:
    text = MINIMAL.format(name="x").replace("default_route: {group: t4-generalist}\n", "")
    assert profile_problems(write_profile(tmp_path, text)) == [
        "profiles/x.yaml: default_route: required key is missing"
    ]


def test_empty_routes_are_rejected(tmp_path: Path) -> None:
    text = MINIMAL.format(name="x").split("routes:")[0] + "routes: {}\n"
    problems = profile_problems(write_profile(tmp_path, text))
    assert len(problems) == 1
    assert problems[0].startswith("profiles/x.yaml: routes: ")
    assert "at least 1 item" in problems[0]


def test_routes_left_blank_are_rejected_as_not_a_mapping(tmp_path: Path) -> None:
    text = MINIMAL.format(name="x").split("routes:")[0] + "routes:\n"
    assert profile_problems(write_profile(tmp_path, text)) == [
        "profiles/x.yaml: routes: Input should be a valid dictionary (got None)"
    ]


def test_unsupported_schema_version_is_rejected(tmp_path: Path) -> None:
    text = MINIMAL.format(name="x").replace("version: 1", "version: 2")
    assert profile_problems(write_profile(tmp_path, text)) == ["profiles/x.yaml: version: Input should be 1 (got 2)"]


def test_profile_name_must_match_its_file_name(tmp_path: Path) -> None:
    path = write_profile(tmp_path, MINIMAL.format(name="other"), name="x")
    assert profile_problems(path) == ["profiles/x.yaml: name: 'other' does not match the file name 'x'"]


def test_bad_task_name_is_reported_with_file_and_name(tmp_path: Path) -> None:
    text = MINIMAL.format(name="x") + "  Code-Gen: {group: t4-coder}\n"
    problems = profile_problems(write_profile(tmp_path, text))
    assert len(problems) == 1
    assert problems[0].startswith("profiles/x.yaml: ")
    assert "lower_snake_case" in problems[0]
    assert "'Code-Gen'" in problems[0]


def test_bad_task_name_is_located_under_routes(tmp_path: Path) -> None:
    text = MINIMAL.format(name="x") + "  Code-Gen: {group: t4-coder}\n"
    (problem,) = profile_problems(write_profile(tmp_path, text))
    assert problem.startswith("profiles/x.yaml: routes")


def test_bad_task_name_is_reported_alongside_other_route_errors(tmp_path: Path) -> None:
    text = MINIMAL.format(name="x").replace("allow_cloud: false", "alow_cloud: false")
    problems = profile_problems(write_profile(tmp_path, text + "  Code-Gen: {group: t4-coder}\n"))
    assert any("alow_cloud" in p for p in problems)
    assert any("Code-Gen" in p for p in problems)


def test_fallbacks_repeating_the_routes_own_group_are_rejected(tmp_path: Path) -> None:
    text = MINIMAL.format(name="x").replace(
        "allow_cloud: false", "allow_cloud: false, fallbacks: [t4-generalist, t4-bio]"
    )
    assert profile_problems(write_profile(tmp_path, text)) == [
        "profiles/x.yaml: routes -> biomedical: fallbacks list the route's own group 't4-bio'"
    ]


def test_default_route_fallbacks_repeating_its_group_are_rejected(tmp_path: Path) -> None:
    text = MINIMAL.format(name="x").replace(
        "{group: t4-generalist}", "{group: t4-generalist, fallbacks: [t4-generalist]}"
    )
    assert profile_problems(write_profile(tmp_path, text)) == [
        "profiles/x.yaml: default_route: fallbacks list the route's own group 't4-generalist'"
    ]


def test_fallbacks_listing_a_group_twice_are_rejected(tmp_path: Path) -> None:
    text = MINIMAL.format(name="x").replace(
        "allow_cloud: false", "allow_cloud: false, fallbacks: [t4-generalist, t4-coder, t4-generalist]"
    )
    assert profile_problems(write_profile(tmp_path, text)) == [
        "profiles/x.yaml: routes -> biomedical: fallbacks list a group twice"
    ]


def test_several_shape_errors_in_one_file_are_all_reported(tmp_path: Path) -> None:
    text = MINIMAL.format(name="x").replace("allow_cloud: false", "allow_cloud: maybe, temperature: 3")
    problems = profile_problems(write_profile(tmp_path, text + "classifier: {min_confidence: 1.5}\n"))
    assert len(problems) == 3
    assert {p.split(":")[1].strip() for p in problems} == {
        "routes -> biomedical -> allow_cloud",
        "routes -> biomedical -> temperature",
        "classifier -> min_confidence",
    }


# --- files that are not YAML mappings ----------------------------------------------------------
# These problems come from reading the file, before any key exists; they name the file by its path.


def read_problems(path: Path) -> list[Problem]:
    with pytest.raises(ConfigError) as excinfo:
        load_profile(path, display=f"profiles/{path.name}")
    problems = excinfo.value.problems
    assert all(p.source.endswith(f"profiles/{path.name}") and p.location == () for p in problems)
    return problems


def test_invalid_yaml_is_reported_with_line_and_column(tmp_path: Path) -> None:
    path = write_profile(tmp_path, "version: 1\nname: x\n  description: indented by mistake\n")
    (problem,) = read_problems(path)
    assert problem.message == "invalid YAML: line 3, column 14: mapping values are not allowed here"
    with pytest.raises(ConfigError) as excinfo:
        load_profile(path)
    assert isinstance(excinfo.value.__cause__, yaml.YAMLError)


def test_unclosed_bracket_is_reported_as_invalid_yaml_with_a_position(tmp_path: Path) -> None:
    (problem,) = read_problems(write_profile(tmp_path, "version: 1\nname: [x\n"))
    assert problem.message.startswith("invalid YAML: line 3, column 1: ")


@pytest.mark.parametrize(
    ("text", "found"),
    [("- version: 1\n- name: x\n", "list"), ("just some words\n", "str"), ("42\n", "int")],
)
def test_yaml_that_is_not_a_mapping_at_top_level_is_rejected(tmp_path: Path, text: str, found: str) -> None:
    (problem,) = read_problems(write_profile(tmp_path, text))
    assert problem.message == f"expected a mapping of keys at the top level, found {found}"


@pytest.mark.parametrize("text", ["", "# only a comment\n", "\n\n"])
def test_empty_file_reports_every_required_key_as_missing(tmp_path: Path, text: str) -> None:
    problems = profile_problems(write_profile(tmp_path, text))
    assert problems == [f"profiles/x.yaml: {key}: required key is missing" for key in REQUIRED_KEYS]


def test_non_utf8_file_is_reported_as_unreadable_not_crashing(tmp_path: Path) -> None:
    path = write_profile(tmp_path, MINIMAL.format(name="x").encode() + b"# caf\xe9\n")
    (problem,) = read_problems(path)
    assert problem.message.startswith("not UTF-8 text: ")
    assert "utf-8" in problem.message.lower()


def test_missing_profile_file_is_a_config_error(tmp_path: Path) -> None:
    (problem,) = read_problems(tmp_path / "profiles" / "absent.yaml")
    assert problem.message == "file not found"


@pytest.mark.parametrize(
    "content",
    [b"version: 1\nname: [x\n", b"- a\n", b"name: caf\xe9\n", None],
    ids=["invalid-yaml", "top-level-list", "not-utf8", "missing"],
)
def test_read_errors_name_the_file_as_shape_errors_do(tmp_path: Path, content: bytes | None) -> None:
    path = tmp_path / "profiles" / "x.yaml" if content is None else write_profile(tmp_path, content)
    (problem,) = profile_problems(path)
    assert problem.startswith("profiles/x.yaml: ")


# --- load_profiles: a folder ------------------------------------------------------------------


def test_load_profiles_returns_every_profile_by_file_name(tmp_path: Path) -> None:
    for name in ("alpha", "beta"):
        write_profile(tmp_path, MINIMAL.format(name=name), name=name)
    write(tmp_path / "profiles", "notes.txt", "not a profile")
    profiles = load_profiles(tmp_path / "profiles")
    assert sorted(profiles) == ["alpha", "beta"]
    assert all(isinstance(p, Profile) for p in profiles.values())


def test_several_bad_files_are_reported_in_one_config_error(tmp_path: Path) -> None:
    write_profile(tmp_path, MINIMAL.format(name="good"), name="good")
    write_profile(tmp_path, MINIMAL.format(name="typo").replace("allow_cloud", "alow_cloud"), name="typo")
    write_profile(tmp_path, MINIMAL.format(name="other"), name="renamed")
    write_profile(tmp_path, "version: 1\nname: [x\n", name="broken")
    write_profile(tmp_path, MINIMAL.format(name="ranges") + "classifier: {min_confidence: 1.5}\n", name="ranges")

    with pytest.raises(ConfigError) as excinfo:
        load_profiles(tmp_path / "profiles", display_root=tmp_path)
    problems = [str(p) for p in excinfo.value.problems]

    assert len(problems) == 4
    assert sorted(Path(p.source).name for p in excinfo.value.problems) == [
        "broken.yaml",
        "ranges.yaml",
        "renamed.yaml",
        "typo.yaml",
    ]
    assert any(
        p.endswith("broken.yaml: invalid YAML: line 3, column 1: expected ',' or ']', but got '<stream end>'")
        for p in problems
    )
    assert (
        "profiles/ranges.yaml: classifier -> min_confidence: Input should be less than or equal to 1 (got 1.5)"
        in problems
    )
    assert "profiles/renamed.yaml: name: 'other' does not match the file name 'renamed'" in problems
    assert any(p.startswith("profiles/typo.yaml: routes -> biomedical -> alow_cloud: unknown key") for p in problems)
    assert str(excinfo.value).startswith("4 configuration problems:\n")


def test_missing_profiles_folder_is_reported(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as excinfo:
        load_profiles(tmp_path / "nowhere")
    assert [p.message for p in excinfo.value.problems] == ["profiles folder not found"]


def test_folder_without_profiles_is_reported(tmp_path: Path) -> None:
    write(tmp_path / "profiles", "x.yml", MINIMAL.format(name="x"))
    with pytest.raises(ConfigError) as excinfo:
        load_profiles(tmp_path / "profiles")
    assert [p.message for p in excinfo.value.problems] == ["no *.yaml profiles found"]


def test_unknown_key_hint_points_at_a_readme_that_exists() -> None:
    assert (Path(__file__).resolve().parents[2] / "profiles" / "README.md").is_file()


# --- biorouter.yaml ----------------------------------------------------------------------------


def test_settings_resolve_paths_against_their_home(tmp_path: Path) -> None:
    write(tmp_path, "biorouter.yaml", "version: 1\nprofile: t4_hybrid\nutterances_dir: data/utterances\n")
    settings = load_settings(tmp_path)
    assert settings.home == tmp_path.resolve()
    assert settings.profile == "t4_hybrid"
    assert settings.profiles_path == tmp_path.resolve() / "profiles"
    assert settings.utterances_path == tmp_path.resolve() / "data" / "utterances"
    assert settings.litellm_config_path == tmp_path.resolve() / "litellm_config" / "config.yaml"
    assert settings.classifier.encoder.kind == "packaged-minilm"


def test_unknown_encoder_kind_is_rejected_naming_the_allowed_kinds(tmp_path: Path) -> None:
    write(tmp_path, "biorouter.yaml", "version: 1\nclassifier:\n  encoder: {kind: magic}\n")
    with pytest.raises(ConfigError) as excinfo:
        load_settings(tmp_path)
    (problem,) = [str(p) for p in excinfo.value.problems]
    assert problem.startswith("biorouter.yaml: classifier -> encoder: ")
    assert "'magic'" in problem
    for kind in ("packaged-minilm", "sentence-transformers", "openai-compatible"):
        assert kind in problem


@pytest.mark.parametrize(
    "encoder",
    [
        "{kind: packaged-minilm}",
        "{kind: sentence-transformers, model: /models/bge-m3}",
        "{kind: openai-compatible, model: BAAI/bge-m3, api_base: 'http://gpu:8004/v1'}",
    ],
)
def test_every_documented_encoder_kind_is_accepted(tmp_path: Path, encoder: str) -> None:
    write(tmp_path, "biorouter.yaml", f"version: 1\nclassifier:\n  encoder: {encoder}\n")
    kind = encoder.split("kind: ")[1].split(",")[0].rstrip("}")
    assert load_settings(tmp_path).classifier.encoder.kind == kind


def test_out_of_range_classifier_setting_is_rejected(tmp_path: Path) -> None:
    write(tmp_path, "biorouter.yaml", "version: 1\nclassifier: {top_k: 0}\n")
    with pytest.raises(ConfigError) as excinfo:
        load_settings(tmp_path)
    assert [str(p) for p in excinfo.value.problems] == [
        "biorouter.yaml: classifier -> top_k: Input should be greater than or equal to 1 (got 0)"
    ]


def test_typo_in_settings_does_not_point_at_the_profiles_readme(tmp_path: Path) -> None:
    write(tmp_path, "biorouter.yaml", "version: 1\nprofle: t4_hybrid\n")
    with pytest.raises(ConfigError) as excinfo:
        load_settings(tmp_path)
    (problem,) = [str(p) for p in excinfo.value.problems]
    assert problem.startswith("biorouter.yaml: profle: unknown key")
    assert "profiles/README.md" not in problem


def test_missing_encoder_field_is_located_by_yaml_keys_only(tmp_path: Path) -> None:
    write(tmp_path, "biorouter.yaml", "version: 1\nclassifier:\n  encoder: {kind: sentence-transformers}\n")
    with pytest.raises(ConfigError) as excinfo:
        load_settings(tmp_path)
    assert [str(p) for p in excinfo.value.problems] == [
        "biorouter.yaml: classifier -> encoder -> model: required key is missing"
    ]


def test_biorouter_profile_variable_overrides_the_settings_profile(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write(tmp_path, "biorouter.yaml", "version: 1\nprofile: t4_hybrid\n")
    settings = load_settings(tmp_path)
    assert settings.active_profile == "t4_hybrid"

    monkeypatch.setenv("BIOROUTER_PROFILE", "h100_local")
    assert settings.active_profile == "h100_local"
    assert load_settings(tmp_path).active_profile == "h100_local"
    assert settings.profile == "t4_hybrid"


def test_biorouter_litellm_config_variable_overrides_the_settings_path(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write(tmp_path, "biorouter.yaml", "version: 1\n")
    monkeypatch.setenv("BIOROUTER_LITELLM_CONFIG", "/etc/litellm/standins.yaml")
    assert load_settings(tmp_path).litellm_config_path == Path("/etc/litellm/standins.yaml")


def test_find_home_finds_the_settings_file_from_a_sub_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write(tmp_path, "biorouter.yaml", "version: 1\n")
    deep = tmp_path / "profiles" / "drafts"
    deep.mkdir(parents=True)
    monkeypatch.chdir(deep)
    assert find_home() == tmp_path.resolve()
    assert find_home(deep) == tmp_path.resolve()
    assert load_settings().home == tmp_path.resolve()


def test_find_home_prefers_the_nearest_settings_file(tmp_path: Path) -> None:
    write(tmp_path, "biorouter.yaml", "version: 1\n")
    inner = tmp_path / "nested"
    write(inner, "biorouter.yaml", "version: 1\n")
    assert find_home(inner / "missing-is-fine") == inner.resolve()


def test_find_home_honours_biorouter_home_over_the_current_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    here = tmp_path / "here"
    there = tmp_path / "there"
    write(here, "biorouter.yaml", "version: 1\n")
    write(there, "biorouter.yaml", "version: 1\nprofile: cloud_only\n")
    monkeypatch.chdir(here)
    monkeypatch.setenv("BIOROUTER_HOME", str(there))
    assert find_home() == there.resolve()
    assert load_settings().profile == "cloud_only"


def test_biorouter_home_without_a_settings_file_is_reported(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BIOROUTER_HOME", str(tmp_path))
    with pytest.raises(ConfigError) as excinfo:
        find_home()
    (problem,) = [str(p) for p in excinfo.value.problems]
    assert problem.startswith(str(tmp_path.resolve() / "biorouter.yaml"))
    assert "BIOROUTER_HOME" in problem


def test_find_home_without_any_settings_file_explains_what_to_do(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as excinfo:
        find_home(tmp_path)
    (problem,) = [str(p) for p in excinfo.value.problems]
    assert problem.startswith("biorouter.yaml: not found in ")
    assert "BIOROUTER_HOME" in problem
