"""One lookup list for the shipped data folders, used by mixtures and gin alike."""
from __future__ import annotations

import sysconfig
from pathlib import Path

import pytest

from flan_jax import shipped
from flan_jax.data.mixing import mixtures
from flan_jax.train import gin_config

REPO = Path(__file__).resolve().parents[1]


def test_candidates_in_lookup_order(monkeypatch):
    monkeypatch.setattr(sysconfig, "get_path", lambda name: "/data-prefix" if name == "data" else None)
    monkeypatch.setattr(shipped.sys, "prefix", "/venv")
    assert shipped.shipped_dir_candidates("mixtures") == [
        REPO / "mixtures",
        Path("/data-prefix/share/flan_jax/mixtures"),
        Path("/venv/share/flan_jax/mixtures"),
    ]


def test_mixtures_and_gin_read_the_same_list(monkeypatch, tmp_path):
    # Only the installed (data prefix) copies exist: both readers find them there.
    for name in ("mixtures", "gin_configs"):
        (tmp_path / "share" / "flan_jax" / name).mkdir(parents=True)
    monkeypatch.delenv(mixtures.MIXTURES_DIR_ENV, raising=False)
    monkeypatch.delenv(gin_config.GIN_PATH_ENV, raising=False)
    def candidates(name):
        return [tmp_path / "missing" / name, tmp_path / "share" / "flan_jax" / name]

    monkeypatch.setattr(mixtures, "shipped_dir_candidates", candidates)
    monkeypatch.setattr(gin_config, "shipped_dir_candidates", candidates)
    assert mixtures.mixtures_dir() == tmp_path / "share" / "flan_jax" / "mixtures"
    assert str(tmp_path / "share" / "flan_jax" / "gin_configs") in gin_config.gin_search_paths()
    assert str(tmp_path / "missing" / "gin_configs") not in gin_config.gin_search_paths()


def test_no_mixtures_folder_names_every_place_looked(monkeypatch, tmp_path):
    monkeypatch.delenv(mixtures.MIXTURES_DIR_ENV, raising=False)
    monkeypatch.setattr(mixtures, "shipped_dir_candidates", lambda name: [tmp_path / "a" / name])
    with pytest.raises(mixtures.MixtureError, match=f"looked in {tmp_path / 'a' / 'mixtures'}"):
        mixtures.mixtures_dir()
