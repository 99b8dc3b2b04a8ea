"""``validate_all``: the shipped tree is clean, and each kind of mistake reads as a precise, friendly line."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest
import yaml

from biorouter.classify.utterances import MIN_UTTERANCES, utterance_problems
from biorouter.errors import ConfigError, Problem
from biorouter.routing.catalogue import Catalogue, load_litellm_config
from biorouter.routing.profiles import load_profile
from biorouter.serving.validate import ValidationReport, check_profile, validate_all
from biorouter.settings import Settings, load_settings

REPO = Path(__file__).resolve().parents[2]
SHIPPED_PROFILES = sorted((REPO / "profiles").glob("*.yaml"))
SHIPPED_UTTERANCES = sorted((REPO / "utterances").glob("*.txt"))


def _shipped_group_names() -> list[str]:
    # read independently of biorouter's own parser, so the expected message is not computed by the code under test
    config = yaml.safe_load((REPO / "litellm_config" / "config.yaml").read_text(encoding="utf-8"))
    models = [entry for entry in config["model_list"] if not entry["litellm_params"]["model"].startswith("biorouter/")]
    return sorted({entry["model_name"] for entry in models})  # biorouter/ models are its own pseudo groups


KNOWN = ", ".join(_shipped_group_names())


API_BASES = sorted(
    set(re.findall(r"os\.environ/(VLLM_\w+_API_BASE)", (REPO / "litellm_config" / "config.yaml").read_text()))
)


@pytest.fixture(autouse=True)
def _endpoints_configured(monkeypatch: pytest.MonkeyPatch) -> None:
    """A machine where every local server's address is set (tests of an unset one delete theirs)."""
    for index, name in enumerate(API_BASES):
        monkeypatch.setenv(name, f"http://127.0.0.1:{8000 + index}/v1")


@pytest.fixture
def home(tmp_path: Path) -> Path:
    """A private copy of the shipped configuration tree."""
    shutil.copy2(REPO / "biorouter.yaml", tmp_path / "biorouter.yaml")
    for folder in ("profiles", "utterances", "litellm_config"):
        shutil.copytree(REPO / folder, tmp_path / folder)
    return tmp_path


def edit(path: Path, old: str, new: str) -> None:
    """Replace the one occurrence of ``old``: a test that edits nothing must not pass by accident."""
    text = path.read_text(encoding="utf-8")
    assert text.count(old) == 1, f"{old!r} occurs {text.count(old)} times in {path}"
    path.write_text(text.replace(old, new), encoding="utf-8")


def edit_pattern(path: Path, pattern: str, new: str) -> None:
    text, count = re.subn(pattern, new, path.read_text(encoding="utf-8"))
    assert count == 1, f"{pattern!r} matches {count} times in {path}"
    path.write_text(text, encoding="utf-8")


def append(path: Path, *lines: str) -> int:
    """Append lines; returns the line number of the first one."""
    text = path.read_text(encoding="utf-8")
    if not text.endswith("\n"):
        text += "\n"
    first = len(text.splitlines()) + 1
    path.write_text(text + "".join(f"{line}\n" for line in lines), encoding="utf-8")
    return first


def run(home: Path) -> ValidationReport:
    return validate_all(load_settings(home))


def rendered(problems: list[Problem]) -> list[str]:
    return [str(p) for p in problems]


def utterance_lines(path: Path) -> list[tuple[int, str]]:
    lines = path.read_text(encoding="utf-8").splitlines()
    return [(n, s.strip()) for n, s in enumerate(lines, start=1) if s.strip() and not s.strip().startswith("#")]


# --- the shipped tree ---------------------------------------------------------------------------


def test_shipped_tree_has_no_errors_and_no_warnings(home: Path) -> None:
    report = run(home)
    assert rendered(list(report.problems)) == []
    assert report.ok
    assert report.profiles == tuple(p.stem for p in SHIPPED_PROFILES)
    assert sorted(report.tasks) == [p.stem for p in SHIPPED_UTTERANCES]
    assert sorted(report.groups) == _shipped_group_names()


