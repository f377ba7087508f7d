"""`flan-jax eval` shows its progress: with stderr not a terminal, one line per phase (loading,
reading the tasks, scoring) whose counts are the run's own (1 task, 4 examples); `--quiet`
leaves only the report on stdout."""
import re

import flax.linen as nn
import jax
import pytest

from flan_jax import cli, progress
from flan_jax.models import params_io
from flan_jax.models.decoder import Decoder, DecoderConfig, dummy_batch

TINY = DecoderConfig(vocab_size=1024, emb_dim=16, num_heads=2, num_kv_heads=1, head_dim=8, mlp_dim=32, num_layers=1)
SECONDS = r"\d+\.\d s"


@pytest.mark.slow
def test_eval_prints_one_line_per_phase_and_nothing_when_quiet(tmp_path, capsys, monkeypatch):
    monkeypatch.delenv(progress.QUIET_ENV, raising=False)
    params = nn.meta.unbox(Decoder(TINY).init(jax.random.PRNGKey(0), dummy_batch())["params"])
    params_io.save_checkpoint(tmp_path / "ckpt", TINY, params)
    argv = ["eval", "--checkpoint", str(tmp_path / "ckpt"), "--mixture", "flan_mini.mini_parity:eval",
            "--max_examples", "4", "--input_length", "32", "--target_length", "8", "--batch_size", "4",
            "--templates", "first"]
    capsys.readouterr()
    assert cli.main([*argv, "--out", str(tmp_path / "a")]) == 0
    err = [line for line in capsys.readouterr().err.splitlines() if line.startswith("eval: ")]
    assert len(err) == 3, err
    assert re.fullmatch(rf"eval: loading the checkpoint: {SECONDS}", err[0])
    assert re.fullmatch(rf"eval: reading tasks: 1/1 tasks in {SECONDS} \(.+\)", err[1])
    assert re.fullmatch(rf"eval: scoring: 4/4 examples in {SECONDS} \((?:.+ examples/s|.+ s/example)\)", err[2])
    try:
        assert cli.main([*argv, "--quiet", "--out", str(tmp_path / "b")]) == 0
        captured = capsys.readouterr()
        assert not [line for line in captured.err.splitlines() if line.startswith("eval: ")]
        assert "overall" in captured.out
    finally:
        progress.set_quiet(False)
