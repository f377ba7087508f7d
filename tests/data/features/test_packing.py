"""Packing: hand-worked row assignments, segment isolation, pack -> unpack round trips."""
import numpy as np
import pytest

from flan_jax.data.features import converters as F
from flan_jax.data.features import packing as P


def _seg(dec_len, enc_len=0, start=10):
    dec = np.arange(start, start + dec_len, dtype=np.int32)
    return F.Segment(np.arange(start, start + enc_len, dtype=np.int32), dec, np.ones(dec_len, np.int32), 0)


def _sizes(rows):
    return [[s.decoder.size for s in row] for row in rows]


def test_best_fit_decreasing_by_hand():
    segs = [_seg(n) for n in (5, 4, 3, 4)]
    rows = P.pack_segments(segs, P.BestFitPacker((0, 8), buffer_size=8))
    assert _sizes(rows) == [[5, 3], [4, 4]]
    greedy = P.pack_segments(segs, P.GreedyPacker((0, 8), flush_every=8))
    assert _sizes(greedy) == [[5], [4, 3], [4]]


def test_best_fit_picks_tightest_row():
    # sorted 8, 6, 3, 1 -> rows [8] (2 free) and [6, 3] (1 free); the 1 fits both and goes where it
    # leaves the least free space (first fit would put it next to the 8)
    segs = [_seg(n) for n in (1, 3, 6, 8)]
    rows = P.pack_segments(segs, P.BestFitPacker((0, 10), buffer_size=8))
    assert _sizes(rows) == [[8], [6, 3, 1]]


def test_enc_dec_both_lengths_constrain_the_row():
    # decoder parts 3 + 3 > 4 although the encoder parts 2 + 2 fit in 8; (6, 1) fits next to either
    segs = [_seg(3, enc_len=2), _seg(3, enc_len=2), _seg(1, enc_len=6)]
    rows = P.pack_segments(segs, P.BestFitPacker((8, 4), buffer_size=8))
    assert [[(s.encoder.size, s.decoder.size) for s in r] for r in rows] == [[(2, 3), (6, 1)], [(2, 3)]]
    greedy = P.pack_segments(segs, P.GreedyPacker((8, 4), flush_every=8))
    assert [[(s.encoder.size, s.decoder.size) for s in r] for r in greedy] == [[(2, 3)], [(2, 3), (6, 1)]]


def test_open_rows_carry_over_between_rounds():
    # round 1 (6, 5, 1): rows [6, 1] (1 free) and [5] (3 free), both can still take a 1 -> open;
    # round 2 (2): fits only [5]
    segs = [_seg(n) for n in (6, 5, 1, 2)]
    rows = P.pack_segments(segs, P.BestFitPacker((0, 8), buffer_size=3, max_open_rows=8))
    assert _sizes(rows) == [[6, 1], [5, 2]]
    # at most one open row: the fuller [6, 1] is emitted after round 1
    rows = P.pack_segments(segs, P.BestFitPacker((0, 8), buffer_size=3, max_open_rows=1))
    assert _sizes(rows) == [[6, 1], [5, 2]]
    rows = P.pack_segments(segs, P.BestFitPacker((0, 8), buffer_size=3, max_open_rows=0))
    assert _sizes(rows) == [[6, 1], [5], [2]]
    # rows open for more than max_rounds_open rounds are emitted, even if not full
    rows = P.pack_segments(segs, P.BestFitPacker((0, 8), buffer_size=3, max_rounds_open=0))
    assert _sizes(rows) == [[6, 1], [5], [2]]


def test_no_row_stays_open_longer_than_max_rounds():
    # buffer of 1: round k sees only example k; a row of 1 with room for more keeps getting 1s
    segs = [_seg(4)] + [_seg(1)] * 3 + [_seg(4)]
    rows = P.pack_segments(segs, P.BestFitPacker((0, 16), buffer_size=1, max_rounds_open=2))
    # round 1: [4] opens; rounds 2, 3 add 1s; after round 3 its age limit is reached -> emitted
    assert _sizes(rows) == [[4, 1, 1], [1, 4]]


def _check_row_isolation(batch, format_name):
    """Segment ids 1, 2, .. in order then 0 padding; positions restart at 0 per segment; the shifted
    inputs start each segment with BOS 0; encoder and decoder hold the same segments."""
    sides = [("decoder_target_tokens", "decoder_segment_ids", "decoder_positions")]
    if format_name == "enc_dec":
        sides.append(("encoder_input_tokens", "encoder_segment_ids", "encoder_positions"))
    for tokens_key, seg_key, pos_key in sides:
        for tokens, seg, pos in zip(batch[tokens_key], batch[seg_key], batch[pos_key]):
            n = int((seg > 0).sum())
            assert (seg[n:] == 0).all() and (tokens[n:] == 0).all() and (tokens[:n] > 0).all()
            ids = seg[:n]
            assert ids[0] == 1 and (np.diff(ids) >= 0).all() and (np.diff(ids) <= 1).all()
            starts = np.r_[True, np.diff(ids) == 1]
            assert (pos[:n][starts] == 0).all()
            assert (pos[:n][~starts] == pos[:n][np.flatnonzero(~starts) - 1] + 1).all()
    for dec_in, seg in zip(batch["decoder_input_tokens"], batch["decoder_segment_ids"]):
        starts = np.flatnonzero((seg > 0) & (np.r_[0, seg[:-1]] != seg))
        assert (dec_in[starts] == 0).all()
    if format_name == "enc_dec":
        for e, d in zip(batch["encoder_segment_ids"], batch["decoder_segment_ids"]):
            assert set(e[e > 0]) == set(d[d > 0])


