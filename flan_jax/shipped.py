"""Where the repo's top-level data folders (`mixtures/`, `gin_configs/`) are found at run time.

One list for every reader, so a new install layout is added once: the source tree (a checkout or
an editable install), then where a non-editable `pip install` puts pyproject's data-files. pip
uses the scheme's "data" path (/usr/local on Debian's system Python, where sys.prefix is /usr);
sys.prefix covers venvs and conda.
"""
from __future__ import annotations

import sys
import sysconfig
from pathlib import Path


def shipped_dir_candidates(name: str) -> list[Path]:
    """Candidate locations of the folder `name`, in lookup order (existing or not).

    Worked example (Debian's system Python, sys.prefix /usr, data path /usr/local):
    shipped_dir_candidates("mixtures") ->
    [<source tree>/mixtures, /usr/local/share/flan_jax/mixtures, /usr/share/flan_jax/mixtures]
    (in a venv the last two are the same folder).
    """
    return [
        Path(__file__).resolve().parents[1] / name,
        Path(sysconfig.get_path("data")) / "share" / "flan_jax" / name,
        Path(sys.prefix) / "share" / "flan_jax" / name,
    ]
