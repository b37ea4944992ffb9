"""Start llama-cpp-python's OpenAI-compatible server on a free loopback port (for backend tests)."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

MODEL_ALIAS = "smol"


def free_port() -> int:
    """A TCP port that was free on 127.0.0.1 a moment ago."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class LlamaServer:
    """A running `python -m llama_cpp.server`; `url` is its OpenAI base_url."""

    proc: subprocess.Popen
    url: str
    log_path: Path
    model: str = MODEL_ALIAS

    def stop(self) -> None:
        """Terminate the server (kill it if it does not exit within 10 s)."""
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)

    def log_tail(self, n: int = 2000) -> str:
        """The end of the server's log, for failure messages."""
        try:
            return self.log_path.read_text(errors="replace")[-n:]
        except OSError:
            return ""


def start_llama_server(model_path: Path, n_ctx: int = 2048, threads: int = 1, wait_s: float = 120.0,
                       port: int | None = None) -> LlamaServer:
    """Start the server and wait until /v1/models answers.

    Raises:
        RuntimeError: the server exited or did not answer within `wait_s` (the message has its log).
    """
    port = port or free_port()
    log_path = Path(tempfile.mkstemp(prefix="llama-server-", suffix=".log")[1])
    cmd = [sys.executable, "-m", "llama_cpp.server", "--model", str(model_path), "--model_alias", MODEL_ALIAS,
           "--host", "127.0.0.1", "--port", str(port), "--n_ctx", str(n_ctx), "--n_threads", str(threads),
           "--n_threads_batch", str(max(threads, 2)), "--seed", "0"]
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env={**os.environ, "PYTHONUNBUFFERED": "1"})
    server = LlamaServer(proc, f"http://127.0.0.1:{port}/v1", log_path)
    deadline = time.monotonic() + wait_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"llama_cpp.server exited with {proc.returncode}:\n{server.log_tail()}")
        try:
            with urllib.request.urlopen(server.url + "/models", timeout=2) as resp:
                if json.load(resp).get("data"):
                    return server
        except OSError:
            time.sleep(0.3)
    server.stop()
    raise RuntimeError(f"llama_cpp.server did not answer within {wait_s:.0f}s:\n{server.log_tail()}")
