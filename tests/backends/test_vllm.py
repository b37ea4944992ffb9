"""The vllm backend against a fake `vllm` module (no GPU here), and the real error when vLLM is absent.

The fake records what the backend hands to vLLM and answers with objects shaped like vLLM's
RequestOutput / CompletionOutput / Logprob, so request building and parsing are tested exactly.
"""

from __future__ import annotations

import sys
import types
from dataclasses import dataclass
from typing import Any, ClassVar

import pytest

from agentlab.backends import vllm as vb
from agentlab.backends.base import BACKENDS, ChatRequest
from agentlab.config import validate_model
from agentlab.errors import BackendUnavailable, RecipeErrors


# --- a fake vllm ------------------------------------------------------------------------------
@dataclass
class Logprob:
    logprob: float
    rank: int | None = None
    decoded_token: str | None = None


@dataclass
class CompletionOutput:
    index: int
    text: str
    token_ids: list[int]
    cumulative_logprob: float | None = None
    logprobs: list[dict[int, Logprob]] | None = None
    finish_reason: str = "stop"


@dataclass
class RequestOutput:
    request_id: str
    prompt: str | None
    prompt_token_ids: list[int]
    prompt_logprobs: list[dict[int, Logprob] | None] | None
    outputs: list[CompletionOutput]
    finished: bool = True


class SamplingParams:
    """Records its arguments; rejects what vLLM rejects in these tests."""

    def __init__(self, **kwargs: Any):
        if kwargs.get("temperature", 1.0) > 2.0:
            raise ValueError(f"temperature must be in [0, 2], got {kwargs['temperature']}.")
        self.kwargs = kwargs


@dataclass
class StructuredOutputsParams:
    json: Any = None


@dataclass
class GuidedDecodingParams:
    json: Any = None


class FakeTokenizer:
    """One token per character; the chat template is `<role>content` ... `<assistant>`."""

    def apply_chat_template(self, messages, tokenize=True, add_generation_prompt=False):
        assert tokenize is False and add_generation_prompt is True
        return "".join(f"<{m['role']}>{m['content']}" for m in messages) + "<assistant>"

    def encode(self, text, add_special_tokens=True):
        assert add_special_tokens is False
        return [ord(c) for c in text]


def token_logprob(tok: int) -> float:
    """The fake model's log-prob of a prompt token: depends on the token only."""
    return -(tok % 7) / 10


class FakeLLM:
    """Answers chat with `echo:<last user text>` (or JSON under structured decoding); scores prompts."""

    instances: ClassVar[list[FakeLLM]] = []

    def __init__(self, **kwargs: Any):
        self.kwargs = kwargs
        self.chats: list[tuple[list, list]] = []
        self.generates: list[tuple[list, Any]] = []
        FakeLLM.instances.append(self)

    def get_tokenizer(self):
        return FakeTokenizer()

    def chat(self, messages, sampling_params=None, use_tqdm=True):
        assert isinstance(messages[0], list) and len(sampling_params) == len(messages)
        self.chats.append((messages, sampling_params))
        if any("TOO LONG" in str(conv) for conv in messages):
            raise ValueError("The decoder prompt is longer than the maximum model length")
        return [self._answer(conv, sp, n) for n, (conv, sp) in enumerate(zip(messages, sampling_params))]

    def _answer(self, conv, sp, n):
        structured = sp.kwargs.get("structured_outputs") or sp.kwargs.get("guided_decoding")
        text = '{"label": "pos"}' if structured else "echo:" + str(conv[-1]["content"])
        ids = list(range(100, 100 + len(text)))
        lps = None
        if sp.kwargs.get("logprobs"):
            # top-1 and top-2, plus the sampled token ranked 5th (vLLM adds it beyond k)
            lps = [{1: Logprob(-0.1, 1, "a"), 2: Logprob(-2.5, 2, "b"), 3: Logprob(-4.0, 5, "c")} for _ in ids]
        prompt_ids = list(range(7 + n))
        return RequestOutput(str(n), None, prompt_ids, None, [CompletionOutput(0, text, ids, None, lps)])

    def generate(self, prompts, sampling_params=None, use_tqdm=True):
        self.generates.append((prompts, sampling_params))
        outs = []
        for n, p in enumerate(prompts):
            ids = p["prompt_token_ids"]
            if 0x2620 in ids:  # "☠" in an option: vLLM refuses this prompt
                raise ValueError("token id out of vocabulary")
            rows = [None] + [{t: Logprob(token_logprob(t), 3, chr(t)), 0: Logprob(-0.01, 1, "x")} for t in ids[1:]]
            outs.append(RequestOutput(str(n), None, ids, rows, [CompletionOutput(0, "x", [0])]))
        return outs


