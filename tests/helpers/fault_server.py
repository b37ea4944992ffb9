"""A scripted OpenAI-compatible chat server that injects faults, for backend tests (stdlib only).

The faults for a call come from its last user message: ``[[faults:429,500,ok]]`` answers the
first call with that message 429, the second 500, the third and later normally (the last step
repeats). Steps:

``ok``       200 with an answer (``{"label": "positive"}`` when a response_format was asked for)
``429``      429 with ``Retry-After`` (``FaultServer.retry_after``)
``503``      503 with ``Retry-After``
``500``      500 with a JSON error body
``400``      400 (not retryable)
``500schema`` 500 whose message mentions json_schema but is a server fault, not a refusal
``401``      401 whose message quotes the Authorization header (as some servers do)
``slow``     sleeps ``FaultServer.slow_s`` before answering (past the client's timeout)
``garbage``  200 with a body that is not JSON
``empty``    200 with JSON that has no ``choices``
``drop``     closes the connection without answering

Every call is recorded in ``FaultServer.calls`` so tests can count calls at the server.
"""

from __future__ import annotations

import json
import re
import threading
import time
from collections import Counter
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

FAULTS = re.compile(r"\[\[faults:([^\]]*)\]\]")
LLAMA_CPP_REFUSAL = (
    "1 validation error:\n  {'type': 'literal_error', 'loc': ('body', 'response_format', 'type'), "
    "'msg': \"Input should be 'text' or 'json_object'\", 'input': 'json_schema'}"
)
OPENAI_REFUSAL = "Invalid parameter: 'response_format' of type 'json_schema' is not supported with this model."


@dataclass
class Call:
    """One request the server received."""

    prompt: str
    step: str
    at: float
    body: dict[str, Any]
    headers: dict[str, str]


def last_user_text(messages: list[dict[str, Any]]) -> str:
    """The text of the last user message (text parts joined)."""
    for m in reversed(messages):
        if m.get("role") == "user":
            content = m.get("content")
            if isinstance(content, str):
                return content
            return " ".join(p.get("text", "") for p in content or [] if isinstance(p, dict))
    return ""


