"""Token counts for planning (`agentlab plan`) without calling any model.

A :class:`TokenCounter` counts the prompt tokens of a chat request the way the backend will see
it: the embedded backend's own llama.cpp tokenizer and chat template (the GGUF loaded with
``vocab_only``, which reads no weights), ``tiktoken`` for OpenAI-compatible models when it is
installed and its encoding is available offline, else an estimate of one token per four characters
plus a few per message. Each counter says which method it used.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

log = logging.getLogger("agentlab")
CHARS_PER_TOKEN = 4.0
TOKENS_PER_MESSAGE = 4  # role markers and separators of a chat template
FREE_TEXT_TOKENS = 48  # what an open string field of a structured answer is assumed to take


def _text_of(messages: list[dict[str, Any]]) -> str:
    parts = []
    for m in messages:
        c = m.get("content")
        if isinstance(c, str):
            parts.append(c)
        elif isinstance(c, list):
            parts += [p.get("text", "") for p in c if isinstance(p, dict)]
    return "\n".join(parts)


class TokenCounter:
    """Counts prompt tokens by an estimate (chars / 4 + 4 per message). Subclasses use real tokenizers."""

    method = "estimate (4 characters per token)"

    def count_text(self, text: str) -> int:
        """Tokens in a plain string."""
        return round(len(text) / CHARS_PER_TOKEN)

    def count_prompt(self, messages: list[dict[str, Any]]) -> int:
        """Tokens of the whole chat prompt."""
        return self.count_text(_text_of(messages)) + TOKENS_PER_MESSAGE * len(messages)


class TiktokenCounter(TokenCounter):
    """OpenAI models through `tiktoken` (the model's own encoding, else cl100k_base as an approximation)."""

    def __init__(self, model: str):
        import tiktoken

        try:
            self.enc = tiktoken.encoding_for_model(model)
            self.method = f"tiktoken ({self.enc.name})"
        except KeyError:  # not an OpenAI model name: the closest common encoding
            self.enc = tiktoken.get_encoding("cl100k_base")
            self.method = "tiktoken cl100k_base (approximate: not this model's tokenizer)"

    def count_text(self, text: str) -> int:
        return len(self.enc.encode(text, disallowed_special=()))


class LlamaCppCounter(TokenCounter):
    """A GGUF's own tokenizer and chat template, loaded with `vocab_only` (no weights, well under a second)."""

    def __init__(self, path: Path):
        from llama_cpp import Llama
        from llama_cpp._utils import suppress_stdout_stderr

        with suppress_stdout_stderr(disable=False):  # llama.cpp prints context notes to fd 2 even with verbose=False
            self.llm = Llama(model_path=str(path), vocab_only=True, verbose=False)
        self.method = f"llama.cpp tokenizer ({path.name})"
        template = self.llm.metadata.get("tokenizer.chat_template")
        self._format = None
        if template:
            from llama_cpp.llama_chat_format import Jinja2ChatFormatter

            text = lambda tok: self.llm._model.token_get_text(tok) if hasattr(self.llm._model, "token_get_text") else ""
            self._format = Jinja2ChatFormatter(template=template, eos_token=text(self.llm.token_eos()),
                                               bos_token=text(self.llm.token_bos()))

    def count_text(self, text: str) -> int:
        return len(self.llm.tokenize(text.encode(), add_bos=False, special=False))

    def count_prompt(self, messages: list[dict[str, Any]]) -> int:
        if self._format is None:
            text = "".join(f"{m['role']}: {m.get('content')}\n" for m in messages) + "assistant: "
        else:  # the same prompt text the embedded backend builds (EmbeddedBackend.prompt_text)
            text = self._format(messages=messages).prompt
        return len(self.llm.tokenize(text.encode(), add_bos=False, special=True))


def counter_for(config: Any) -> TokenCounter:
    """The best counter available here for a backend config (never raises: falls back to the estimate)."""
    try:
        if config.backend == "embedded":
            from agentlab.backends.embedded import default_model_path

            path = Path(config.model_path).expanduser() if getattr(config, "model_path", None) else default_model_path()
            if path is not None and path.is_file():
                return LlamaCppCounter(path)
        elif config.backend == "openai":
            return TiktokenCounter(config.model)
    except Exception as exc:  # a missing package or an encoding that is not available offline
        log.info("token counting for %s falls back to an estimate: %s", config.backend, exc)
    return TokenCounter()


def completion_estimate(request: Any, counter: TokenCounter) -> tuple[int, str]:
    """(tokens, how) for one request's answer: 0 when options are scored, the size of the schema's
    answer when every field is bounded (enum, number, bool), else `max_tokens` (an upper bound)."""
    if request.options:
        return 0, "options scored (no generation)"
    schema = request.json_schema
    if schema is not None:
        sample = _sample(schema, schema.get("$defs", {}))
        if sample is not None:
            n = counter.count_text(json.dumps(sample)) + 2
            return min(n, request.max_tokens), "schema"
        return request.max_tokens, "max_tokens (schema has free text)"
    return request.max_tokens, "max_tokens (upper bound)"


def _sample(schema: dict[str, Any], defs: dict[str, Any]) -> Any:
    """The longest answer a bounded JSON schema allows; None when a field is free text."""
    if "$ref" in schema:
        return _sample(defs.get(schema["$ref"].rsplit("/", 1)[-1], {}), defs)
    if "enum" in schema:
        return max((str(v) for v in schema["enum"]), key=len)
    if "const" in schema:
        return schema["const"]
    options = schema.get("anyOf") or schema.get("oneOf")
    if options:
        samples = [_sample(s, defs) for s in options]
        return None if any(s is None for s in samples) else max(samples, key=lambda s: len(json.dumps(s)))
    kind = schema.get("type")
    if kind == "object":
        out = {}
        for name, sub in (schema.get("properties") or {}).items():
            value = _sample(sub, defs)
            if value is None:
                return None
            out[name] = value
        return out
    return {"integer": 1000, "number": 0.123456, "boolean": False, "null": "null"}.get(kind)