@pytest.fixture(params=["structured_outputs", "guided_decoding"])
def fake_vllm(request, monkeypatch):
    """Install a fake vllm (newer StructuredOutputsParams or older GuidedDecodingParams API)."""
    mod = types.ModuleType("vllm")
    sp = types.ModuleType("vllm.sampling_params")
    mod.LLM, mod.SamplingParams, mod.sampling_params, mod.__version__ = FakeLLM, SamplingParams, sp, "fake"
    sp.SamplingParams = SamplingParams
    if request.param == "structured_outputs":
        sp.StructuredOutputsParams = StructuredOutputsParams
    else:
        sp.GuidedDecodingParams = GuidedDecodingParams
    monkeypatch.setitem(sys.modules, "vllm", mod)
    monkeypatch.setitem(sys.modules, "vllm.sampling_params", sp)
    monkeypatch.setattr(vb, "cuda_reason", lambda: None)
    monkeypatch.setattr(vb, "_ENGINES", {})
    FakeLLM.instances.clear()
    return request.param


def make(**overrides) -> vb.VLLMBackend:
    cfg = vb.VLLMConfig(model="org/tiny-instruct", **overrides)
    return BACKENDS.get("vllm")(cfg)


def user(text: Any) -> list[dict[str, Any]]:
    return [{"role": "system", "content": "Be brief."}, {"role": "user", "content": text}]


# --- engine and request building --------------------------------------------------------------
def test_engine_args_and_lazy_single_load(fake_vllm):
    be = make(max_model_len=2048, dtype="bfloat16", engine_kwargs={"quantization": "fp8"})
    assert FakeLLM.instances == []  # nothing loads until the first batch
    be.generate([ChatRequest(messages=user("hi"))])
    be.generate([ChatRequest(messages=user("again"))])
    make(max_model_len=2048, dtype="bfloat16", engine_kwargs={"quantization": "fp8"}).generate([ChatRequest(messages=user("x"))])
    assert len(FakeLLM.instances) == 1
    assert FakeLLM.instances[0].kwargs == {
        "model": "org/tiny-instruct", "tensor_parallel_size": 1, "gpu_memory_utilization": 0.9, "max_model_len": 2048,
        "dtype": "bfloat16", "seed": 0, "trust_remote_code": False, "enforce_eager": False, "quantization": "fp8"}
    assert be.batch_size == 256


def test_chat_batch_is_one_call_with_per_request_sampling_params(fake_vllm):
    be = make(seed=7)
    reqs = [ChatRequest(messages=user("a"), max_tokens=5, temperature=0.7, top_p=0.9, seed=3, stop=["\n"]),
            ChatRequest(messages=user("b"))]
    res = be.generate(reqs)
    (convs, params), = FakeLLM.instances[0].chats
    assert convs == [reqs[0].messages, reqs[1].messages]
    assert params[0].kwargs == {"max_tokens": 5, "temperature": 0.7, "top_p": 0.9, "seed": 3, "stop": ["\n"]}
    assert params[1].kwargs == {"max_tokens": 256, "temperature": 0.0, "top_p": 1.0, "seed": 7, "stop": None}
    assert [r.text for r in res] == ["echo:a", "echo:b"]
    assert (res[0].prompt_tokens, res[0].completion_tokens, res[1].prompt_tokens) == (7, 6, 8)
    assert res[0].structured is None and res[0].top_logprobs is None


