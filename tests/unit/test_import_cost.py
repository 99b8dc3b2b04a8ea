"""Importing ``biorouter`` is cheap: no LiteLLM, no torch, no encoder; and ``__all__`` keeps its promises."""

from __future__ import annotations

import json
import subprocess
import sys
from importlib.metadata import version
from pathlib import Path

import pytest

import biorouter

HEAVY = ("litellm", "torch", "sentence_transformers", "semantic_router", "spacy")  # spacy: the NER model loads lazily


def fresh_python(code: str, cwd: Path) -> object:
    """Run ``code`` in a new interpreter and return the JSON it prints last."""
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60, cwd=cwd
    )
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_import_biorouter_loads_no_heavy_dependency(tmp_path: Path) -> None:
    loaded = fresh_python(
        f"import sys, json, biorouter; print(json.dumps([m for m in {HEAVY!r} if m in sys.modules]))", tmp_path
    )
    assert loaded == []


def test_the_check_would_see_a_heavy_module_if_one_were_loaded(tmp_path: Path) -> None:
    # guards the test above against passing vacuously (a wrong module name, a broken subprocess)
    loaded = fresh_python(
        f"import sys, json, biorouter, pydantic; print(json.dumps([m for m in {(*HEAVY, 'pydantic')!r} "
        "if m in sys.modules]))",
        tmp_path,
    )
    assert loaded == ["pydantic"]


def test_every_name_in_all_is_an_attribute_and_none_loads_a_heavy_dependency(tmp_path: Path) -> None:
    code = (
        "import sys, json, biorouter\n"
        "missing = [n for n in biorouter.__all__ if not hasattr(biorouter, n)]\n"
        f"heavy = [m for m in {HEAVY!r} if m in sys.modules]\n"
        "print(json.dumps({'missing': missing, 'heavy': heavy}))"
    )
    assert fresh_python(code, tmp_path) == {"missing": [], "heavy": []}


@pytest.mark.parametrize("name", biorouter.__all__)
def test_public_name_resolves_to_its_defining_object(name: str) -> None:
    value = getattr(biorouter, name)
    assert value is not None
    if name != "__version__":
        assert getattr(value, "__name__", name) == name


def test_lazy_names_are_the_same_objects_as_in_their_modules() -> None:
    from biorouter.errors import BiorouterError, ConfigError
    from biorouter.routing.decision import Decision
    from biorouter.routing.policy import decide

    assert biorouter.decide is decide
    assert biorouter.Decision is Decision
    assert biorouter.ConfigError is ConfigError
    assert issubclass(biorouter.ConfigError, biorouter.BiorouterError)
    assert biorouter.BiorouterError is BiorouterError


def test_unknown_attribute_raises_attribute_error() -> None:
    with pytest.raises(AttributeError, match="has no attribute 'acomplete'"):
        biorouter.acomplete  # type: ignore[attr-defined]  # noqa: B018


def test_version_matches_the_installed_distribution() -> None:
    assert biorouter.__version__ == version("biorouter")


def test_building_a_detector_does_not_load_the_ner_model(tmp_path: Path) -> None:
    code = (
        "import sys, json\n"
        "from biorouter.routing.profiles import Governance\n"
        "Governance().detector().scan(['write a python function that reverses a list'])\n"
        "print(json.dumps([m for m in ('spacy', 'thinc') if m in sys.modules]))"
    )
    assert fresh_python(code, tmp_path) == []
