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
def test_json_schema_refusal_is_detected_once_per_server(fault_server):
    fault_server.reject_json_schema = True
    schema = Sentiment.model_json_schema()
    b = oa.OpenAIBackend(cfg(fault_server.url))
    b2 = oa.OpenAIBackend(cfg(fault_server.url, model="other"))
    try:
        out = b.generate([req(f"{i}", json_schema=schema) for i in range(8)])
        out2 = b2.generate([req("again", json_schema=schema)])
    finally:
        b.close()
        b2.close()
    assert [c.step for c in fault_server.calls].count("refuse_schema") == 1
    assert all(r.structured == "json_object" and Sentiment.model_validate_json(r.text) for r in out + out2)
    sent = [c.body["response_format"] for c in fault_server.calls if c.step == "ok"]
    assert all(f == {"type": "json_object", "schema": schema} for f in sent)


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
    assert oa._SERVER_MODES[llama_server.url] == "json_object"


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