def test_json_schema_uses_this_vllms_structured_api(fake_vllm):
    schema = {"type": "object", "properties": {"label": {"type": "string"}}, "required": ["label"]}
    res = make().generate([ChatRequest(messages=user("classify"), json_schema=schema)])
    (_, params), = FakeLLM.instances[0].chats
    constraint = params[0].kwargs[fake_vllm]
    assert constraint.json == schema
    assert type(constraint).__name__ == {"structured_outputs": "StructuredOutputsParams",
                                         "guided_decoding": "GuidedDecodingParams"}[fake_vllm]
    assert res[0].text == '{"label": "pos"}' and res[0].structured == "json_schema"


def test_structured_api_missing_is_a_per_item_error(fake_vllm, monkeypatch):
    sp = sys.modules["vllm.sampling_params"]
    monkeypatch.delattr(sp, "StructuredOutputsParams", raising=False)
    monkeypatch.delattr(sp, "GuidedDecodingParams", raising=False)
    res = make().generate([ChatRequest(messages=user("a"), json_schema={"type": "object"}), ChatRequest(messages=user("b"))])
    assert "neither StructuredOutputsParams nor GuidedDecodingParams" in res[0].error
    assert res[1].text == "echo:b"


def test_top_logprobs_keep_the_k_best(fake_vllm):
    res = make().generate([ChatRequest(messages=user("a"), logprobs=2)])
    (_, params), = FakeLLM.instances[0].chats
    assert params[0].kwargs["logprobs"] == 2
    assert res[0].top_logprobs[0] == {"a": -0.1, "b": -2.5}
    assert len(res[0].top_logprobs) == res[0].completion_tokens


