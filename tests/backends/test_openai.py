"""The `openai` backend: faults from a scripted local server, and a real llama.cpp server."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
import threading
import time
from typing import Literal

import pytest
from pydantic import BaseModel

from agentlab.backends import openai as oa
from agentlab.backends.base import ChatRequest
from agentlab.errors import BackendUnavailable


def cfg(url: str, **kw) -> oa.OpenAIConfig:
    """A config for a local server with fast retries."""
    return oa.OpenAIConfig(model=kw.pop("model", "m"), base_url=url, **{"backoff_base": 0.01, "timeout": 5.0, **kw})


def req(text: str, **kw) -> ChatRequest:
    return ChatRequest(messages=[{"role": "user", "content": text}], **kw)


class Sentiment(BaseModel):
    label: Literal["positive", "negative"]


# -- faults, through the engine ------------------------------------------------------------------------------
def test_faulty_run_completes_every_row_once(fault_server, run_context):
    fault_server.slow_s = 1.0
    scripts = ["ok", "429,ok", "503,ok", "500,500,ok", "garbage,ok", "empty,ok", "slow,ok", "drop,ok", "500", "400"]
    rows = [f"row {i} [[faults:{s}]]" for i, s in enumerate(scripts * 3)]
    ctx = run_context({"m": cfg(fault_server.url, timeout=0.5, max_retries=3)})
    fault_server.retry_after = "0"
    results = ctx.call("m", [req(r) for r in rows])
    assert len(results) == len(rows)
    for row, res in zip(rows, results):
        if "faults:500]]" in row or "faults:400]]" in row:
            assert res.error and res.text is None  # failures are data, not exceptions
        else:
            assert res.ok and res.text == f"echo: {row}", res.error
        assert fault_server.count(row) == res.attempts  # every attempt reached the server once
    assert max(r.attempts for r in results) == 4  # bounded: 1 + max_retries
    assert all(fault_server.count(r) == 1 for r in rows if "faults:400" in r)  # a 4xx is not retried
    assert ctx.stats["m"].llm_calls == len(rows)

    before = fault_server.count()
    again = ctx.call("m", [req(r) for r in rows])  # successes come from the cache, failures are retried
    assert [a.text for a in again] == [r.text for r in results]
    assert all(a.cached for a, r in zip(again, results) if r.ok)
    assert fault_server.count() - before == 3 * 4 + 3 * 1  # three always-500 rows, three 400 rows


KILLED_RUN = """
import sys
from agentlab.backends.base import ChatRequest
from agentlab.backends.openai import OpenAIConfig
from agentlab.engine import RunContext
from agentlab.store import CallCache
from pathlib import Path
url, cache, rows = sys.argv[1], Path(sys.argv[2]), sys.argv[3:]
ctx = RunContext(model_configs={"m": OpenAIConfig(model="m", base_url=url, timeout=60)}, cache=CallCache(cache))
ctx.call("m", [ChatRequest(messages=[{"role": "user", "content": r}]) for r in rows])
"""


def committed(cache) -> int:
    """Rows in the call cache right now (0 while the database is being created)."""
    try:
        db = sqlite3.connect(f"file:{cache}?mode=ro", uri=True)  # read-only: never create the file ourselves
        try:
            return db.execute("SELECT COUNT(*) FROM calls").fetchone()[0]
        finally:
            db.close()
    except sqlite3.OperationalError:
        return 0


def test_kill_9_resume_repeats_no_finished_call(fault_server, run_context, tmp_path):
    fault_server.slow_s = 30.0
    rows = [f"fast {i}" for i in range(10)] + ["stuck [[faults:slow,ok]]"]
    cache = tmp_path / "cache.sqlite"
    proc = subprocess.Popen([sys.executable, "-c", KILLED_RUN, fault_server.url, str(cache), *rows])
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and committed(cache) < 10:  # the fast rows done, the stuck one in flight
            time.sleep(0.05)
    finally:
        proc.kill()  # SIGKILL: no cleanup, no flush
        proc.wait()
    assert fault_server.count("fast") == 10 and fault_server.count("stuck") == 1
    ctx = run_context({"m": cfg(fault_server.url)})  # the same cache file (tmp_path / cache.sqlite)
    out = ctx.call("m", [req(r) for r in rows])
    assert [r.text for r in out] == [f"echo: {r}" for r in rows]
    assert fault_server.count("fast") == 10  # nothing finished was asked again
    assert fault_server.count("stuck") == 2


def test_retry_after_is_honoured(fault_server):
    fault_server.retry_after = "1"
    b = oa.OpenAIBackend(cfg(fault_server.url))
    try:
        [res] = b.generate([req("[[faults:429,ok]]")])
    finally:
        b.close()
    first, second = fault_server.calls
    assert res.ok and res.attempts == 2
    assert second.at - first.at >= 0.95


def test_timeouts_are_retried_a_bounded_number_of_times(fault_server):
    fault_server.slow_s = 1.0
    b = oa.OpenAIBackend(cfg(fault_server.url, timeout=0.2, max_retries=1))
    try:
        [res] = b.generate([req("[[faults:slow]]")])
    finally:
        b.close()
    assert res.error.startswith("APITimeoutError after 2 attempt(s)")
    assert fault_server.count() == 2


def test_results_stream_to_the_callers_thread_as_they_complete(fault_server):
    fault_server.slow_s = 0.6
    b = oa.OpenAIBackend(cfg(fault_server.url))
    seen: list[tuple[int, float, int]] = []
    t0 = time.monotonic()
    try:
        out = b.generate([req("[[faults:slow]]"), req("fast")],
                         on_result=lambda i, r: seen.append((i, time.monotonic() - t0, threading.get_ident())))
    finally:
        b.close()
    assert [s[0] for s in seen] == [1, 0]
    assert seen[0][1] < 0.5 <= seen[1][1]  # the fast one was handed over before the slow one finished
    assert {s[2] for s in seen} == {threading.get_ident()}
    assert [r.text for r in out] == ["echo: [[faults:slow]]", "echo: fast"]


def test_in_flight_is_bounded(fault_server):
    fault_server.slow_s = 0.1
    b = oa.OpenAIBackend(cfg(fault_server.url, max_in_flight=4))
    try:
        out = b.generate([req(f"{i} [[faults:slow]]") for i in range(16)])
    finally:
        b.close()
    assert all(r.ok for r in out)
    assert 2 <= fault_server.max_active <= 4


def test_requests_per_minute_limit(fault_server):
    b = oa.OpenAIBackend(cfg(fault_server.url, requests_per_minute=1200))  # 20/s, bursts of 20
    t0 = time.monotonic()
    try:
        out = b.generate([req(str(i)) for i in range(40)])
    finally:
        b.close()
    assert all(r.ok for r in out)
    assert time.monotonic() - t0 >= 0.9


# -- structured output -----------------------------------------------------------------------------------------
@pytest.mark.parametrize("transport", ["aiohttp", "openai"])
@pytest.mark.parametrize("status", [500, 400])  # llama.cpp's server (validation error as 500), OpenAI (400)
def test_structured_fallback_is_learned_per_model(fault_server, run_context, status, transport):
    """Two models on one server: the one that refuses json_schema falls back once; the other keeps json_schema."""
    fault_server.reject_json_schema, fault_server.schema_refusal_status = {"old"}, status
    ctx = run_context({"old": cfg(fault_server.url, model="old", transport=transport),
                       "new": cfg(fault_server.url, model="new", transport=transport)})
    rows = [req(f"row {i}") for i in range(8)]
    old = ctx.complete("old", rows, schema=Sentiment)
    new = ctx.complete("new", rows, schema=Sentiment)
    assert all(isinstance(a.value, Sentiment) for a in old + new), [a.error for a in old + new]
    refusals = [c for c in fault_server.calls if c.step == "refuse_schema"]
    assert len(refusals) == 1 and refusals[0].body["model"] == "old"  # learned once, from the refusal
    assert {a.result.structured for a in old} == {"json_object"}
    assert {a.result.structured for a in new} == {"json_schema"}  # the other model is not downgraded
    sent = {c.body["model"]: set() for c in fault_server.calls}
    for c in fault_server.calls:
        sent[c.body["model"]].add(c.body["response_format"]["type"])
    assert sent == {"old": {"json_schema", "json_object"}, "new": {"json_schema"}}
    assert ctx.backend("old").structured_mode == "json_object" and ctx.backend("new").structured_mode == "json_schema"


@pytest.mark.parametrize("transport", ["aiohttp", "openai"])
@pytest.mark.parametrize("script", ["500,ok", "500schema,ok", "503,ok", "slow,ok", "drop,ok", "garbage,ok"])
def test_a_server_fault_never_downgrades_structured_output(fault_server, script, transport):
    """5xx (even one that mentions json_schema), timeouts and dropped connections are retried, never learned."""
    fault_server.retry_after, fault_server.slow_s = "0", 1.0
    b = oa.OpenAIBackend(cfg(fault_server.url, timeout=0.5, transport=transport))
    schema = Sentiment.model_json_schema()
    try:
        out = b.generate([req(f"first [[faults:{script}]]", json_schema=schema)])
        out += b.generate([req(f"second [[faults:{script}]]", json_schema=schema), req("third", json_schema=schema)])
    finally:
        b.close()
    assert all(r.ok and r.structured == "json_schema" for r in out), [(r.error, r.structured) for r in out]
    assert out[0].attempts == 2 and b.structured_mode == "json_schema"
    assert {c.body["response_format"]["type"] for c in fault_server.calls} == {"json_schema"}


def test_a_server_fault_after_retries_is_an_error_not_a_fallback(fault_server):
    b = oa.OpenAIBackend(cfg(fault_server.url, max_retries=2))
    try:
        [res] = b.generate([req("x [[faults:500schema]]", json_schema=Sentiment.model_json_schema())])
        [ok] = b.generate([req("y", json_schema=Sentiment.model_json_schema())])
    finally:
        b.close()
    assert res.error and "HTTP 500 after 3 attempt(s)" in res.error and res.structured == "json_schema"
    assert ok.ok and ok.structured == "json_schema" and b.structured_mode == "json_schema"


def _status_error(status: int, message: str):
    import httpx
    import openai

    response = httpx.Response(status, request=httpx.Request("POST", "http://127.0.0.1/v1/chat/completions"))
    return openai.APIStatusError(message, response=response, body={"error": {"message": message}})


@pytest.mark.parametrize(("status", "message", "refusal"), [
    (400, "Invalid parameter: 'response_format' of type 'json_schema' is not supported with this model.", True),
    (422, "response_format: extra inputs are not permitted", True),
    (400, "json_object response format is not supported", True),
    (501, "structured output not implemented", True),
    (500, "1 validation error: ('body', 'response_format', 'type') Input should be 'text' or 'json_object'", True),
    (500, "internal error while compiling the json_schema grammar", False),  # a fault, not an answer
    (503, "response_format json_schema: overloaded", False),
    (500, "boom", False),
    (400, "prompt too long: 9000 tokens; the schema allows 4096", False),  # 'schema' alone is not the feature
    (401, "Incorrect API key provided", False),
])
def test_is_refusal(status, message, refusal):
    assert oa.is_refusal(_status_error(status, message)) is refusal


def test_transport_errors_are_typed_and_carry_retry_after():
    import httpx
    import openai

    from agentlab.errors import RateLimitError, TransportError

    def err(status, headers):
        response = httpx.Response(status, headers=headers, request=httpx.Request("POST", "http://127.0.0.1/v1"))
        return openai.APIStatusError("x", response=response, body=None)

    limited = oa.transport_error(err(429, {"Retry-After": "3"}))
    assert isinstance(limited, RateLimitError) and limited.retry_after == 3.0 and limited.status == 429
    busy = oa.transport_error(err(503, {"retry-after-ms": "250"}))
    assert type(busy) is TransportError and busy.status == 503 and busy.retry_after == 0.25
    timeout = oa.transport_error(openai.APITimeoutError(request=httpx.Request("POST", "http://127.0.0.1/v1")))
    assert type(timeout) is TransportError and timeout.status is None and timeout.retry_after is None
    assert oa.transport_error(err(400, {})) is None and oa.transport_error(err(401, {})) is None


def test_falls_back_to_the_prompt(fault_server):
    fault_server.reject_json_schema = fault_server.reject_json_object = True
    b = oa.OpenAIBackend(cfg(fault_server.url))
    try:
        [res] = b.generate([req("classify", json_schema=Sentiment.model_json_schema())])
    finally:
        b.close()
    assert res.ok and res.structured == "prompt" and res.attempts == 3
    last = fault_server.calls[-1]
    assert "response_format" not in last.body and '"label"' in last.prompt


def test_an_explicit_mode_does_not_fall_back(fault_server):
    fault_server.reject_json_schema = True
    b = oa.OpenAIBackend(cfg(fault_server.url, structured="json_schema"))
    try:
        [res] = b.generate([req("x", json_schema=Sentiment.model_json_schema())])
    finally:
        b.close()
    assert res.error and "HTTP 500" in res.error and fault_server.count() == 1


# -- options and log-probs ---------------------------------------------------------------------------------------
def test_options_are_scored_from_first_token_logprobs(fault_server):
    b = oa.OpenAIBackend(cfg(fault_server.url))
    try:
        [res] = b.generate([req("review", options=["positive", "Negative ", "meh"])])
    finally:
        b.close()
    assert res.option_logprobs == {"positive": -0.2, "Negative ": -1.9, "meh": oa.UNSEEN_LOGPROB}
    assert res.text == "positive"
    body = fault_server.calls[0].body
    assert body["max_tokens"] == 1 and body["top_logprobs"] == 20 and body["logprobs"] is True


def test_without_logprobs_options_are_chosen_under_an_enum_schema(fault_server):
    b = oa.OpenAIBackend(cfg(fault_server.url, logprobs=False))
    try:
        assert "options" not in b.capabilities and "logprobs" not in b.capabilities
        [res] = b.generate([req("review", options=["negative", "positive"])])
    finally:
        b.close()
    assert res.ok and res.text == "negative" and res.option_logprobs is None
    assert "logprobs" not in fault_server.calls[0].body


def test_option_logprob_matching():
    top = [(" Pos", -0.5), ("The", -0.1), ("", -0.01), ("neg", -2.0)]
    assert oa.option_logprob("positive", top) == -0.5
    assert oa.option_logprob(" Negative", top) == -2.0
    assert oa.option_logprob("neutral", top) == oa.UNSEEN_LOGPROB


# -- secrets, images, accounting, config ----------------------------------------------------------------------------
def test_api_key_never_enters_identity_cache_or_errors(fault_server, run_context, tmp_path):
    secret = "sk-test-SECRET-123456"
    ctx = run_context({"m": cfg(fault_server.url, api_key=secret)})
    results = ctx.call("m", [req("hello"), req("[[faults:401]]")])
    assert fault_server.calls[0].headers["authorization"] == f"Bearer {secret}"  # the key is used...
    ident = ctx.backend("m").identity()  # ...but never enters the identity, nor do URL credentials
    with_creds = oa.OpenAIBackend(cfg(fault_server.url.replace("http://", "http://user:pw@") + "?key=q", api_key=secret))
    assert with_creds.identity() == ident
    blob = json.dumps(ident) + req("hello").cache_key(ident) + repr(ctx.model_configs["m"])
    blob += "".join(r.model_dump_json() for r in results)
    assert secret not in blob
    assert "max_in_flight" not in ident and "timeout" not in ident
    assert results[1].error and "***" in results[1].error
    assert secret.encode() not in (tmp_path / "cache.sqlite").read_bytes()


def test_images_pass_through_and_cost_is_counted(fault_server):
    image = {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="}}
    msgs = [{"role": "user", "content": [{"type": "text", "text": "what is this"}, image]}]
    b = oa.OpenAIBackend(cfg(fault_server.url, price_per_1k_input=1.0, price_per_1k_output=2.0))
    try:
        [res] = b.generate([ChatRequest(messages=msgs)])
    finally:
        b.close()
    assert fault_server.calls[0].body["messages"] == msgs
    assert res.cost_usd == pytest.approx((res.prompt_tokens + 2 * res.completion_tokens) / 1000)
    assert "images" in b.capabilities


def test_no_key_for_a_remote_server(monkeypatch):
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    remote = oa.OpenAIConfig(model="gpt-4o-mini")
    assert "set OPENAI_API_KEY" in oa.OpenAIBackend.check(remote)
    with pytest.raises(BackendUnavailable, match="no API key"):
        oa.OpenAIBackend(remote)
    assert oa.OpenAIBackend.check(oa.OpenAIConfig(model="m", base_url="http://localhost:8000/v1")) is None
    monkeypatch.setenv("OPENAI_API_KEY", "sk-x")
    assert oa.OpenAIBackend.check(remote) is None


@pytest.mark.parametrize("url, local", [("http://localhost:8000/v1", True), ("http://10.0.0.5/v1", True),
                                        ("http://box.local:11434/v1", True), ("https://api.groq.com/openai/v1", False),
                                        (None, False)])
def test_is_local(url, local):
    assert oa.is_local(url) is local


def test_retry_after_parsing():
    class Resp:
        def __init__(self, headers):
            self.headers = headers

    class Exc(Exception):
        def __init__(self, headers):
            self.response = Resp(headers)

    assert oa.retry_after_of(Exc({"retry-after": "3"})) == 3.0
    assert oa.retry_after_of(Exc({"retry-after-ms": "250"})) == 0.25
    assert oa.retry_after_of(Exc({})) is None
    assert oa.retry_after_of(ValueError()) is None


def test_schema_prompt_appends_to_the_last_user_message():
    msgs = [{"role": "user", "content": "a"}, {"role": "assistant", "content": "b"},
            {"role": "user", "content": [{"type": "text", "text": "c"}]}]
    out = oa.with_schema_prompt(msgs, {"type": "object"})
    assert out[0] == msgs[0] and out[2]["content"][-1]["text"].endswith('{"type": "object"}')
    assert msgs[2]["content"] == [{"type": "text", "text": "c"}]  # the caller's messages are not changed


# -- a real OpenAI-compatible server: llama.cpp's --------------------------------------------------------------------
def test_llama_server_structured_output_with_detected_fallback(llama_server, run_context):
    ctx = run_context({"smol": cfg(llama_server.url, model=llama_server.model, timeout=120.0, max_in_flight=4)})
    rows = ["I loved this film, wonderful!", "Terrible, boring, awful.", "Great acting."]
    msgs = [req(f"Sentiment of: {r}", max_tokens=16) for r in rows]
    answers = ctx.complete("smol", msgs, schema=Sentiment)
    assert all(isinstance(a.value, Sentiment) for a in answers), [a.error for a in answers]
    assert {a.result.structured for a in answers} == {"json_object"}  # json_schema was refused (HTTP 500)...
    assert sum(a.result.attempts for a in answers) == len(rows) + 1  # ...once
    assert ctx.backend("smol").structured_mode == "json_object"


def test_llama_server_concurrent_plain_calls(llama_server):
    b = oa.OpenAIBackend(cfg(llama_server.url, model=llama_server.model, timeout=120.0, max_in_flight=4))
    try:
        out = b.generate([req(f"Say {i}.", max_tokens=3, logprobs=3) for i in range(4)])
    finally:
        b.close()
    assert all(r.ok and r.text is not None and r.completion_tokens > 0 for r in out), [r.error for r in out]
    assert all(r.top_logprobs and 1 <= len(r.top_logprobs[0]) <= 3 for r in out)


def test_llama_server_scores_options(llama_server):
    b = oa.OpenAIBackend(cfg(llama_server.url, model=llama_server.model, timeout=120.0))
    question = "Review: 'An absolute delight, I loved every minute!'\nIs this review positive or negative? Answer with one word."
    try:
        [res] = b.generate([req(question, options=["positive", "negative"])])
    finally:
        b.close()
    assert res.ok, res.error
    assert res.text == "positive"
    assert res.option_logprobs["positive"] > res.option_logprobs["negative"] > oa.UNSEEN_LOGPROB
