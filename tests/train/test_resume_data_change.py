"""Resuming after the data changed under the same name is refused in one line naming what
changed (tasks, shares, a file's content); `train.allow_data_change` is the way out."""
import json
import shutil

import pytest

from flan_jax.data.mixing import mixtures
from flan_jax.errors import FlanJaxError
from flan_jax.models.decoder import DecoderConfig
from flan_jax.train.train import train

TINY = DecoderConfig(vocab_size=1024, emb_dim=16, num_heads=2, num_kv_heads=1, head_dim=8, mlp_dim=32, num_layers=1)
ARGS = dict(model=TINY, mixture="ident_m", feature_lengths={"inputs": 32, "targets": 8}, batch_size=8,
            checkpoint_every=1, log_every=100)
ROWS = {"a": [{"instruction": f"Say the colour number {i}.", "input": "", "output": f"red {i}"} for i in range(12)],
        "b": [{"instruction": f"Count to {i}.", "input": "", "output": f"{i}"} for i in range(12)]}


@pytest.fixture(autouse=True)
def _forget_tasks():
    yield
    import seqio

    for name in list(seqio.TaskRegistry.names()):
        if name.startswith("local.ident_"):
            seqio.TaskRegistry.remove(name)
    if "ident_m" in seqio.MixtureRegistry.names():
        seqio.MixtureRegistry.remove("ident_m")


def _declare(folder, include):
    for name, rows in ROWS.items():
        path = folder / f"{name}_train.jsonl"
        if not path.exists():
            path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    locals_ = "".join(f'[local.ident_{n}]\nfile_pattern = "{folder}/{n}_{{split}}.jsonl"\nformat = "alpaca"\n'
                      'splits = ["train"]\n\n' for n in ROWS)
    (folder / "ident.toml").write_text(f'{locals_}[mixture.ident_m]\nrate = "weights"\ninclude = {include}\n')


def _one_line_refusal(model_dir, **kwargs):
    with pytest.raises(FlanJaxError) as e:
        train(model_dir=str(model_dir), num_steps=2, **{**ARGS, **kwargs})
    text = str(e.value).splitlines()[0]  # (gin adds a line naming the configurable; the CLI prints the first)
    assert "another data stream" in text and text.endswith("bind train.allow_data_change=True"), text
    return text


@pytest.mark.slow
def test_a_redefined_mixture_is_refused_naming_what_changed(tmp_path, monkeypatch):
    folder = tmp_path / "mix"
    folder.mkdir()
    monkeypatch.setenv(mixtures.MIXTURES_PATH_ENV, str(folder))
    _declare(folder, '[{ local = "ident_a", weight = 1.0 }]')
    train(model_dir=str(tmp_path / "run"), num_steps=1, **ARGS)

    # the same name, another task
    _declare(folder, '[{ local = "ident_b", weight = 1.0 }]')
    text = _one_line_refusal(tmp_path / "run")
    assert "tasks removed: local.ident_a:zs_noopt" in text and "tasks added: local.ident_b:zs_noopt" in text

    # the same tasks, other weights
    _declare(folder, '[{ local = "ident_a", weight = 0.75 }, { local = "ident_b", weight = 0.25 }]')
    text = _one_line_refusal(tmp_path / "run")
    assert "tasks added: local.ident_b:zs_noopt" in text

    # the same declaration, the file's content changed (same size: one letter swapped)
    _declare(folder, '[{ local = "ident_a", weight = 1.0 }]')
    path = folder / "a_train.jsonl"
    before = path.read_text()
    path.write_text(before.replace("red 3", "rod 3"))
    text = _one_line_refusal(tmp_path / "run")
    assert f"file {path} changed" in text and "tasks removed" not in text and "tasks added" not in text

    # the explicit way out: the new stream from its beginning
    shutil.copytree(tmp_path / "run", tmp_path / "run2")
    r = train(model_dir=str(tmp_path / "run2"), num_steps=2, allow_data_change=True, **ARGS)
    assert r.step == 2 and r.batches_consumed == 1

    # the data as it was: resumes
    path.write_text(before)
    r = train(model_dir=str(tmp_path / "run"), num_steps=2, **ARGS)
    assert r.step == 2 and r.batches_consumed == 2
