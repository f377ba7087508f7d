"""drop_flagged: planted duplicates (within and across tasks), a near-duplicate and an evaluation
example copied into a training file are dropped, and only they; the counts match exactly, in the
mixture's leaves and in the training run's data statistics."""
import json
import logging

import numpy as np
import pytest

from flan_jax.data.audit import findings as audit, audit_filter
from flan_jax.data.mixing import mixtures

WORDS = [f"w{i}" for i in range(3000)]


@pytest.fixture(autouse=True)
def _forget_tasks():
    """The seqio registry is process-wide: leave no planted task (or mixture) behind."""
    yield
    import seqio

    for name in list(seqio.TaskRegistry.names()):
        if name.startswith("local.planted_"):
            seqio.TaskRegistry.remove(name)
    if "clean" in seqio.MixtureRegistry.names():
        seqio.MixtureRegistry.remove("clean")


def test_drop_counts_worked_example():
    ex = [audit.AuditExample("t", "train", i, text, "x") for i, text in enumerate(
        ["alpha beta", "gamma delta", "Alpha  beta", "epsilon zeta", " ".join(WORDS[:20])])]
    ev = [audit.AuditExample("e", "validation", 0, " ".join(WORDS[:20]), "x")]
    counts, positions = audit_filter.drop_counts(ex, ev, ["duplicates", "contaminated"])
    assert counts == {"t": {"audited": 5, "duplicates": 1, "near_duplicates": 0, "contaminated": 1, "dropped": 2}}
    assert positions == {"t": [2, 4]}
    counts, positions = audit_filter.drop_counts(ex, ev, ["contaminated"])
    assert counts["t"]["duplicates"] == 0 and positions == {"t": [4]}


