"""Image inputs: OpenAI-style `image_url` parts; local files become data URLs."""

from __future__ import annotations

import base64
import mimetypes
from pathlib import Path
from typing import Any

from agentlab.errors import ConfigError


def image_part(ref: str, base_dir: Path | None = None) -> dict[str, Any]:
    """An `image_url` message part for a URL, a data URL, or a local file (read and base64-encoded)."""
    if ref.startswith(("http://", "https://", "data:")):
        return {"type": "image_url", "image_url": {"url": ref}}
    path = Path(ref).expanduser()
    if not path.is_absolute() and base_dir is not None and not path.exists():
        path = base_dir / path
    if not path.is_file():
        raise ConfigError(f"image {ref!r} not found")
    mime = mimetypes.guess_type(path.name)[0] or "image/png"
    data = base64.b64encode(path.read_bytes()).decode()
    return {"type": "image_url", "image_url": {"url": f"data:{mime};base64,{data}"}}


def user_message(text: str, images: list[str] | None = None, base_dir: Path | None = None) -> dict[str, Any]:
    """A user message with text and, optionally, numbered images (e.g. video frames)."""
    if not images:
        return {"role": "user", "content": text}
    parts: list[dict[str, Any]] = []
    for i, ref in enumerate(images):
        if len(images) > 1:
            parts.append({"type": "text", "text": f"Frame {i + 1}:"})
        parts.append(image_part(ref, base_dir))
    parts.append({"type": "text", "text": text})
    return {"role": "user", "content": parts}
