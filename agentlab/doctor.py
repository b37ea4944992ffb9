"""`agentlab doctor`: run the native pieces once, each in a child process, and say what died and how to fix it.

A crash inside llama.cpp (a build for another CPU, e.g. `-march=native` code on a CPU with Intel AMX)
kills the whole process with a signal and no Python traceback. Running the embedded model first in a
child process turns that into one readable line: which backend, which signal, and the fix.
"""

from __future__ import annotations

import json
import platform
import signal
import subprocess
import sys
from dataclasses import dataclass, field
from typing import Any

REBUILD_FIX = ("rebuild llama-cpp-python with CMAKE_ARGS=-DGGML_NATIVE=OFF "
               "(`make clean install`, or: CMAKE_ARGS=-DGGML_NATIVE=OFF pip install --no-cache-dir "
               "--force-reinstall --no-deps --no-binary llama-cpp-python llama-cpp-python)")
# the CPU features llama.cpp cares about, as /proc/cpuinfo names them
CPU_FLAGS = ("avx", "avx2", "fma", "f16c", "avx512f", "avx512_vnni", "avx512_bf16", "amx_tile", "amx_int8", "amx_bf16")


@dataclass
class Probe:
    """The outcome of one child-process check."""

    name: str
    ok: bool
    message: str
    details: dict[str, Any] = field(default_factory=dict)

    def line(self) -> str:
        """One line for the terminal."""
        return f"{'ok ' if self.ok else 'FAIL'} {self.name}: {self.message}"


def cpu_flags() -> list[str]:
    """The llama.cpp-relevant flags of this CPU (Linux; empty elsewhere)."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("flags"):
                    have = set(line.split(":", 1)[1].split())
                    return [fl for fl in CPU_FLAGS if fl in have]
    except OSError:
        pass
    return []


def llama_installed() -> bool:
    """llama-cpp-python importable (found without importing it)."""
    import importlib.util

    return importlib.util.find_spec("llama_cpp") is not None


def _signal_name(code: int) -> str:
    try:
        return signal.Signals(-code).name
    except ValueError:
        return f"signal {-code}"


def probe_embedded(timeout: float = 300.0, model_path: str | None = None) -> Probe:
    """Load the embedded GGUF and answer twice (option scoring and free text) in a child process."""
    if not llama_installed():
        return Probe("embedded", False, "llama-cpp-python is not installed: pip install 'agentlab[embedded]'")
    cmd = [sys.executable, "-c", "import sys; from agentlab.doctor import _child_embedded; _child_embedded(sys.argv[1:])"]
    if model_path:
        cmd.append(model_path)
    try:
        proc = subprocess.run(cmd, check=False, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return Probe("embedded", False, f"no answer within {timeout:.0f}s running the model (machine overloaded, or a hang in llama.cpp)")
    model = (model_path or "SmolLM2").rsplit("/", 1)[-1]
    if proc.returncode < 0:
        sig = _signal_name(proc.returncode)
        return Probe("embedded", False, f"crashed ({sig}) running {model}; {REBUILD_FIX}",
                     {"signal": sig, "stderr_tail": proc.stderr[-2000:]})
    last = proc.stdout.strip().splitlines()[-1:] or [""]
    try:
        info = json.loads(last[0])
    except json.JSONDecodeError:
        return Probe("embedded", False, f"the check exited {proc.returncode}: {proc.stderr.strip()[-500:] or 'no output'}")
    if not info.get("ok"):
        return Probe("embedded", False, info.get("error", "failed"), info)
    msg = (f"{info['model']} ran: scored 2 options by log-likelihood, wrote {info['completion_tokens']} tokens "
           f"({info['seconds']:.1f}s); llama-cpp-python {info['version']}")
    return Probe("embedded", True, msg, info)


def _child_embedded(argv: list[str]) -> None:
    """Child side of `probe_embedded`: print one JSON line (a crash kills this process, not the parent)."""
    import time

    out: dict[str, Any] = {"ok": False}
    try:
        import llama_cpp

        from agentlab.backends.base import ChatRequest
        from agentlab.backends.embedded import EmbeddedBackend, EmbeddedConfig

        out["version"] = llama_cpp.__version__
        backend = EmbeddedBackend(EmbeddedConfig(model_path=argv[0] if argv else None, n_ctx=512))
        out["model"] = backend.path.name
        t0 = time.perf_counter()
        msgs = [{"role": "user", "content": "Review: 'I loved it, wonderful acting.' Is the review positive or negative?"}]
        scored, written = backend.generate([ChatRequest(messages=msgs, options=["positive", "negative"]),
                                            ChatRequest(messages=msgs, max_tokens=8, temperature=0.0)])
        out["seconds"] = time.perf_counter() - t0
        for res in (scored, written):
            if not res.ok:
                raise RuntimeError(res.error)
        out.update(ok=True, choice=scored.text, completion_tokens=written.completion_tokens,
                   system_info=llama_cpp.llama_print_system_info().decode(errors="replace").strip())
    except Exception as exc:  # reported by the parent as a failed check
        out["error"] = f"{type(exc).__name__}: {exc}"
    print(json.dumps(out), flush=True)


def build_notes(info: dict[str, Any]) -> list[str]:
    """Warnings comparing the llama.cpp build's CPU features with this CPU's."""
    sysinfo = info.get("system_info", "")
    have = set(cpu_flags())
    notes = []
    if "AMX_INT8 = 1" in sysinfo and not {"amx_int8", "amx_tile"} <= have:
        notes.append("llama.cpp was built with AMX but this CPU has none: " + REBUILD_FIX)
    if "AVX512 = 1" in sysinfo and "avx512f" not in have:
        notes.append("llama.cpp was built with AVX-512 but this CPU has none: " + REBUILD_FIX)
    return notes


def run_checks(model_path: str | None = None) -> list[Probe]:
    """Every check `agentlab doctor` prints, in order."""
    import importlib.metadata as md

    def version(pkg: str) -> str:
        try:
            return md.version(pkg)
        except md.PackageNotFoundError:
            return "not installed"

    flags = cpu_flags()
    probes = [Probe("machine", True, f"{platform.machine()}, Python {platform.python_version()}, CPU flags: "
                    f"{' '.join(flags) or 'unknown'}; llama-cpp-python {version('llama-cpp-python')}, "
                    f"torch {version('torch')}")]
    emb = probe_embedded(model_path=model_path)
    probes.append(emb)
    for note in build_notes(emb.details):
        probes.append(Probe("build", False, note))
    return probes