class FaultServer:
    """Serve scripted answers on a free loopback port in daemon threads.

    Args:
        reject_json_schema: refuse ``response_format: json_schema``: True for every model, or a set of
            model names (the others accept it).
        schema_refusal_status: how: 500 with a validation error like llama.cpp's server, or 400 like OpenAI.
        reject_json_object: also answer 400 to ``response_format: json_object``.
        retry_after: the ``Retry-After`` header value sent with 429/503.
        slow_s: how long a ``slow`` step sleeps.
    """

    def __init__(self, reject_json_schema: bool | set[str] = False, reject_json_object: bool = False,
                 retry_after: str | None = "1", slow_s: float = 2.0, schema_refusal_status: int = 500):
        self.reject_json_schema = reject_json_schema
        self.schema_refusal_status = schema_refusal_status
        self.reject_json_object = reject_json_object
        self.retry_after = retry_after
        self.slow_s = slow_s
        self.calls: list[Call] = []
        self.active = 0
        self.max_active = 0  # most requests handled at the same time
        self._steps: Counter[str] = Counter()
        self._lock = threading.Lock()
        self.httpd = _Server(("127.0.0.1", 0), _handler(self))
        self._thread = threading.Thread(target=self.httpd.serve_forever, daemon=True, name="fault-server")

    @property
    def url(self) -> str:
        """The base_url to give an OpenAI client."""
        return f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"

    def start(self) -> FaultServer:
        """Start serving; returns self."""
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and close the socket."""
        self.httpd.shutdown()
        self.httpd.server_close()

    def __enter__(self) -> FaultServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def count(self, needle: str = "") -> int:
        """How many calls had `needle` in their last user message."""
        with self._lock:
            return sum(1 for c in self.calls if needle in c.prompt)

    def decide(self, body: dict[str, Any], headers: dict[str, str]) -> str:
        """Record a call and return the step to play for it."""
        prompt = last_user_text(body.get("messages") or [])
        kind = (body.get("response_format") or {}).get("type")
        with self._lock:
            refuse = self.reject_json_schema
            if kind == "json_schema" and (refuse is True or (not isinstance(refuse, bool) and body.get("model") in refuse)):
                step = "refuse_schema"
            elif kind == "json_object" and self.reject_json_object:
                step = "refuse_object"
            else:
                match = FAULTS.search(prompt)
                script = [s.strip() for s in match.group(1).split(",")] if match else ["ok"]
                n = self._steps[prompt]
                self._steps[prompt] += 1
                step = script[min(n, len(script) - 1)]
            self.calls.append(Call(prompt, step, time.monotonic(), body, headers))
        return step


def answer_body(body: dict[str, Any]) -> dict[str, Any]:
    """A chat.completion for a request: echo, JSON, or a one-token answer with log-probs."""
    prompt = last_user_text(body.get("messages") or [])
    fmt = body.get("response_format") or {}
    schema = fmt.get("schema") or (fmt.get("json_schema") or {}).get("schema") or {}
    enum = ((schema.get("properties") or {}).get("answer") or {}).get("enum")
    content = json.dumps({"answer": enum[0]} if enum else {"label": "positive"}) if fmt else f"echo: {prompt}"
    choice: dict[str, Any] = {"index": 0, "message": {"role": "assistant", "content": content}, "finish_reason": "stop"}
    if body.get("logprobs"):
        top = [("Positive", -0.2), (" negative", -1.9), ("The", -3.0)][: body.get("top_logprobs") or 1]
        content = top[0][0]
        choice["message"]["content"] = content
        choice["logprobs"] = {"content": [{"token": content, "logprob": top[0][1], "bytes": None,
                                           "top_logprobs": [{"token": t, "logprob": lp, "bytes": None} for t, lp in top]}]}
    return {"id": "chatcmpl-fault", "object": "chat.completion", "created": int(time.time()), "model": body.get("model", "m"),
            "choices": [choice], "usage": {"prompt_tokens": len(prompt) // 4 + 1, "completion_tokens": len(content) // 4 + 1,
                                           "total_tokens": (len(prompt) + len(content)) // 4 + 2}}


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False  # do not wait for handlers still sleeping for a client that is gone
    request_queue_size = 512  # the default backlog (5) drops bursts of concurrent connections


def _handler(server: FaultServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args: object) -> None:  # keep test output quiet
            pass

        def _send(self, status: int, payload: Any, headers: dict[str, str] | None = None) -> None:
            data = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
            try:
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                for k, v in (headers or {}).items():
                    self.send_header(k, v)
                self.end_headers()
                self.wfile.write(data)
            except (BrokenPipeError, ConnectionResetError):  # the client gave up (timeout)
                pass

        def do_GET(self) -> None:
            self._send(200, {"object": "list", "data": [{"id": "fault-model", "object": "model"}]})

        def do_POST(self) -> None:
            body = json.loads(self.rfile.read(int(self.headers.get("Content-Length") or 0)) or b"{}")
            step = server.decide(body, {k.lower(): v for k, v in self.headers.items()})
            with server._lock:
                server.active += 1
                server.max_active = max(server.max_active, server.active)
            try:
                self._play(step, body)
            finally:
                with server._lock:
                    server.active -= 1

        def _play(self, step: str, body: dict[str, Any]) -> None:
            retry = {"Retry-After": server.retry_after} if server.retry_after is not None else {}
            if step == "refuse_schema" and server.schema_refusal_status == 500:
                self._send(500, {"error": {"message": LLAMA_CPP_REFUSAL, "type": "internal_server_error"}})
            elif step == "refuse_schema":
                self._send(server.schema_refusal_status, {"error": {"message": OPENAI_REFUSAL, "type": "invalid_request_error"}})
            elif step == "refuse_object":
                self._send(400, {"error": {"message": "response_format json_object is not supported", "type": "invalid_request_error"}})
            elif step == "429":
                self._send(429, {"error": {"message": "slow down", "type": "rate_limit_error"}}, retry)
            elif step == "503":
                self._send(503, {"error": {"message": "overloaded", "type": "server_error"}}, retry)
            elif step == "500":
                self._send(500, {"error": {"message": "boom", "type": "server_error"}})
            elif step == "500schema":
                msg = "internal error while compiling the json_schema grammar (out of memory)"
                self._send(500, {"error": {"message": msg, "type": "server_error"}})
            elif step == "400":
                self._send(400, {"error": {"message": "bad request: prompt too long", "type": "invalid_request_error"}})
            elif step == "401":
                msg = f"Incorrect API key provided: {self.headers.get('Authorization', '').removeprefix('Bearer ')}"
                self._send(401, {"error": {"message": msg, "type": "invalid_request_error"}})
            elif step == "garbage":
                self._send(200, b"{this is not json")
            elif step == "empty":
                self._send(200, {"id": "x", "object": "chat.completion"})
            elif step == "drop":
                self.close_connection = True
                self.connection.close()
            else:
                if step == "slow":
                    time.sleep(server.slow_s)
                self._send(200, answer_body(body))

    return Handler