def test_image_parts_pass_through_to_chat(fake_vllm):
    parts = [{"type": "text", "text": "what is this?"},
             {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="}}]
    req = ChatRequest(messages=[{"role": "user", "content": parts}])
    res = make().generate([req])
    (convs, _), = FakeLLM.instances[0].chats
    assert convs[0][0]["content"] == parts and res[0].ok
    assert "images" in vb.VLLMBackend.capabilities


# --- options ---------------------------------------------------------------------------------
def expected(messages, option) -> float:
    return sum(token_logprob(ord(c)) for c in option)


def test_options_scored_by_prompt_logprobs_in_one_call(fake_vllm):
    reqs = [ChatRequest(messages=user("Is it good?"), options=["yes", "no"]),
            ChatRequest(messages=user("Colour?"), options=["red", "green", "blue"])]
    res = make(seed=5).generate(reqs)
    (prompts, params), = FakeLLM.instances[0].generates
    assert len(prompts) == 5
    prefix = [ord(c) for c in "<system>Be brief.<user>Is it good?<assistant>"]
    assert prompts[0] == {"prompt_token_ids": prefix + [ord(c) for c in "yes"]}
    assert params.kwargs == {"max_tokens": 1, "temperature": 0.0, "prompt_logprobs": 1, "seed": 5}
    for req, r in zip(reqs, res):
        assert r.option_logprobs == pytest.approx({o: expected(req.messages, o) for o in req.options})
        assert r.text == max(r.option_logprobs, key=r.option_logprobs.get)
    assert res[0].prompt_tokens == 2 * len(prefix) + 5


def test_chat_and_options_mixed_keep_order_and_report_once(fake_vllm):
    reqs = [ChatRequest(messages=user("a"), options=["x", "y"]), ChatRequest(messages=user("b")),
            ChatRequest(messages=user("c"), options=["z"])]
    seen: list[int] = []
    res = make().generate(reqs, on_result=lambda i, r: seen.append(i))
    assert sorted(seen) == [0, 1, 2]
    assert res[1].text == "echo:b" and set(res[0].option_logprobs) == {"x", "y"} and res[2].text == "z"


# --- failures are data -----------------------------------------------------------------------
def test_a_bad_chat_request_fails_alone(fake_vllm):
    reqs = [ChatRequest(messages=user("ok 1")), ChatRequest(messages=user("TOO LONG")),
            ChatRequest(messages=user("ok 2"), temperature=3.0), ChatRequest(messages=user("ok 3"))]
    res = make().generate(reqs)
    assert [r.text for r in res] == ["echo:ok 1", None, None, "echo:ok 3"]
    assert res[1].error == "ValueError: The decoder prompt is longer than the maximum model length"
    assert res[2].error == "ValueError: temperature must be in [0, 2], got 3.0."
    # the 3 valid ones, then halves: [ok 1] and [TOO LONG, ok 3], then [TOO LONG] and [ok 3]
    assert [len(convs) for convs, _ in FakeLLM.instances[0].chats] == [3, 1, 2, 1, 1]


def test_options_with_images_fail_clearly(fake_vllm):
    parts = [{"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="}}]
    res = make().generate([ChatRequest(messages=[{"role": "user", "content": parts}], options=["cat", "dog"])])
    assert res[0].error == vb.OPTIONS_WITH_IMAGES


def test_tokenizer_returning_ids_from_the_chat_template(fake_vllm, monkeypatch):
    monkeypatch.setattr(FakeTokenizer, "apply_chat_template", lambda self, m, **kw: [1, 2, 3])
    make().generate([ChatRequest(messages=user("a"), options=["b"])])
    (prompts, _), = FakeLLM.instances[0].generates
    assert prompts == [{"prompt_token_ids": [1, 2, 3, ord("b")]}]


def test_a_bad_option_fails_its_request_only(fake_vllm):
    reqs = [ChatRequest(messages=user("a"), options=["fine", "☠"]), ChatRequest(messages=user("b"), options=["ok"])]
    res = make().generate(reqs)
    assert res[0].error == "ValueError: token id out of vocabulary"
    assert res[1].ok and res[1].text == "ok"


def test_parse_errors_are_data():
    out = RequestOutput("0", None, [1, 2, 3], [None, {2: Logprob(-1.0)}, {9: Logprob(-1.0)}], [])
    assert vb.option_logprob(out, 1, 2) == -1.0
    with pytest.raises(vb.BackendError, match="no log-prob for prompt token 2"):
        vb.option_logprob(out, 1, 3)
    assert vb.parse_chat(out, ChatRequest(messages=user("a"))).error == "vLLM returned no completion"


# --- config and availability -----------------------------------------------------------------
def test_every_config_field_has_a_description():
    assert all(f.description for f in vb.VLLMConfig.model_fields.values())


def test_config_rejects_unknown_and_repeated_fields():
    with pytest.raises(RecipeErrors, match="did you mean 'max_model_len'"):
        validate_model(vb.VLLMConfig, {"model": "m", "max_len": 4})
    with pytest.raises(RecipeErrors, match="engine_kwargs repeats dtype; set those as fields"):
        validate_model(vb.VLLMConfig, {"model": "m", "engine_kwargs": {"dtype": "half"}})


def test_identity_leaves_out_concurrency_knobs(fake_vllm):
    ident = make(gpu_memory_utilization=0.5, batch_size=8).identity()
    assert ident["model"] == "org/tiny-instruct" and "gpu_memory_utilization" not in ident and "batch_size" not in ident


@pytest.mark.skipif(vb.vllm_installed(), reason="vllm is installed here")
def test_clear_error_when_vllm_is_absent():
    cfg = vb.VLLMConfig(model="org/tiny-instruct")
    assert vb.VLLMBackend.check(cfg) == "vllm is not installed: pip install 'agentlab[vllm]' (Linux with an NVIDIA GPU)"
    with pytest.raises(BackendUnavailable, match=r"vllm is not installed: pip install 'agentlab\[vllm\]'"):
        BACKENDS.get("vllm")(cfg)


def test_clear_error_when_no_gpu(monkeypatch):
    monkeypatch.setitem(sys.modules, "vllm", types.ModuleType("vllm"))
    fake_torch = types.SimpleNamespace(cuda=types.SimpleNamespace(is_available=lambda: False))
    monkeypatch.setitem(sys.modules, "torch", fake_torch)
    with pytest.raises(BackendUnavailable) as err:
        make()
    assert str(err.value).startswith("no CUDA GPU is visible (torch.cuda.is_available() is False)")
