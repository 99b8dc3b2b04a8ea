"""The embeddings-endpoint encoder's wire format, against a real HTTP server on loopback.

The server is a few lines of ``http.server`` in a thread, so each test decides how it answers
(base64 float32, plain floats, a refusal of ``encoding_format``, a broken body) and reads back
exactly what the encoder sent.
"""

from __future__ import annotations

import base64
import json
import struct
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import numpy as np
import pytest

from biorouter.classify.encoders import EndpointEncoder
from biorouter.errors import ClassifierError
from biorouter.settings import OpenAICompatibleEndpoint

VECTORS = {"call variants": [3.0, 4.0, 0.0], "plot a volcano": [0.0, 0.0, 2.0]}


@dataclass
class Server:
    port: int
    knows_base64: bool = True
    ignores_base64: bool = False  # answers floats whatever was asked (an older server)
    broken_base64: bool = False
    bodies: list[dict[str, Any]] = field(default_factory=list)


def _handler(server: Server) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: object) -> None:  # quiet test output
            pass

        def do_POST(self) -> None:  # http.server calls it by this name
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            server.bodies.append(body)
            wants_base64 = body.get("encoding_format") == "base64" and not server.ignores_base64
            if wants_base64 and not server.knows_base64:
                self._send(400, {"error": {"message": "unknown field: encoding_format"}})
                return
            data = []
            for index, text in enumerate(body["input"]):
                vector = VECTORS[text]
                value: Any = vector
                if wants_base64:
                    packed = struct.pack(f"<{len(vector)}f", *vector)
                    value = base64.b64encode(packed[:-1] if server.broken_base64 else packed).decode()
                data.append({"object": "embedding", "index": index, "embedding": value})
            self._send(200, {"object": "list", "data": data[::-1]})  # out of order: index decides

        def _send(self, status: int, payload: dict[str, Any]) -> None:
            raw = json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(raw)))
            self.end_headers()
            self.wfile.write(raw)

    return Handler


@pytest.fixture
def server() -> Iterator[Server]:
    state = Server(port=0)
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _handler(state))
    state.port = httpd.server_address[1]
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield state
    finally:
        httpd.shutdown()
        httpd.server_close()


def encoder_for(server: Server) -> EndpointEncoder:
    return EndpointEncoder(
        OpenAICompatibleEndpoint(
            kind="openai-compatible", model="bge-m3", api_base=f"http://127.0.0.1:{server.port}/v1", api_key=""
        )
    )


EXPECTED = np.array([[0.6, 0.8, 0.0], [0.0, 0.0, 1.0]], dtype=np.float32)


def test_vectors_are_asked_for_as_base64_and_decoded_in_request_order(server: Server) -> None:
    vectors = encoder_for(server).encode_queries(["call variants", "plot a volcano"])

    assert server.bodies[0]["encoding_format"] == "base64"
    assert vectors.dtype == np.float32
    np.testing.assert_allclose(vectors, EXPECTED, atol=1e-6)


def test_a_server_that_refuses_base64_is_asked_for_floats_from_then_on(server: Server) -> None:
    server.knows_base64 = False
    encoder = encoder_for(server)

    first = encoder.encode_queries(["call variants", "plot a volcano"])
    second = encoder.encode_queries(["plot a volcano"])

    np.testing.assert_allclose(first, EXPECTED, atol=1e-6)
    np.testing.assert_allclose(second, EXPECTED[1:], atol=1e-6)
    asked = [body.get("encoding_format") for body in server.bodies]
    assert asked == ["base64", None, None]  # one refusal, then floats without asking again


def test_a_server_that_ignores_the_field_and_sends_floats_still_works(server: Server) -> None:
    server.ignores_base64 = True

    vectors = encoder_for(server).encode_queries(["call variants", "plot a volcano"])

    assert server.bodies[0]["encoding_format"] == "base64"
    np.testing.assert_allclose(vectors, EXPECTED, atol=1e-6)


def test_a_base64_vector_that_is_not_float32_is_a_clear_error(server: Server) -> None:
    server.broken_base64 = True

    with pytest.raises(ClassifierError, match=r"unreadable body.*not float32"):
        encoder_for(server).encode_queries(["call variants"])
