"""The engine: cache, structured parsing with repair and one retry, failures as data, images, dedupe."""

from __future__ import annotations

from pydantic import BaseModel

from agentlab.backends.base import ChatRequest
from agentlab.backends.fake import FakeBackend, FakeConfig
from agentlab.engine import RunContext, close_backends
from agentlab.store import CallCache


class Sentiment(BaseModel):
    sentiment: str


def _ctx(tmp_path, **fake):
    close_backends()
    return RunContext(model_configs={"m": FakeConfig(**fake)}, cache=CallCache(tmp_path / "c.sqlite"))


def _req(text):
    return ChatRequest(messages=[{"role": "user", "content": text}])


def test_structured_ok_repaired_retried_failed(tmp_path):
    ctx = _ctx(tmp_path, rules={"good": '{"sentiment": "pos"}', "broken": '{"sentiment": "neg"', "retry": "nope"},
               default="nope")
    answers = ctx.complete("m", [_req("good"), _req("broken"), _req("bad")], schema=Sentiment)
    assert answers[0].value.sentiment == "pos" and not answers[0].repaired
    assert answers[1].value.sentiment == "neg" and answers[1].repaired
    assert answers[2].value is None and answers[2].raw == "nope" and "unparsable after retry" in answers[2].error
    s = ctx.stats["m"]
    assert (s.repaired, s.failed) == (1, 1)
    assert s.llm_calls == 4  # three calls + one retry for the unparsable answer


def test_cache_hits_and_identity(tmp_path):
    ctx = _ctx(tmp_path)
    before = FakeBackend.calls
    ctx.call("m", [_req("a"), _req("b"), _req("a")])
    assert FakeBackend.calls - before == 2  # identical requests are sent once
    ctx.call("m", [_req("a"), _req("b")])
    assert FakeBackend.calls - before == 2
    assert ctx.stats["m"].cache_hits == 2


def test_failed_calls_are_data_and_not_cached(tmp_path):
    ctx = _ctx(tmp_path, fail_on="boom")
    res = ctx.call("m", [_req("boom"), _req("fine")])
    assert res[0].error == "scripted failure" and res[1].ok
    assert ctx.stats["m"].failed == 1  # counted for the manifest, also when a caller uses call() directly
    before = FakeBackend.calls
    ctx.call("m", [_req("boom")])
    assert FakeBackend.calls - before == 1  # a failure is retried on the next run
    assert ctx.stats["m"].failed == 2


def test_images_rejected_per_item_by_text_only_backend(tmp_path):
    from agentlab.backends.embedded import EmbeddedConfig

    close_backends()
    ctx = RunContext(model_configs={"e": EmbeddedConfig()}, cache=CallCache(None))
    req = ChatRequest(messages=[{"role": "user", "content": [{"type": "text", "text": "what?"},
                                                            {"type": "image_url", "image_url": {"url": "data:image/png;base64,AA"}}]}])
    res = ctx.call("e", [req])
    assert "does not accept images" in res[0].error


def test_default_model_resolution(tmp_path):
    ctx = _ctx(tmp_path)
    assert ctx.resolve_model("default") == "m" and ctx.resolve_model(None) == "m"
