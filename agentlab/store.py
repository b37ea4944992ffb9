"""The content-addressed call cache (SQLite) and the run directory.

Every completed call is committed before it counts as done, so a run killed at any moment
(`kill -9`) resumes without repeating a completed call. Failed calls are not cached: a
re-run retries them.
"""

from __future__ import annotations

import json
import os
import sqlite3
import tempfile
import threading
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from agentlab.errors import ConfigError


class CallCache:
    """key -> ChatResult JSON in SQLite (WAL). `path=None` disables caching."""

    def __init__(self, path: Path | None):
        self.path = path
        self._lock = threading.Lock()
        self._db: sqlite3.Connection | None = None
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(str(path), check_same_thread=False, isolation_level=None, timeout=30)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._db.execute("CREATE TABLE IF NOT EXISTS calls (key TEXT PRIMARY KEY, result TEXT NOT NULL, created REAL DEFAULT (julianday('now')))")

    def get_many(self, keys: Iterable[str]) -> dict[str, dict[str, Any]]:
        """Cached results (as dicts) for the given keys."""
        if self._db is None:
            return {}
        keys = list(dict.fromkeys(keys))
        out: dict[str, dict[str, Any]] = {}
        with self._lock:
            for i in range(0, len(keys), 500):
                chunk = keys[i : i + 500]
                q = f"SELECT key, result FROM calls WHERE key IN ({','.join('?' * len(chunk))})"
                for k, v in self._db.execute(q, chunk):
                    out[k] = json.loads(v)
        return out

    def put(self, key: str, result: dict[str, Any]) -> None:
        """Store one completed call (committed immediately)."""
        if self._db is None:
            return
        with self._lock:
            self._db.execute("INSERT OR REPLACE INTO calls (key, result) VALUES (?, ?)", (key, json.dumps(result)))

    def __len__(self) -> int:
        if self._db is None:
            return 0
        with self._lock:
            return self._db.execute("SELECT COUNT(*) FROM calls").fetchone()[0]

    def close(self) -> None:
        """Close the database."""
        if self._db is not None:
            with self._lock:
                self._db.close()
            self._db = None


def user_cache_dir() -> Path:
    """`$AGENTLAB_CACHE_DIR`, else `$XDG_CACHE_HOME/agentlab`, else `~/.cache/agentlab`."""
    env = os.environ.get("AGENTLAB_CACHE_DIR")
    if env:
        return Path(env)
    return Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "agentlab"


class RunDir:
    """The run directory. Every artifact path is checked to stay inside it."""

    def __init__(self, root: Path):
        self.root = root.resolve()

    def path(self, rel: str | Path) -> Path:
        """`root/rel`, refusing paths that escape the run directory."""
        p = (self.root / rel).resolve()
        if p != self.root and self.root not in p.parents:
            raise ConfigError(f"output path {str(rel)!r} escapes the run directory {self.root}")
        p.parent.mkdir(parents=True, exist_ok=True)
        return p

    def write_text(self, rel: str, text: str) -> Path:
        """Atomically write a text file inside the run directory."""
        p = self.path(rel)
        fd, tmp = tempfile.mkstemp(dir=p.parent, prefix=f".{p.name}.")
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
        os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, p)
        return p

    def write_jsonl(self, rel: str, rows: Iterable[dict[str, Any]]) -> Path:
        """Atomically write rows as JSON lines."""
        return self.write_text(rel, "".join(json.dumps(r, ensure_ascii=False, default=_json_default) + "\n" for r in rows))

    def write_json(self, rel: str, obj: Any) -> Path:
        """Atomically write pretty JSON."""
        return self.write_text(rel, json.dumps(obj, indent=2, ensure_ascii=False, default=_json_default) + "\n")


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _json_default(o: Any) -> Any:
    try:
        import numpy as np

        if isinstance(o, np.generic):
            return o.item()
        if isinstance(o, np.ndarray):
            return o.tolist()
    except ImportError:  # pragma: no cover
        pass
    if isinstance(o, Path):
        return str(o)
    raise TypeError(f"not JSON serialisable: {type(o).__name__}")
