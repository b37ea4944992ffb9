"""Content-addressed artifacts for the queries task: trained folders, corpus embeddings, generation journal.

A trained soft prompt or retriever lives in a folder named by the hash of everything that made it
(data + config), written to a temporary folder and renamed when complete, so a killed run never
leaves a half-written artifact that a re-run would trust. Corpus embeddings are cached the same
way, keyed by the model's weights and the corpus content.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

log = logging.getLogger("agentlab")
DONE_FILE = "agentlab_student.json"  # written last by every agentlab student


def content_hash(obj: Any, n: int = 16) -> str:
    """A short stable hash of JSON-able data."""
    blob = json.dumps(obj, sort_keys=True, ensure_ascii=False, default=str).encode("utf-8")
    return hashlib.sha256(blob).hexdigest()[:n]


def corpus_hash(ids: Sequence[str], texts: Sequence[str]) -> str:
    """Hash of a corpus (ids and texts, in order)."""
    h = hashlib.sha256()
    for i, t in zip(ids, texts):
        h.update(str(i).encode("utf-8") + b"\0" + t.encode("utf-8") + b"\1")
    return h.hexdigest()[:16]


def folder_fingerprint(path: Path) -> str:
    """Hash of a model folder's weights and configs (so a retrained model never reuses old embeddings)."""
    h = hashlib.sha256()
    for f in sorted(p for p in Path(path).rglob("*") if p.is_file() and p.suffix in (".safetensors", ".bin", ".json")):
        h.update(str(f.relative_to(path)).encode("utf-8"))
        with f.open("rb") as fh:
            for chunk in iter(lambda: fh.read(1 << 20), b""):
                h.update(chunk)
    return h.hexdigest()[:16]


def cached_folder(parent: Path, name: str, build: Callable[[Path], Any], fresh: bool = False) -> tuple[Path, bool]:
    """`parent/name`, built by `build(tmp_folder)` unless a complete copy exists.

    Returns:
        (folder, reused): reused is True when an earlier run's folder was kept.
    """
    target = Path(parent) / name
    if (target / DONE_FILE).is_file() and not fresh:
        return target, True
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=target.parent, prefix=f".{name}."))
    try:
        build(tmp)
        if target.exists():
            shutil.rmtree(target)
        os.replace(tmp, target)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return target, False


class EmbeddingCache:
    """Corpus embeddings on disk (`<key>.npy`), keyed by model fingerprint + settings + corpus hash."""

    def __init__(self, folder: Path | None):
        self.folder = Path(folder) if folder is not None else None
        self.hits = self.misses = 0

    def get(self, key: str, compute: Callable[[], Any]):
        """The cached array for `key`, or `compute()` stored atomically."""
        import numpy as np

        path = self.folder / f"{key}.npy" if self.folder is not None else None
        if path is not None and path.is_file():
            try:
                arr = np.load(path)
                self.hits += 1
                return arr
            except (OSError, ValueError):  # a damaged file is recomputed
                log.warning("embedding cache %s unreadable; recomputing", path)
        self.misses += 1
        arr = np.asarray(compute(), dtype=np.float32)
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.stem}.", suffix=".npy")
            with os.fdopen(fd, "wb") as f:
                np.save(f, arr)
            os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes it private; the cache is shared like any file
            os.replace(tmp, path)
        return arr


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask
