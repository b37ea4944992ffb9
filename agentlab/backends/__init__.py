"""LLM backends, registered by name in :data:`BACKENDS`."""

from agentlab.backends.base import (
    BACKENDS,
    Backend,
    BackendConfig,
    ChatRequest,
    ChatResult,
)

__all__ = ["BACKENDS", "Backend", "BackendConfig", "ChatRequest", "ChatResult"]
