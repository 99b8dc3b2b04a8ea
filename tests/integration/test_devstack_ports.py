"""``serve --dev`` and the proxy runner with their port taken: refused up front, never a stranger's proxy.

An imposter answering LiteLLM's liveness probe stands in for a proxy another ``serve --dev`` left
running, as in issue 20 (``make run`` twice).
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from biorouter.testing import devstack
from biorouter.testing.devstack import ProxyProcess, ProxyStartError

from ..conftest import ROOT


class _Alive(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        body = b'"I\'m alive!"'
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def imposter() -> Iterator[int]:
    """Another proxy on 127.0.0.1: a server answering every GET (the liveness probe included) with 200."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Alive)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield int(server.server_address[1])
    server.shutdown()
    server.server_close()


def test_serve_dev_refuses_a_busy_port_at_once_and_names_it(imposter: int, tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k != "LITELLM_MASTER_KEY"}
    started = time.monotonic()
    result = subprocess.run(
        [sys.executable, "-m", "biorouter", "serve", "--dev", "--port", str(imposter), "--run-dir", str(tmp_path)],
        cwd=ROOT,
        env={**env, "BIOROUTER_HOME": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 1
    assert "is serving" not in result.stdout
    assert "master key" not in result.stdout
    assert f"port {imposter}" in result.stderr
    assert "already in use" in result.stderr
    assert not (tmp_path / "standins").exists(), "no stand-in is started for a stack that cannot serve"
    assert time.monotonic() - started < 30


def test_proxy_runner_refuses_a_busy_port_before_spawning(imposter: int, tmp_path: Path) -> None:
    proxy = ProxyProcess(tmp_path / "unused.yaml", port=imposter)
    with pytest.raises(ProxyStartError, match=f"127.0.0.1:{imposter} is already in use"):
        proxy.start(timeout=60)
    assert not proxy.is_running()


def test_readiness_accepts_only_its_own_proxy_and_reports_why_it_died(
    imposter: int, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The port check is skipped (a race lost): the imposter answers the probe, yet the wait does not
    take it for our proxy, and our proxy's death is reported with the port and its log line."""
    monkeypatch.setattr(devstack, "ensure_port_free", lambda host, port: None)
    config = tmp_path / "config.yaml"
    config.write_text("model_list: []\n", encoding="utf-8")
    proxy = ProxyProcess(config, port=imposter, log_path=tmp_path / "proxy.log")
    with pytest.raises(ProxyStartError) as caught:
        proxy.start(timeout=90)
    message = str(caught.value)
    assert f"port {imposter}" in message
    assert "address already in use" in message.lower()


def test_serve_dev_serves_then_a_second_one_on_its_port_is_refused_and_sigterm_stops_the_first(
    tmp_path: Path,
) -> None:
    """``make run`` twice (issue 20): the second names the busy port and exits; the first keeps serving."""
    import signal

    import httpx

    from biorouter.testing.standin import free_port

    port = free_port()
    env = {**{k: v for k, v in os.environ.items() if k != "LITELLM_MASTER_KEY"}, "BIOROUTER_HOME": str(ROOT)}
    command = [sys.executable, "-m", "biorouter", "serve", "--dev", "--port", str(port)]
    first = subprocess.Popen(
        [*command, "--run-dir", str(tmp_path / "first")],
        cwd=ROOT,
        env={**env, "LITELLM_MASTER_KEY": "sk-first"},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        assert first.stdout is not None
        banner = ""
        deadline = time.monotonic() + 240
        while "biorouter is serving" not in banner and time.monotonic() < deadline and first.poll() is None:
            banner += first.stdout.readline()
        assert f"biorouter is serving on http://127.0.0.1:{port}" in banner, banner
        second = subprocess.run(
            [*command, "--run-dir", str(tmp_path / "second")], cwd=ROOT, env=env, capture_output=True, text=True
        )
        assert second.returncode == 1
        assert f"port {port}" in second.stderr
        assert "is serving" not in second.stdout
        body = {"model": "t4-coder", "messages": [{"role": "user", "content": "hi"}]}
        headers = {"Authorization": "Bearer sk-first"}
        answer = httpx.post(f"http://127.0.0.1:{port}/v1/chat/completions", json=body, headers=headers, timeout=60)
        assert answer.status_code == 200
    finally:
        first.send_signal(signal.SIGTERM)
        out, _ = first.communicate(timeout=60)
    assert first.returncode == 0
    assert "stopped" in out
