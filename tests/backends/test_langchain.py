"""The `langchain` backend: ChatOpenAI against local servers, a plugin factory, secrets kept out of identities."""

from __future__ import annotations

import json
from typing import Literal

import pytest
from pydantic import BaseModel

pytest.importorskip("langchain_core")

from agentlab.backends import langchain as lc
from agentlab.backends.base import ChatRequest
from agentlab.errors import BackendError


class Sentiment(BaseModel):
    label: Literal["positive", "negative"]


def req(text: str, **kw) -> ChatRequest:
    return ChatRequest(messages=[{"role": "user", "content": text}], **kw)


def chat_openai(url: str, **kwargs) -> lc.LangChainConfig:
    """ChatOpenAI on a local server: no key needed, no retries inside LangChain."""
    return lc.LangChainConfig(factory="openai_chat", kwargs={"model": "m", "base_url": url, "api_key": "not-needed",
                                                             "max_retries": 0, **kwargs})


def fake_list(responses: list[str]):
    """A plugin-style factory: LangChain's fake chat model (no structured-output support)."""
    from langchain_core.language_models.fake_chat_models import FakeListChatModel

    return FakeListChatModel(responses=responses)


if "fake_list" not in lc.CHAT_MODELS:
    lc.CHAT_MODELS.register("fake_list", fake_list)


def test_identity_keeps_secrets_and_knobs_out():
    secret = "sk-lc-SECRET-987"
    cfg = lc.LangChainConfig(factory="openai_chat", max_concurrency=3, kwargs={
        "model": "gpt-4o-mini", "api_key": secret, "base_url": "http://u:pw@127.0.0.1:9/v1?x=1", "max_retries": 1,
        "default_headers": {"Authorization": f"Bearer {secret}"}, "temperature": 0.2})
    backend = lc.LangChainBackend(cfg)
    try:
        ident = backend.identity()
    finally:
        backend.close()
    assert ident == {"backend": "langchain", "factory": "openai_chat", "structured": "auto", "request_params": True,
                     "kwargs": {"model": "gpt-4o-mini", "base_url": "http://127.0.0.1:9/v1", "temperature": 0.2}}
    assert secret not in json.dumps(ident) + req("x").cache_key(ident)


def test_unknown_factory_suggests_a_name():
    with pytest.raises(BackendError, match="did you mean 'openai_chat'"):
        lc.LangChainBackend(lc.LangChainConfig(factory="openai_chatt"))
    assert "unknown LangChain factory" in lc.LangChainBackend.check(lc.LangChainConfig(factory="nope"))
    assert lc.LangChainBackend.check(lc.LangChainConfig(factory="openai_chat")) is None


def test_messages_convert_with_image_parts():
    image = {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA"}}
    out = lc.to_langchain([{"role": "system", "content": "be brief"},
                           {"role": "user", "content": [{"type": "text", "text": "what?"}, image]},
                           {"role": "assistant", "content": "a cat"}])
    assert [m.type for m in out] == ["system", "human", "ai"]
    assert out[1].content[1] == image


def test_plugin_factory_falls_back_to_the_prompt():
    backend = lc.LangChainBackend(lc.LangChainConfig(factory="fake_list", kwargs={"responses": ['{"label": "negative"}']}))
    try:
        out = backend.generate([req("classify", json_schema=Sentiment.model_json_schema()), req("plain")])
    finally:
        backend.close()
    assert [r.text for r in out] == ['{"label": "negative"}'] * 2
    assert out[0].structured == "prompt" and out[1].structured is None


def test_errors_are_items_and_refusal_detected_once(fault_server):
    fault_server.reject_json_schema = True
    backend = lc.LangChainBackend(chat_openai(fault_server.url, max_retries=0))
    schema = Sentiment.model_json_schema()
    seen = []
    try:
        out = backend.generate([req("hello"), req("[[faults:400]]")] + [req(f"s{i}", json_schema=schema) for i in range(4)],
                               on_result=lambda i, r: seen.append(i))
    finally:
        backend.close()
    assert sorted(seen) == list(range(6))
    assert out[0].text == "echo: hello" and out[0].prompt_tokens > 0
    assert out[1].error and "400" in out[1].error and out[1].text is None
    assert all(r.structured == "json_object" and Sentiment.model_validate_json(r.text) for r in out[2:])
    assert [c.step for c in fault_server.calls].count("refuse_schema") == 1


def test_chat_openai_on_llama_server(llama_server, run_context):
    # llama-cpp-python's server ignores max_completion_tokens (what ChatOpenAI sends), so cap it in extra_body
    cfg = chat_openai(llama_server.url, model=llama_server.model, extra_body={"max_tokens": 16}, temperature=0)
    ctx = run_context({"lc": cfg})
    [plain] = ctx.call("lc", [req("Say hello.")])
    assert plain.ok and plain.text and plain.completion_tokens > 0, plain.error
    answers = ctx.complete("lc", [req("Sentiment of: I loved it, wonderful!")], schema=Sentiment)
    assert isinstance(answers[0].value, Sentiment), answers[0].error
    assert answers[0].result.structured == "json_object"  # json_schema was refused by the server


def test_calls_run_concurrently_up_to_max_concurrency(fault_server):
    fault_server.slow_s = 0.2
    cfg = chat_openai(fault_server.url)
    backend = lc.LangChainBackend(cfg.model_copy(update={"max_concurrency": 3}))
    try:
        out = backend.generate([req(f"{i} [[faults:slow]]") for i in range(9)])
    finally:
        backend.close()
    assert all(r.ok for r in out)
    assert 2 <= fault_server.max_active <= 3
