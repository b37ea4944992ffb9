"""The content-addressed call cache (SQLite) and the run directory.

Completed calls are written in groups: a background thread commits what arrived in the last
``flush_interval`` seconds (50 ms by default) as one SQLite transaction, which costs far less CPU
than a commit per call. A run killed at any moment (`kill -9`) therefore repeats at most the calls
that were in flight plus those that completed in the last ``flush_interval`` seconds before the
kill. Failed calls are not cached: a re-run retries them.
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
    """key -> ChatResult JSON in SQLite (WAL). `path=None` disables caching.

    Args:
        path: the database file, or None for no cache.
        flush_interval: seconds between group commits of buffered puts (0: commit every put at once).
    """

    def __init__(self, path: Path | None, flush_interval: float = 0.05):
        self.path = path
        self.flush_interval = flush_interval
        self._lock = threading.Lock()
        self._db: sqlite3.Connection | None = None
        self._pending: dict[str, str] = {}  # key -> result JSON, not yet committed
        self._wake = threading.Event()
        self._flusher: threading.Thread | None = None
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(str(path), check_same_thread=False, isolation_level=None, timeout=30)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._db.execute("CREATE TABLE IF NOT EXISTS calls (key TEXT PRIMARY KEY, result TEXT NOT NULL, created REAL DEFAULT (julianday('now')))")

    def get_many(self, keys: Iterable[str]) -> dict[str, dict[str, Any]]:
        """Cached results (as dicts) for the given keys (committed or still buffered)."""
        if self._db is None:
            return {}
        keys = list(dict.fromkeys(keys))
        out: dict[str, dict[str, Any]] = {}
        with self._lock:
            for k in keys:
                if k in self._pending:
                    out[k] = json.loads(self._pending[k])
            rest = [k for k in keys if k not in out]
            for i in range(0, len(rest), 500):
                chunk = rest[i : i + 500]
                q = f"SELECT key, result FROM calls WHERE key IN ({','.join('?' * len(chunk))})"
                for k, v in self._db.execute(q, chunk):
                    out[k] = json.loads(v)
        return out

    def put(self, key: str, result: dict[str, Any]) -> None:
        """Store one completed call: committed within `flush_interval` seconds (at once when it is 0)."""
        self.put_json(key, json.dumps(result))

    def put_json(self, key: str, text: str) -> None:
        """:meth:`put` for a result already serialised as JSON."""
        if self._db is None:
            return
        with self._lock:
            if self.flush_interval <= 0:
                self._db.execute("INSERT OR REPLACE INTO calls (key, result) VALUES (?, ?)", (key, text))
                return
            self._pending[key] = text
            if self._flusher is None:
                self._flusher = threading.Thread(target=self._flush_loop, daemon=True, name="agentlab-cache-flush")
                self._flusher.start()

    def flush(self) -> None:
        """Commit every buffered put now (one transaction)."""
        with self._lock:
            self._commit()

    def _commit(self) -> None:
        if not self._pending or self._db is None:
            return
        items, self._pending = list(self._pending.items()), {}
        self._db.execute("BEGIN")
        try:
            self._db.executemany("INSERT OR REPLACE INTO calls (key, result) VALUES (?, ?)", items)
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        self._db.execute("COMMIT")

    def _flush_loop(self) -> None:
        while not self._wake.wait(self.flush_interval):
            with self._lock:
                if self._db is None:
                    return
                self._commit()

    def __len__(self) -> int:
        if self._db is None:
            return 0
        with self._lock:
            self._commit()
            return self._db.execute("SELECT COUNT(*) FROM calls").fetchone()[0]

    def close(self) -> None:
        """Commit what is buffered and close the database."""
        self._wake.set()
        if self._flusher is not None:
            self._flusher.join(5)
            self._flusher = None
        if self._db is not None:
            with self._lock:
                self._commit()
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