def _planted(folder):
    """planted_a (`mine`): 20 rows, 7 and 12 copy 3, 15 copies validation row 2; planted_b
    (`other`): 10 rows, 4 copies mine 9, 8 is mine 11 with one word changed."""
    rng = np.random.default_rng(0)

    def row():
        return {"instruction": " ".join(rng.choice(WORDS, 30)), "input": "", "output": " ".join(rng.choice(WORDS, 5))}

    mine, other, val = [row() for _ in range(20)], [row() for _ in range(10)], [row() for _ in range(5)]
    mine[7], mine[12], mine[15], other[4] = dict(mine[3]), dict(mine[3]), dict(val[2]), dict(mine[9])
    words = mine[11]["instruction"].split()
    words[10] = "changed"
    other[8] = {**mine[11], "instruction": " ".join(words)}
    files = {"mine_train": mine, "other_train": other, "mine_validation": val, "other_validation": [row()]}
    for name, rows in files.items():
        (folder / f"{name}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    (folder / "clean.toml").write_text(f"""
[local.planted_a]
file_pattern = "{folder}/mine_{{split}}.jsonl"
format = "alpaca"
splits = ["train", "validation"]

[local.planted_b]
file_pattern = "{folder}/other_{{split}}.jsonl"
format = "alpaca"
splits = ["train", "validation"]

[mixture.clean]
rate = "equal"
include = [{{ local = "planted_a" }}, {{ local = "planted_b" }}]
drop_flagged = ["duplicates", "near_duplicates", "contaminated"]
audit_eval = "local.planted_a:zs_noopt"
""")
    kept = {"local.planted_a:zs_noopt": [r["output"] for i, r in enumerate(mine) if i not in (7, 12, 15)],
            "local.planted_b:zs_noopt": [r["output"] for i, r in enumerate(other) if i not in (4, 8)]}
    return folder / "clean.toml", kept


@pytest.mark.slow
def test_planted_examples_are_dropped_and_counted(tmp_path):
    import seqio

    path, kept = _planted(tmp_path)
    leaves = mixtures.register_mixture("clean", paths=[path])
    assert {leaf.task: dict(leaf.dropped) for leaf in leaves} == {
        "local.planted_a:zs_noopt": {"audited": 20, "duplicates": 2, "near_duplicates": 0, "contaminated": 1, "dropped": 3},
        "local.planted_b:zs_noopt": {"audited": 10, "duplicates": 1, "near_duplicates": 1, "contaminated": 0, "dropped": 2}}
    assert audit_filter.totals(leaves) == {"audit_audited": 30, "audit_duplicates": 3, "audit_near_duplicates": 1,
                                           "audit_contaminated": 1, "audit_dropped": 5}
    mixture = seqio.get_mixture_or_task("clean")
    assert sorted(t.name for t in mixture.tasks) == ["local.planted_a:zs_noopt#audited", "local.planted_b:zs_noopt#audited"]
    for task, outputs in kept.items():
        ds = seqio.get_mixture_or_task(task + "#audited").get_dataset(None, "train", shuffle=False, use_cached=False)
        assert [ex["targets_pretokenized"].decode() for ex in ds.as_numpy_iterator()] == outputs


@pytest.mark.slow
def test_training_reports_the_drop_counts(tmp_path, caplog, monkeypatch):
    from flan_jax.models.decoder import DecoderConfig
    from flan_jax.train.train import train

    folder = tmp_path / "data"
    folder.mkdir()
    _planted(folder)
    monkeypatch.setenv(mixtures.MIXTURES_PATH_ENV, str(folder))
    cfg = DecoderConfig(vocab_size=1024, emb_dim=16, num_heads=2, num_kv_heads=1, head_dim=8, mlp_dim=32, num_layers=1)
    with caplog.at_level(logging.INFO, logger="flan_jax.train"):
        train(model=cfg, mixture="clean", feature_lengths={"inputs": 64, "targets": 16}, batch_size=8,
              num_steps=1, log_every=1, model_dir=str(tmp_path / "run"))
    lines = [r.getMessage() for r in caplog.records if r.getMessage().startswith("data step 1")]
    counts = dict(kv.split("=") for kv in lines[0].split(": ", 1)[1].split())
    assert {k: float(v) for k, v in counts.items() if k.startswith("audit_")} == {
        "audit_audited": 30, "audit_duplicates": 3, "audit_near_duplicates": 1, "audit_contaminated": 1,
        "audit_dropped": 5}


@pytest.mark.parametrize("extra, fragment", [
    ('drop_flagged = ["dupes"]', "field 'drop_flagged' must be a list of duplicates, near_duplicates, contaminated"),
    ('drop_flagged = "duplicates"', "field 'drop_flagged' must be a list of"),
    ('drop_flagged = ["contaminated"]', "drop_flagged \"contaminated\" needs field 'audit_eval'"),
    ('drop_flagged = ["contaminated"]\naudit_eval = 3', "field 'audit_eval' must be a mixture or task name"),
    ('drop_flagged = ["duplicates"]\naudit_eval_split = ""', "field 'audit_eval_split' must be a split name"),
])
def test_bad_drop_options_name_file_and_field(tmp_path, extra, fragment):
    path = tmp_path / "m.toml"
    path.write_text(f'[mixture.m]\ninclude = [{{ task = "flan_mini.mini_add:zs_noopt" }}]\n{extra}\n')
    with pytest.raises(mixtures.MixtureError) as e:
        mixtures.load_files([path])
    assert str(e.value).startswith(f"{path}: mixture 'm': ") and fragment in str(e.value)


@pytest.mark.slow
def test_a_cache_with_drop_flagged_is_refused(tmp_path, monkeypatch):
    import gin

    from flan_jax.errors import FlanJaxError
    from flan_jax.models.decoder import DecoderConfig
    from flan_jax.train.train import train

    folder = tmp_path / "data"
    folder.mkdir()
    _planted(folder)
    monkeypatch.setenv(mixtures.MIXTURES_PATH_ENV, str(folder))
    cfg = DecoderConfig(vocab_size=1024, emb_dim=16, num_heads=2, num_kv_heads=1, head_dim=8, mlp_dim=32, num_layers=1)
    gin.bind_parameter("data_options.cache_dir", str(tmp_path / "cache"))
    try:
        with pytest.raises(FlanJaxError, match="drops audit-flagged examples .* does not apply yet"):
            train(model=cfg, mixture="clean", feature_lengths={"inputs": 64, "targets": 16}, batch_size=8,
                  num_steps=1, model_dir=str(tmp_path / "run"))
    finally:
        gin.clear_config()
    assert not (tmp_path / "run").exists()
