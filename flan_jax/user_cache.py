"""The user's flan_jax cache folder and the atomic file write every cached artefact uses.

    cache_dir()                                  -> ~/.cache/flan_jax (or $FLAN_JAX_CACHE)
    atomic_write(b"...", cache_dir() / "vocab" / "x.model")   written to a temporary sibling, renamed

Vocabularies (data/features/vocab.py, gguf_vocab.py), the converted main-job base and the XLA
compilation cache live under `cache_dir()`; a reader never sees a half-written file.
"""
from __future__ import annotations

import os
import tempfile
from pathlib import Path


def cache_dir() -> Path:
    """FLAN_JAX_CACHE if set, else ~/.cache/flan_jax (created on first build, not here)."""
    env = os.environ.get("FLAN_JAX_CACHE")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "flan_jax"


def atomic_write(data: bytes, out_path: Path) -> None:
    """Writes `data` to `out_path` through a temporary file in the same folder and a rename."""
    out_path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=out_path.name + ".", suffix=".tmp", dir=out_path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, out_path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
