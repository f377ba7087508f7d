"""`flan-jax eval --probe_text`: the forgetting probe sits beside the task scores in report.json
and report.md, equal to the loss computed by hand from the model's logits; bad input is one line."""
import json

import flax.linen as nn
import jax
import jax.numpy as jnp
import pytest

from flan_jax import cli
from flan_jax.data.tasks.registry import default_vocabulary
from flan_jax.models import params_io
from flan_jax.models.decoder import Decoder, DecoderConfig

TINY = DecoderConfig(vocab_size=1024, emb_dim=16, num_heads=2, num_kv_heads=1, head_dim=8,
                     mlp_dim=32, num_layers=1)
DOCS = ["The cat sat on the mat and looked at the door.", "Rain fell all day in the valley."]


def _hand_loss(model, params, chunk_length):
    """Mean next-token NLL of every chunk + EOS, with BOS 0 and the inputs shifted right."""
    vocab = default_vocabulary()
    nll, count = 0.0, 0
    for doc in DOCS:
        ids = vocab.encode(doc)
        for i in range(0, len(ids), chunk_length):
            target = ids[i:i + chunk_length] + [vocab.eos_id]
            logits = model.apply({"params": params}, {"decoder_input_tokens": jnp.asarray([[0] + target[:-1]])})[0]
            logp = jax.nn.log_softmax(logits, axis=-1)
            nll -= float(sum(logp[t, tok] for t, tok in enumerate(target)))
            count += len(target)
    return nll / count, count


@pytest.mark.slow
def test_eval_report_carries_the_forgetting_probe(tmp_path, capsys):
    model = Decoder(TINY)
    params = nn.meta.unbox(model.init(jax.random.PRNGKey(0), {"decoder_input_tokens": jnp.ones((1, 8), jnp.int32)})["params"])
    params_io.save_checkpoint(tmp_path / "ckpt", TINY, params)
    (tmp_path / "held.txt").write_text("\n\n".join(DOCS) + "\n")
    out = tmp_path / "out"
    status = cli.main(["eval", "--checkpoint", str(tmp_path / "ckpt"), "--mixture", "flan_mini.mini_parity:eval",
                       "--max_examples", "2", "--input_length", "56", "--target_length", "8",
                       "--templates", "first", "--probe_text", str(tmp_path / "held.txt"),
                       "--probe_chunk_length", "6", "--out", str(out)])
    assert status == 0
    report = json.loads((out / "report.json").read_text())
    want, tokens = _hand_loss(model, params, 6)
    probe = report["forgetting_probe"]
    assert probe["loss_per_token"] == pytest.approx(want, rel=1e-5)
    assert probe["tokens"] == tokens and probe["objective"] == "lm"
    assert probe["files"] == [str(tmp_path / "held.txt")]
    assert report["tasks"][0]["task"] == "flan_mini.mini_parity:eval"  # the task scores are still there
    md = (out / "report.md").read_text()
    assert f"Forgetting probe (LM loss on held-back text, lower is better): {want:.4f} nats/token" in md
    assert f"forgetting probe: {want:.4f} nats/token" in capsys.readouterr().out


@pytest.mark.parametrize("name, content, fragment", [
    ("missing.txt", None, "missing.txt: no such file"),
    ("empty.txt", "\n\n", "empty.txt: no documents"),
    ("bad.jsonl", '{"text": 3}\n', "bad.jsonl:1: field 'text' must be a non-empty string"),
    ("short.txt", "ok", "--probe_chunk_length must be >= 2"),
])
def test_bad_probe_text_is_one_line_naming_the_file(tmp_path, capsys, name, content, fragment):
    model = Decoder(TINY)
    params = nn.meta.unbox(model.init(jax.random.PRNGKey(0), {"decoder_input_tokens": jnp.ones((1, 8), jnp.int32)})["params"])
    params_io.save_checkpoint(tmp_path / "ckpt", TINY, params)
    if content is not None:
        (tmp_path / name).write_text(content)
    status = cli.main(["eval", "--checkpoint", str(tmp_path / "ckpt"), "--mixture", "flan_mini.mini_parity:eval",
                       "--max_examples", "1", "--input_length", "56", "--target_length", "8",
                       "--templates", "first", "--probe_text", str(tmp_path / name), "--out", str(tmp_path / "o"),
                       *(["--probe_chunk_length", "1"] if name == "short.txt" else [])])
    err = capsys.readouterr().err.strip().splitlines()
    assert status == 2 and len(err) == 1 and fragment in err[0], err
    assert name == "short.txt" or str(tmp_path / name) in err[0]
    assert not (tmp_path / "o").exists()
