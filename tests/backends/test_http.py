"""The lean aiohttp transport behaves like the official `openai` client: same answers, same retries and errors."""

from __future__ import annotations

import pytest

from agentlab.backends import http
from agentlab.backends import openai as oa
from agentlab.backends.base import ChatRequest

TRANSPORTS = ["aiohttp", "openai"]


def _run(url: str, prompts: list[str], transport: str, logprobs: int = 0, **kw) -> list:
    cfg = oa.OpenAIConfig(model="m", base_url=url, transport=transport, **{"backoff_base": 0.01, "timeout": 5.0, **kw})
    b = oa.OpenAIBackend(cfg)
    try:
        return b.generate([ChatRequest(messages=[{"role": "user", "content": p}], logprobs=logprobs) for p in prompts])
    finally:
        b.close()


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_faults_are_retried_the_same_way(fault_server, transport):
    prompts = ["plain", "[[faults:429,ok]]", "[[faults:503,ok]]", "[[faults:500,ok]]", "[[faults:garbage,ok]]",
               "[[faults:empty,ok]]", "[[faults:drop,ok]]"]
    out = _run(fault_server.url, prompts, transport)
    assert [r.text for r in out] == [f"echo: {p}" for p in prompts]
    assert [r.attempts for r in out] == [1, 2, 2, 2, 2, 2, 2]
    assert all(r.prompt_tokens > 0 for r in out)


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_errors_read_the_same(fault_server, transport):
    fault_server.slow_s = 1.0
    secret = "sk-test-SECRET-999"
    out = _run(fault_server.url, ["[[faults:400]]", "[[faults:401]]", "[[faults:slow]]"], transport, timeout=0.3,
               max_retries=1, api_key=secret)
    assert out[0].error.startswith("HTTP 400 after 1 attempt(s)")
    assert out[1].error.startswith("HTTP 401 after 1 attempt(s)") and secret not in out[1].error
    assert out[2].error.startswith("APITimeoutError after 2 attempt(s)")


def test_both_transports_give_identical_results(fault_server):
    prompts = [f"row {i}" for i in range(20)]
    a, b = (_run(fault_server.url, prompts, t, logprobs=2) for t in TRANSPORTS)
    assert [r.model_dump() for r in a] == [r.model_dump() for r in b]


def test_auto_picks_aiohttp_and_keeps_the_query_string(fault_server):
    b = oa.OpenAIBackend(oa.OpenAIConfig(model="m", base_url=fault_server.url + "?api-version=1"))
    try:
        [res] = b.generate([ChatRequest(messages=[{"role": "user", "content": "hi"}])])
        assert isinstance(b._client, http.LeanClient)
    finally:
        b.close()
    assert res.text == "echo: hi"


def test_obj_reads_missing_keys_as_none():
    o = http.Obj({"a": {"b": [{"c": 1}, 2]}, "d": None})
    assert o.a.b[0].c == 1 and o.a.b[1] == 2 and o.d is None and o.missing is None