def test_shipped_settings_select_the_profile_by_hardware() -> None:
    settings = load_settings(REPO)
    assert settings.profile == "auto"


def test_a_profile_may_not_be_named_auto(tmp_path: Path) -> None:
    source = (REPO / "profiles" / "development.yaml").read_text().replace("name: development", "name: auto")
    (tmp_path / "auto.yaml").write_text(source)
    with pytest.raises(ConfigError, match="'auto' is reserved"):
        load_profile(tmp_path / "auto.yaml")


@pytest.mark.parametrize("path", SHIPPED_PROFILES, ids=lambda p: p.stem)
def test_every_shipped_profile_validates(path: Path) -> None:
    catalogue = Catalogue.from_deployments(load_litellm_config(REPO / "litellm_config" / "config.yaml").model_list)
    tasks = {p.stem: len(utterance_lines(p)) for p in SHIPPED_UTTERANCES}
    profile = load_profile(path)
    assert profile.name == path.stem
    assert rendered(check_profile(f"profiles/{path.name}", profile, catalogue, tasks)) == []
    assert profile.groups() <= set(catalogue.groups)


@pytest.mark.parametrize("path", SHIPPED_UTTERANCES, ids=lambda p: p.stem)
def test_every_shipped_utterance_file_has_enough_utterances(path: Path) -> None:
    assert len(utterance_lines(path)) >= MIN_UTTERANCES


def test_shipped_utterances_have_no_duplicates_within_or_across_files() -> None:
    seen: dict[str, str] = {}
    duplicates = []
    for path in SHIPPED_UTTERANCES:
        for number, line in utterance_lines(path):
            key = " ".join(line.lower().split())
            where = f"{path.name}:{number}"
            if key in seen:
                duplicates.append(f"{where} repeats {seen[key]}")
            seen.setdefault(key, where)
    assert duplicates == []
    assert rendered(utterance_problems(REPO / "utterances", display_root=REPO)[1]) == []


def test_every_shipped_profile_routes_every_shipped_task() -> None:
    tasks = {p.stem for p in SHIPPED_UTTERANCES}
    for path in SHIPPED_PROFILES:
        assert set(load_profile(path).routes) == tasks, path.name


# --- references between files --------------------------------------------------------------


def test_unknown_group_names_the_route_and_the_known_groups(home: Path) -> None:
    edit(home / "profiles" / "t4_hybrid.yaml", "    group: t4-bio\n", "    group: t4-bioo\n")
    report = run(home)
    assert not report.ok
    assert rendered(report.errors) == [
        f"profiles/t4_hybrid.yaml: routes -> biomedical -> group: unknown group 't4-bioo' (known: {KNOWN})"
    ]


def test_unknown_fallback_names_its_index(home: Path) -> None:
    edit(
        home / "profiles" / "t4_hybrid.yaml",
        "fallbacks: [deepseek-v3, claude-sonnet]",
        "fallbacks: [deepseek-v3, claude-sonet]",
    )
    assert rendered(run(home).errors) == [
        "profiles/t4_hybrid.yaml: routes -> code_generation -> fallbacks -> 1: "
        f"unknown group 'claude-sonet' (known: {KNOWN})"
    ]


def test_unknown_default_route_group_is_reported(home: Path) -> None:
    edit(
        home / "profiles" / "development.yaml",
        "default_route:\n  group: t4-generalist",
        "default_route:\n  group: t4-general",
    )
    assert rendered(run(home).errors) == [
        f"profiles/development.yaml: default_route -> group: unknown group 't4-general' (known: {KNOWN})"
    ]


def test_unknown_healthy_group_is_reported(home: Path) -> None:
    edit(home / "profiles" / "h100_local.yaml", "healthy_groups: [h100-large]", "healthy_groups: [h100-big]")
    assert rendered(run(home).errors) == [
        f"profiles/h100_local.yaml: hardware -> healthy_groups -> 0: unknown group 'h100-big' (known: {KNOWN})"
    ]


