"""Drive a real headless Chromium over the DevTools protocol (websocket-client), for report.html tests.

Also a script that screenshots a report for the docs:
    .venv/bin/python tests/helpers/browser.py outputs/youtube_spam/report.html docs/img/report.png
"""

from __future__ import annotations

import base64
import itertools
import json
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

FLAGS = ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--disable-dev-shm-usage", "--remote-debugging-port=0", "--window-size=1400,1000"]


def find_chromium() -> str | None:
    """The Chromium executable (Debian's `chromium` package), or None."""
    for name in ("chromium", "chromium-browser", "google-chrome"):
        path = shutil.which(name)
        if path:
            return path
    return None


def why_no_browser() -> str | None:
    """None when a browser test can run here, else why not (for pytest.skip)."""
    if find_chromium() is None:
        return "Chromium is not installed (Debian: apt-get install -y chromium; `make browser` does it as root)"
    try:
        import websocket  # noqa: F401
    except ImportError:
        return "websocket-client is not installed (pip install 'agentlab[dev]')"
    return None


class Browser:
    """One headless Chromium with a fresh profile; `errors` collects JS exceptions and console/log errors."""

    def __init__(self, timeout: float = 30.0):
        import websocket

        self.profile = tempfile.mkdtemp(prefix="agentlab-chromium-")
        self.proc = subprocess.Popen([find_chromium(), *FLAGS, f"--user-data-dir={self.profile}", "about:blank"],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        port_file = Path(self.profile) / "DevToolsActivePort"
        deadline = time.time() + timeout
        while not (port_file.is_file() and port_file.read_text().strip()):
            if time.time() > deadline or self.proc.poll() is not None:
                self.close()
                raise RuntimeError("Chromium did not start (no DevToolsActivePort)")
            time.sleep(0.1)
        port = int(port_file.read_text().split()[0])
        targets = json.loads(urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list", timeout=timeout).read())
        page = next(t for t in targets if t["type"] == "page")
        self.ws = websocket.create_connection(page["webSocketDebuggerUrl"], timeout=timeout, suppress_origin=True)
        self._ids = itertools.count(1)
        self.events: list[dict[str, Any]] = []
        self.errors: list[str] = []
        for domain in ("Page", "Runtime", "Log"):
            self.send(f"{domain}.enable")

    def send(self, method: str, **params: Any) -> dict[str, Any]:
        """Call a DevTools method and return its result (events seen meanwhile are recorded)."""
        i = next(self._ids)
        self.ws.send(json.dumps({"id": i, "method": method, "params": params}))
        while True:
            msg = json.loads(self.ws.recv())
            if msg.get("id") == i:
                if "error" in msg:
                    raise RuntimeError(f"{method}: {msg['error']}")
                return msg.get("result", {})
            self._event(msg)

    def _event(self, msg: dict[str, Any]) -> None:
        self.events.append(msg)
        method, p = msg.get("method"), msg.get("params", {})
        if method == "Runtime.exceptionThrown":
            d = p["exceptionDetails"]
            self.errors.append(f"exception: {d.get('exception', {}).get('description') or d.get('text')}")
        elif method == "Runtime.consoleAPICalled" and p.get("type") in ("error", "assert"):
            self.errors.append("console.error: " + " ".join(str(a.get("value", a.get("description"))) for a in p.get("args", [])))
        elif method == "Log.entryAdded" and p["entry"].get("level") == "error":
            self.errors.append(f"log: {p['entry'].get('text')} {p['entry'].get('url', '')}")

    def open(self, path: Path, timeout: float = 30.0) -> None:
        """Navigate to a local file and wait for its load event."""
        n = len(self.events)
        self.send("Page.navigate", url=Path(path).resolve().as_uri())
        deadline = time.time() + timeout
        while not any(e.get("method") == "Page.loadEventFired" for e in self.events[n:]):
            if time.time() > deadline:
                raise TimeoutError(f"{path} did not finish loading")
            self._event(json.loads(self.ws.recv()))

    def eval(self, expression: str) -> Any:
        """The value of a JS expression in the page."""
        res = self.send("Runtime.evaluate", expression=expression, returnByValue=True)
        if "exceptionDetails" in res:
            raise RuntimeError(f"{expression}: {res['exceptionDetails'].get('text')}")
        return res["result"].get("value")

    def screenshot(self, out: Path, width: int = 1400, height: int = 1800, top: float = 0) -> Path:
        """A PNG of `height` pixels of the page from `top` (document coordinates) at `width`."""
        self.send("Emulation.setDeviceMetricsOverride", width=width, height=1000, deviceScaleFactor=1, mobile=False)
        data = self.send("Page.captureScreenshot", format="png", captureBeyondViewport=True,
                         clip={"x": 0, "y": top, "width": width, "height": height, "scale": 1})["data"]
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_bytes(base64.b64decode(data))
        return out

    def close(self) -> None:
        """Stop Chromium and remove its profile."""
        ws = getattr(self, "ws", None)
        if ws is not None:
            ws.close()
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        shutil.rmtree(self.profile, ignore_errors=True)

    def __enter__(self) -> Browser:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def main(argv: list[str]) -> int:
    """Screenshot a report.html (for docs/img/report.png)."""
    src, out = Path(argv[0]), Path(argv[1])
    with Browser() as b:
        b.open(src)
        b.eval("document.getElementById('f-disagree') && (document.getElementById('f-disagree').checked = true,"
               " document.getElementById('f-disagree').dispatchEvent(new Event('change')))")
        top = b.eval("document.getElementById('rows').getBoundingClientRect().top + window.scrollY - 60")
        b.screenshot(out, top=max(0, top))
        shown = b.eval("document.getElementById('shown-count').textContent")
        print(f"{out}: {shown}; JS errors: {b.errors or 'none'}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
