"""Every model family: the loss through `apply(..., return_hidden=True)` and the head at the loss
positions only has the same value and the same gradient w.r.t. every parameter as the loss on
the full [B, L, V] logits of `apply(...)` (z-loss and label smoothing on)."""
import jax
import numpy as np
import pytest

from flan_jax.models.decoder import Decoder, DecoderConfig
from flan_jax.models.t5 import T5, T5Config
from flan_jax.train.loss import cross_entropy_loss, head_cross_entropy_loss

VOCAB = 37
LOSS = dict(z_loss=1e-3, label_smoothing=0.1)


def decoder_batch(rng, rows=2, length=32, packed=True):
    """Rows of two segments (packed) or one (unpacked); loss on the second half of each segment."""
    halves = [length // 2, length - length // 2] if packed else [length]
    segments, positions, weights, prefix = [], [], [], []
    for i, n in enumerate(halves, start=1):
        segments += [i] * n
        positions += list(range(n))
        weights += [0] * (n // 2) + [1] * (n - n // 2)
        prefix += [1] * (n // 2) + [0] * (n - n // 2)
    tile = lambda x: np.tile(np.array([x], np.int32), (rows, 1))  # noqa: E731
    targets = rng.integers(2, VOCAB, size=(rows, length)).astype(np.int32)
    batch = {"decoder_target_tokens": targets,
             "decoder_input_tokens": np.concatenate([np.zeros((rows, 1), np.int32), targets[:, :-1]], 1),
             "decoder_loss_weights": tile(weights).astype(np.float32),
             "decoder_causal_attention": tile(prefix)}
    if packed:
        batch.update(decoder_segment_ids=tile(segments), decoder_positions=tile(positions))
    return batch


def assert_same_loss_and_grads(model, batch, capacity, groups=1, **apply_kw):
    params = model.init(jax.random.PRNGKey(0), batch)["params"]

    def full(p):
        return cross_entropy_loss(model.apply({"params": p}, batch, **apply_kw), batch, **LOSS)

    def positions(p):
        hidden, head = model.apply({"params": p}, batch, return_hidden=True, **apply_kw)
        return head_cross_entropy_loss(hidden, head, batch, capacity=capacity, groups=groups, **LOSS)

    (lf, af), gf = jax.jit(jax.value_and_grad(full, has_aux=True))(params)
    (lp, ap), gp = jax.jit(jax.value_and_grad(positions, has_aux=True))(params)
    np.testing.assert_allclose(lp, lf, rtol=1e-5)
    np.testing.assert_allclose(ap["z_loss"], af["z_loss"], rtol=1e-5)
    assert float(ap["correct"]) == float(af["correct"])
    flat_f = dict(jax.tree_util.tree_leaves_with_path(gf))
    for path, g in jax.tree_util.tree_leaves_with_path(gp):
        ref = flat_f[path]
        assert np.abs(ref).max() > 0, jax.tree_util.keystr(path)  # every parameter gets a gradient
        np.testing.assert_allclose(g, ref, rtol=2e-4, atol=2e-6 * np.abs(ref).max(),
                                   err_msg=jax.tree_util.keystr(path))


@pytest.mark.slow
@pytest.mark.parametrize("prefix_lm,packed,tied", [
    (False, True, False), (True, True, False), (False, False, True), (True, False, False)])
def test_decoder_head_at_positions_equals_full(prefix_lm, packed, tied):
    cfg = DecoderConfig(vocab_size=VOCAB, emb_dim=16, num_heads=2, num_kv_heads=1, head_dim=8, mlp_dim=24,
                        num_layers=2, prefix_lm=prefix_lm, tie_embeddings=tied)
    batch = decoder_batch(np.random.default_rng(1), packed=packed)
    # 64 positions, 32 with loss; capacity 0.125 -> chunks of 8: the first and three overflow chunks
    assert_same_loss_and_grads(Decoder(cfg), batch, capacity=0.125, groups=2 if packed else 1)


@pytest.mark.slow
@pytest.mark.parametrize("tied", [False, True])
def test_t5_head_at_positions_equals_full(tied):
    cfg = T5Config(vocab_size=VOCAB, emb_dim=16, num_heads=2, head_dim=8, mlp_dim=24, num_encoder_layers=1,
                   num_decoder_layers=1, tie_embeddings=tied)
    rng = np.random.default_rng(2)
    rows, enc_len, dec_len = 2, 12, 24
    targets = rng.integers(2, VOCAB, size=(rows, dec_len)).astype(np.int32)
    targets[:, 15:] = 0  # unpacked rows with padding: 15 loss positions of 24 per row
    batch = {"encoder_input_tokens": rng.integers(2, VOCAB, size=(rows, enc_len)).astype(np.int32),
             "decoder_target_tokens": targets,
             "decoder_input_tokens": np.concatenate([np.zeros((rows, 1), np.int32), targets[:, :-1]], 1),
             "decoder_loss_weights": (targets > 0).astype(np.float32)}
    assert_same_loss_and_grads(T5(cfg), batch, capacity=0.25)