def test_local_only_route_with_a_cloud_fallback_is_flagged(home: Path) -> None:
    edit(
        home / "profiles" / "t4_hybrid.yaml",
        "    allow_cloud: false\n    fallbacks: [t4-generalist]\n    tiers:",
        "    allow_cloud: false\n    fallbacks: [t4-generalist, deepseek-v3]\n    tiers:",
    )
    assert rendered(run(home).errors) == [
        "profiles/t4_hybrid.yaml: routes -> biomedical -> fallbacks -> 1: 'deepseek-v3' is a cloud group but the route "
        "sets allow_cloud: false (it would be skipped at run time)"
    ]


def test_local_only_route_with_a_cloud_primary_group_is_flagged(home: Path) -> None:
    edit(
        home / "profiles" / "h100_local.yaml",
        "biomedical: {group: h100-large, allow_cloud: false}",
        "biomedical: {group: deepseek-v3, allow_cloud: false, fallbacks: [h100-large]}",
    )
    assert rendered(run(home).errors) == [
        "profiles/h100_local.yaml: routes -> biomedical -> group: 'deepseek-v3' is a cloud group but the route "
        "sets allow_cloud: false"
    ]


def test_route_for_a_task_without_utterances_is_reported(home: Path) -> None:
    edit(
        home / "profiles" / "t4_hybrid.yaml",
        "routes:\n",
        "routes:\n  protein_folding:\n    group: t4-bio\n",
    )
    assert rendered(run(home).errors) == [
        "profiles/t4_hybrid.yaml: routes -> protein_folding: no utterances/protein_folding.txt: "
        "the classifier cannot recognise this task"
    ]


def test_removed_utterance_file_is_reported_for_every_profile_that_routes_the_task(home: Path) -> None:
    (home / "utterances" / "safety.txt").unlink()
    errors = rendered(run(home).errors)
    assert errors == [
        f"profiles/{p.name}: routes -> safety: no utterances/safety.txt: the classifier cannot recognise this task"
        for p in SHIPPED_PROFILES
    ]


def test_task_with_utterances_but_no_route_is_a_warning(home: Path) -> None:
    lines = [f"fold the protein sequence number {i} and predict its structure" for i in range(MIN_UTTERANCES)]
    (home / "utterances" / "protein_folding.txt").write_text("\n".join(lines) + "\n", encoding="utf-8")
    report = run(home)
    assert report.ok
    assert rendered(report.warnings) == [
        f"profiles/{p.name}: routes: no route for task 'protein_folding': its requests take the default route (warning)"
        for p in SHIPPED_PROFILES
    ]
    assert report.tasks["protein_folding"] == MIN_UTTERANCES


# --- utterances ---------------------------------------------------------------------------------


def keep_first_utterances(path: Path, count: int) -> None:
    kept = [line for _, line in utterance_lines(path)[:count]]
    path.write_text("# trimmed for a test\n" + "\n".join(kept) + "\n", encoding="utf-8")


def test_utterance_file_with_too_few_lines_is_reported(home: Path) -> None:
    keep_first_utterances(home / "utterances" / "embeddings.txt", MIN_UTTERANCES - 1)
    report = run(home)
    assert rendered(report.errors) == [
        f"utterances/embeddings.txt: has {MIN_UTTERANCES - 1} utterances; a task needs at least {MIN_UTTERANCES}"
    ]
    assert report.tasks["embeddings"] == MIN_UTTERANCES - 1


def test_utterance_file_with_exactly_the_minimum_is_accepted(home: Path) -> None:
    keep_first_utterances(home / "utterances" / "embeddings.txt", MIN_UTTERANCES)
    assert rendered(run(home).errors) == []


def test_duplicate_utterance_across_files_names_both_files_and_lines(home: Path) -> None:
    number, text = utterance_lines(home / "utterances" / "biomedical.txt")[0]
    line = append(home / "utterances" / "safety.txt", text)
    assert rendered(run(home).errors) == [
        f"utterances/safety.txt: line {line}: duplicate of utterances/biomedical.txt line {number}"
    ]


