"""forgetting_probe against a direct next-token computation with the model's logits."""
import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from flan_jax.eval.forgetting import forgetting_probe
from flan_jax.models.decoder import Decoder, DecoderConfig
from flan_jax.models.t5 import T5, T5Config

DEC = DecoderConfig(vocab_size=64, emb_dim=16, num_heads=2, num_kv_heads=1, head_dim=8, mlp_dim=32,
                    num_layers=1)


class _Vocab:
    vocab_size, extra_ids, eos_id = 64, 10, 1

    def encode(self, text):
        return [3 + ord(c) % 40 for c in text]

    def decode(self, ids):
        return ""


def test_decoder_probe_equals_hand_computed_next_token_loss():
    model = Decoder(DEC)
    params = nn.meta.unbox(model.init(jax.random.PRNGKey(0), {"decoder_input_tokens": jnp.ones((1, 4), jnp.int32)})["params"])
    docs = ["hello world", "abc"]
    got = forgetting_probe(model, params, docs, _Vocab(), chunk_length=5, batch_size=2)
    nll, count = 0.0, 0
    for doc in docs:
        ids = _Vocab().encode(doc)
        for i in range(0, len(ids), 5):
            target = ids[i:i + 5] + [1]
            inp = [0] + target[:-1]  # BOS 0, shifted right
            logits = model.apply({"params": params}, {"decoder_input_tokens": jnp.asarray([inp])})[0]
            logp = jax.nn.log_softmax(logits, axis=-1)
            nll -= float(sum(logp[t, tok] for t, tok in enumerate(target)))
            count += len(target)
    assert got["tokens"] == count and got["chunks"] == 4 and got["objective"] == "lm"
    assert got["loss_per_token"] == pytest.approx(nll / count, rel=1e-5)


def test_t5_probe_uses_span_corruption_and_changes_with_params():
    cfg = T5Config(vocab_size=64, emb_dim=16, num_heads=2, head_dim=8, mlp_dim=32,
                   num_encoder_layers=1, num_decoder_layers=1)
    model = T5(cfg)
    batch = {"encoder_input_tokens": jnp.ones((1, 4), jnp.int32), "decoder_input_tokens": jnp.ones((1, 4), jnp.int32)}
    params = nn.meta.unbox(model.init(jax.random.PRNGKey(0), batch)["params"])
    docs = ["a longer document for span corruption to work on"]
    a = forgetting_probe(model, params, docs, _Vocab(), chunk_length=20)
    assert a["objective"] == "span_corruption" and a["loss_per_token"] > 0
    again = forgetting_probe(model, params, docs, _Vocab(), chunk_length=20)
    assert again == a  # content-seeded corruption: the same inputs each time
    other = jax.tree.map(lambda x: x * 1.5, params)
    assert forgetting_probe(model, other, docs, _Vocab(), chunk_length=20)["loss_per_token"] != a["loss_per_token"]
