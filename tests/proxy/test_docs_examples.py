"""README.md and docs/*.md, run: every example marked ``<!-- docs-test: run -->`` against the session's stand-ins.

Shell examples run in bash (``-e -o pipefail``, so a ``grep`` that finds nothing fails) and Python
examples in a fresh interpreter, both from the checkout with the session's proxy in place of
``make run``'s (its URL and master key substituted; ``BIOROUTER_LITELLM_CONFIG`` pointing at the
stand-ins, as the README's Python tip says). An example must exit 0 and print no error.
"""

from __future__ import annotations

import os
import subprocess
import sys
from typing import Any

import pytest

from ..docs_examples import ROOT, Example, examples, for_stack

RUNNABLE = [e for e in examples() if e.marker == "run"]


@pytest.mark.parametrize("example", RUNNABLE, ids=lambda e: e.where)
def test_the_documented_example_runs(example: Example, dev_stack: Any, clean_standins: Any) -> None:
    code = for_stack(example.code, dev_stack.proxy.url, dev_stack.proxy.master_key)
    env = {
        **os.environ,
        "PATH": f"{ROOT / '.venv' / 'bin'}:{os.environ.get('PATH', '')}",
        "BIOROUTER_HOME": str(ROOT),
        "BIOROUTER_PROFILE": "development",
        "BIOROUTER_LITELLM_CONFIG": str(dev_stack.config_path),
        "LITELLM_MASTER_KEY": dev_stack.proxy.master_key,
        "BIOROUTER_PORT": str(dev_stack.proxy.port),
    }
    command = ["bash", "-e", "-o", "pipefail", "-c", code] if example.language == "sh" else [sys.executable, "-c", code]
    result = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=180)
    output = result.stdout + result.stderr
    assert result.returncode == 0, f"{example.where} exited {result.returncode}:\n{output[-3000:]}"
    assert "Traceback" not in output, f"{example.where}:\n{output[-3000:]}"
    assert '"error"' not in result.stdout, f"{example.where} got an error answer:\n{result.stdout[-3000:]}"