def test_duplicates_ignore_case_and_spacing(home: Path) -> None:
    number, text = utterance_lines(home / "utterances" / "code_generation.txt")[2]
    variant = "  " + "   ".join(text.upper().split()) + "  "
    line = append(home / "utterances" / "code_generation.txt", variant)
    assert rendered(run(home).errors) == [
        f"utterances/code_generation.txt: line {line}: duplicate of utterances/code_generation.txt line {number}"
    ]


def test_utterance_file_with_a_bad_task_name_is_reported(home: Path) -> None:
    shutil.copy2(home / "utterances" / "safety.txt", home / "utterances" / "Protein-Folding.txt")
    assert rendered(run(home).errors) == [
        "utterances/Protein-Folding.txt: file name must be a lower_snake_case task name, not 'Protein-Folding'"
    ]


def test_non_utf8_utterance_file_is_reported(home: Path) -> None:
    path = home / "utterances" / "safety.txt"
    path.write_bytes(path.read_bytes() + b"caf\xe9 au lait\n")
    errors = rendered(run(home).errors)
    assert errors[0].startswith("utterances/safety.txt: not UTF-8 text: ")


# --- litellm_config -----------------------------------------------------------------------------


def test_deployment_without_locality_is_a_warning_that_it_counts_as_cloud(home: Path) -> None:
    edit(
        home / "litellm_config" / "config.yaml",
        "model_info: {locality: cloud, mode: chat, max_input_tokens: 128000}",
        "model_info: {mode: chat, max_input_tokens: 128000}",
    )
    report = run(home)
    assert report.ok
    assert rendered(report.warnings) == [
        "litellm_config/config.yaml: model_list -> 10 -> model_info -> locality: "
        "not declared for 'gpt-4o': it counts as cloud (warning)"
    ]
    assert report.groups["gpt-4o"] == "cloud"


def test_local_group_without_locality_makes_its_local_only_routes_errors(home: Path) -> None:
    edit(
        home / "litellm_config" / "config.yaml",
        "model_info: {locality: local, mode: chat, max_input_tokens: 2048,",
        "model_info: {mode: chat, max_input_tokens: 2048,",
    )
    report = run(home)
    assert report.groups["t4-bio"] == "cloud"
    assert rendered(report.warnings) == [
        "litellm_config/config.yaml: model_list -> 4 -> model_info -> locality: "
        "not declared for 't4-bio': it counts as cloud (warning)"
    ]
    cloud_bio = "routes -> biomedical -> group: 't4-bio' is a cloud group but the route sets allow_cloud: false"
    cloud_tier = (
        "routes -> biomedical -> tiers -> high -> fallbacks -> 0: 't4-bio' is a cloud group but the route sets "
        "allow_cloud: false (it would be skipped at run time)"
    )
    assert rendered(report.errors) == [
        f"profiles/{name}.yaml: {problem}"
        for name in ("development", "l4_t4_combined", "t4_hybrid")
        for problem in (cloud_bio, cloud_tier)  # the high tier of biomedical falls back to t4-bio
    ]


def test_invalid_litellm_config_is_reported_and_profiles_are_still_shape_checked(home: Path) -> None:
    edit(home / "litellm_config" / "config.yaml", "locality: cloud, mode: chat, max_input_tokens: 128000", "mode: [")
    edit(home / "profiles" / "cloud_only.yaml", "priority: 10", "priorty: 10")
    errors = rendered(run(home).errors)
    assert len(errors) == 2
    assert "litellm_config/config.yaml: invalid YAML: line " in errors[0]
    assert errors[1].startswith("profiles/cloud_only.yaml: priorty: unknown key")


# --- settings and several files at once -----------------------------------------------------


def test_active_profile_without_a_file_is_reported(home: Path) -> None:
    edit(home / "biorouter.yaml", "profile: auto", "profile: gpu_cluster")
    assert rendered(run(home).errors) == [
        "biorouter.yaml: profile: active profile 'gpu_cluster' has no file profiles/gpu_cluster.yaml "
        "(or use 'auto' to select by hardware)"
    ]