def _examples(rng, n, in_mean, tg_mean, chat_fraction=0.0):
    out = []
    for _ in range(n):
        li = int(min(rng.geometric(1 / in_mean), 4 * in_mean))
        lt = int(min(rng.geometric(1 / tg_mean), 4 * tg_mean))
        ex = {"inputs": rng.integers(2, 500, li).astype(np.int32),
              "targets": np.r_[rng.integers(2, 500, lt - 1), 1].astype(np.int32)}
        if rng.random() < chat_fraction and lt > 2:
            w = rng.integers(0, 2, lt).astype(np.int32)
            w[0] = 1
            ex["loss_weights"] = w
        out.append(ex)
    return out


def _key(ex):
    w = ex.get("loss_weights", np.ones(len(ex["targets"]), np.int32))
    return (tuple(np.asarray(ex["inputs"]).tolist()), tuple(np.asarray(ex["targets"]).tolist()),
            tuple(np.asarray(w).tolist()))


@pytest.mark.parametrize("seed", range(12))
@pytest.mark.parametrize("format_name", F.FORMATS)
def test_pack_unpack_round_trip_random_mixes(seed, format_name):
    rng = np.random.default_rng(seed)
    in_mean, tg_mean = [(3, 2), (20, 4), (8, 8), (40, 20)][seed % 4]
    examples = _examples(rng, int(rng.integers(1, 200)), in_mean, tg_mean, chat_fraction=0.3)
    lengths = {"inputs": int(4 * in_mean), "targets": int(4 * tg_mean)}
    cap = F.row_capacity(format_name, lengths)
    segs = [F.example_to_segment(ex, format_name, lengths)[0] for ex in examples]
    packer = P.BestFitPacker(cap, buffer_size=int(rng.integers(1, 64)), max_open_rows=int(rng.integers(0, 9)))
    rows = P.pack_segments(segs, packer)
    batch = F.assemble_rows(rows, format_name, lengths, packed=True)
    _check_row_isolation(batch, format_name)
    recovered = [ex for r in range(len(rows))
                 for ex in P.unpack({k: v[r] for k, v in batch.items()}, format_name)]
    assert sorted(map(_key, recovered)) == sorted(map(_key, examples))


def test_unpack_by_hand():
    row = {"decoder_target_tokens": np.array([7, 3, 1, 8, 9, 4, 1, 0]),
           "decoder_loss_weights": np.array([0, 1, 1, 0, 0, 1, 1, 0]),
           "decoder_segment_ids": np.array([1, 1, 1, 2, 2, 2, 2, 0])}
    got = P.unpack(row, "decoder")
    assert [(e["inputs"].tolist(), e["targets"].tolist()) for e in got] == [([7], [3, 1]), ([8, 9], [4, 1])]
    assert all("loss_weights" not in e for e in got)


def test_best_fit_fills_rows_better_than_greedy():
    rng = np.random.default_rng(0)
    examples = _examples(rng, 400, 30, 6)
    lengths = {"inputs": 96, "targets": 32}
    cap = F.row_capacity("decoder", lengths)
    segs = [F.example_to_segment(ex, "decoder", lengths)[0] for ex in examples]
    best = P.pack_segments(segs, P.BestFitPacker(cap, buffer_size=256))
    greedy = P.pack_segments(segs, P.GreedyPacker(cap, P.seqio_flush_every("decoder", cap)))
    tokens = sum(s.decoder.size for s in segs)
    assert tokens / (len(best) * cap[1]) > 0.97
    assert len(best) < len(greedy)


@pytest.mark.slow
def test_greedy_packer_equals_seqio_trim_and_pack():
    rng = np.random.default_rng(3)
    examples = [{"inputs": np.r_[ex["inputs"]], "targets": ex["targets"]} for ex in _examples(rng, 80, 6, 3)]
    lengths = {"inputs": 16, "targets": 8}
    reference = P.seqio_trim_and_pack(examples, lengths)
    segs = [F.example_to_segment(ex, "enc_dec", lengths)[0] for ex in examples]
    rows = P.pack_segments(segs, P.GreedyPacker((16, 8), P.seqio_flush_every("enc_dec", (16, 8))))
    ours = F.assemble_rows(rows, "enc_dec", lengths, packed=True)
    assert len(reference) == len(rows)
    np.testing.assert_array_equal(ours["encoder_input_tokens"], [r["inputs"] for r in reference])
    np.testing.assert_array_equal(ours["encoder_segment_ids"], [r["inputs_segment_ids"] for r in reference])
    np.testing.assert_array_equal(ours["decoder_target_tokens"], [r["targets"] for r in reference])
    np.testing.assert_array_equal(ours["decoder_positions"], [r["targets_positions"] for r in reference])
