"""A real Label Studio server for tests: its own port, temp data dir (SQLite) and user, started and stopped here.

The server comes from `make review-env` (.venv-ls: label-studio pins Django, openai<2, pyarrow<25 and ~1 GB of
packages, so it lives in its own virtualenv), else $LABEL_STUDIO_BIN, else `label-studio` on PATH.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import httpx

REPO = Path(__file__).resolve().parents[2]
USER, PASSWORD = "reviewer@example.com", "agentlab-review-1"


def server_binary() -> str | None:
    """Where the `label-studio` command is, or None."""
    for cand in (os.environ.get("LABEL_STUDIO_BIN"), str(REPO / ".venv-ls" / "bin" / "label-studio"), shutil.which("label-studio")):
        if cand and Path(cand).is_file():
            return cand
    return None


@dataclass
class Server:
    """A running server: its URL, a personal access token, the seconds it took to start."""

    url: str
    token: str
    start_seconds: float
    proc: subprocess.Popen

    def stop(self) -> None:
        """Stop the server and its children."""
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(5)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(binary: str, data_dir: Path, timeout: float = 600.0) -> Server:
    """Start Label Studio on a free port with a fresh SQLite data dir; wait until it answers; make a token."""
    port = _free_port()
    env = {**os.environ, "LABEL_STUDIO_BASE_DATA_DIR": str(data_dir), "LABEL_STUDIO_USERNAME": USER,
           "LABEL_STUDIO_PASSWORD": PASSWORD, "LABEL_STUDIO_DISABLE_SIGNUP_WITHOUT_LINK": "true",
           "SENTRY_DSN": "", "FRONTEND_SENTRY_DSN": "", "COLLECT_ANALYTICS": "false"}
    t0 = time.perf_counter()
    log = open(data_dir / "server.log", "w")  # noqa: SIM115 - the server writes here while it runs
    proc = subprocess.Popen([binary, "start", "--no-browser", "--internal-host", "127.0.0.1", "--port", str(port),
                             "--data-dir", str(data_dir), "--username", USER, "--password", PASSWORD],
                            env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    server = Server(url, "", 0.0, proc)
    try:
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"label-studio exited with {proc.returncode}: {(data_dir / 'server.log').read_text()[-2000:]}")
            if time.perf_counter() - t0 > timeout:
                raise RuntimeError(f"label-studio did not answer within {timeout:.0f}s")
            try:
                if httpx.get(f"{url}/health", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            time.sleep(1)
        server.start_seconds = time.perf_counter() - t0
        server.token = personal_access_token(url)
        return server
    except BaseException:
        server.stop()
        raise


def personal_access_token(url: str) -> str:
    """Log in as the user would and create a personal access token (Account & Settings -> Personal Access Token)."""
    with httpx.Client(base_url=url, timeout=30, follow_redirects=False) as web:
        page = web.get("/user/login/").text
        csrf = page.split('name="csrfmiddlewaretoken" value="', 1)[1].split('"', 1)[0]
        resp = web.post("/user/login/", data={"csrfmiddlewaretoken": csrf, "email": USER, "password": PASSWORD},
                        headers={"Referer": f"{url}/user/login/"})
        assert resp.status_code == 302, f"login failed: {resp.status_code} {resp.text[:300]}"
        resp = web.post("/api/token/", headers={"X-CSRFToken": web.cookies["csrftoken"], "Referer": f"{url}/"})
        resp.raise_for_status()
        return resp.json()["token"]