def test_active_profile_from_the_environment_is_checked_too(home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BIOROUTER_PROFILE", "laptop")
    assert rendered(run(home).errors) == [
        "biorouter.yaml: profile: active profile 'laptop' has no file profiles/laptop.yaml "
        "(or use 'auto' to select by hardware)"
    ]


def test_missing_profiles_folder_is_reported(home: Path) -> None:
    shutil.rmtree(home / "profiles")
    assert rendered(run(home).errors) == ["profiles: profiles folder not found"]


def test_validate_all_never_raises_for_a_broken_settings_path(home: Path) -> None:
    settings = load_settings(home)
    elsewhere = Settings(litellm_config=Path("nowhere/config.yaml"), home=settings.home)
    errors = validate_all(elsewhere).errors
    assert [p.message for p in errors] == ["file not found"]
    assert errors[0].source.endswith("nowhere/config.yaml")


def test_every_problem_in_every_file_is_reported_in_one_run(home: Path) -> None:
    edit(home / "profiles" / "t4_hybrid.yaml", "    group: t4-bio\n", "    group: t4-bioo\n")
    edit(
        home / "profiles" / "development.yaml",
        "    group: t4-bio\n    allow_cloud: false",
        "    group: t4-bio\n    alow_cloud: false",
    )
    edit_pattern(home / "profiles" / "cloud_only.yaml", r"min_confidence: [0-9.]+", "min_confidence: 1.5")
    keep_first_utterances(home / "utterances" / "orchestration.txt", 3)
    number, text = utterance_lines(home / "utterances" / "data_analysis.txt")[0]
    line = append(home / "utterances" / "math_statistics.txt", text)
    edit(
        home / "litellm_config" / "config.yaml",
        "model_info: {locality: cloud, mode: chat, max_input_tokens: 65536}",
        "model_info: {mode: chat, max_input_tokens: 65536}",
    )
    edit(home / "biorouter.yaml", "profile: auto", "profile: gpu_cluster")

    report = run(home)

    assert sorted(rendered(report.errors)) == sorted(
        [
            "biorouter.yaml: profile: active profile 'gpu_cluster' has no file profiles/gpu_cluster.yaml "
            "(or use 'auto' to select by hardware)",
            "profiles/cloud_only.yaml: classifier -> min_confidence: Input should be less than or equal to 1 (got 1.5)",
            "profiles/development.yaml: routes -> biomedical -> alow_cloud: unknown key (check the spelling; "
            "profiles/README.md lists every key)",
            f"profiles/t4_hybrid.yaml: routes -> biomedical -> group: unknown group 't4-bioo' (known: {KNOWN})",
            f"utterances/math_statistics.txt: line {line}: duplicate of utterances/data_analysis.txt line {number}",
            "utterances/orchestration.txt: has 3 utterances; a task needs at least 10",
        ]
    )
    assert rendered(report.warnings) == [
        "litellm_config/config.yaml: model_list -> 8 -> model_info -> locality: "
        "not declared for 'deepseek-v3': it counts as cloud (warning)"
    ]
    # the valid profiles were still checked and listed
    assert report.profiles == ("h100_local", "l4_t4_combined", "t4_hybrid")


# --- addresses of local servers (issue 20) -------------------------------------------------------


def test_local_groups_whose_address_variable_is_unset_are_named(home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("VLLM_CODER_API_BASE")
    monkeypatch.delenv("VLLM_BIO_API_BASE")
    report = run(home)
    assert report.ok
    assert rendered(report.warnings) == [
        "litellm_config/config.yaml: model_list -> 1 -> litellm_params -> api_base: group 't4-coder' has no address: "
        "VLLM_CODER_API_BASE is not set, so its requests fail inside LiteLLM (see 'biorouter detect') (warning)",
        "litellm_config/config.yaml: model_list -> 4 -> litellm_params -> api_base: group 't4-bio' has no address: "
        "VLLM_BIO_API_BASE is not set, so its requests fail inside LiteLLM (see 'biorouter detect') (warning)",
    ]


# --- a stand-in config (serve --dev) exported as BIOROUTER_LITELLM_CONFIG (issue 20) -------------------------


def _standin_config(home: Path) -> Path:
    from biorouter.testing.devstack import standin_config

    groups = load_profile(home / "profiles" / "development.yaml").groups()
    base = yaml.safe_load((home / "litellm_config" / "config.yaml").read_text())
    path = home / "standins.yaml"
    path.write_text(yaml.safe_dump(standin_config(base, {g: f"http://127.0.0.1:9/{g}/v1" for g in groups})))
    return path


def test_a_stand_in_config_notes_the_profiles_it_cannot_serve_instead_of_failing(
    home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The README's Python tip exports the demo's config; validate then reported 41 unknown-group errors."""
    monkeypatch.setenv("BIOROUTER_LITELLM_CONFIG", str(_standin_config(home)))
    report = run(home)
    assert rendered(report.errors) == []
    notes = [str(w) for w in report.warnings if "stand-in" in w.message]
    assert [n.split(":")[0] for n in notes] == [
        "profiles/cloud_only.yaml",
        "profiles/h100_local.yaml",
        "profiles/l4_t4_combined.yaml",
        "profiles/t4_hybrid.yaml",
    ]
    assert "profiles/t4_hybrid.yaml: this stand-in config lacks claude-sonnet" in notes[-1]
    assert "biorouter serve --dev --profile t4_hybrid" in notes[-1]


def test_a_stand_in_config_still_fails_the_active_profile_it_cannot_serve(
    home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("BIOROUTER_LITELLM_CONFIG", str(_standin_config(home)))
    monkeypatch.setenv("BIOROUTER_PROFILE", "t4_hybrid")
    report = run(home)
    assert report.errors
    assert all(p.source == "profiles/t4_hybrid.yaml" for p in report.errors)
    assert any("unknown group 'claude-sonnet'" in p.message for p in report.errors)


def test_validate_explains_each_profiles_detector_and_warns_when_it_is_weakened(home: Path) -> None:
    report = run(home)
    assert "person names" in report.governance["t4_hybrid"]
    assert report.governance["t4_hybrid"].endswith("(the default strictness)")
    edit(
        home / "profiles" / "t4_hybrid.yaml",
        "  disabled_rules: []\n",
        "  disabled_rules: [person:name, 'record:clinical_note']\n  record_cues: 5\n",
    )
    report = run(home)
    assert report.ok
    warnings = [str(p) for p in report.warnings if p.source == "profiles/t4_hybrid.yaml"]
    assert any("detector weakened: person names" in w for w in warnings)
    assert any("detector weakened: clinical notes without a name" in w for w in warnings)
    assert any("detector weakened: a note needs 5 kinds" in w for w in warnings)
    assert "weakened" in report.governance["t4_hybrid"]


def test_folders_configured_outside_the_home_load_and_are_named_as_configured(
    home: Path, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """``utterances_dir: /shared/utterances``: a shared folder outside the home is a valid layout, and its
    problems name the file by its absolute path (it crashed the classifier's load before)."""
    shared = tmp_path_factory.mktemp("elsewhere")
    shutil.move(home / "utterances", shared / "utterances")
    shutil.move(home / "profiles", shared / "profiles")
    edit(home / "biorouter.yaml", "profiles_dir: profiles", f"profiles_dir: {shared / 'profiles'}")
    edit(home / "biorouter.yaml", "utterances_dir: utterances", f"utterances_dir: {shared / 'utterances'}")
    settings = load_settings(home)
    report = validate_all(settings)
    assert report.errors == []
    append(shared / "utterances" / "code_generation.txt", "write a snakemake rule for fastp")
    append(shared / "utterances" / "code_generation.txt", "write a snakemake rule for fastp")
    _, problems = utterance_problems(settings.utterances_path, display_root=settings.home)
    where = str(shared / "utterances" / "code_generation.txt")
    assert [p.source for p in problems] == [where]
    assert problems[0].message.startswith(f"duplicate of {where} line ")
