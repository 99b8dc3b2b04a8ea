"""Fixtures shared by the tests that talk to the session's proxy through the OpenAI client."""

from __future__ import annotations

from collections.abc import Iterator

import openai
import pytest

from biorouter.testing.redis import RedisServer


@pytest.fixture(scope="module")
def client(dev_stack) -> openai.OpenAI:  # type: ignore[no-untyped-def]
    return openai.OpenAI(base_url=dev_stack.proxy.url + "/v1", api_key=dev_stack.proxy.master_key, max_retries=0)


def ask(client: openai.OpenAI, text: str, model: str = "auto") -> tuple[str, dict[str, str]]:
    """One chat turn through the proxy: the answer's text and the response headers."""
    raw = client.chat.completions.with_raw_response.create(
        model=model, messages=[{"role": "user", "content": text}], timeout=120
    )
    return str(raw.parse().choices[0].message.content), dict(raw.headers)


@pytest.fixture(scope="module")
def redis(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    """A real redis-server of the test module's own (tests needing it skip when it is not installed)."""
    folder = tmp_path_factory.mktemp("redis")
    server = RedisServer(data_dir=folder / "data", log_path=folder / "redis.log")
    server.start()
    yield server
    server.stop()
