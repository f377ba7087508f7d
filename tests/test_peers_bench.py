"""bench/peers.py: the rows it writes for the peers, their conversion to our batches, the model
FLOP count by hand, a peer's bad JSON, and the ratio column of the report."""
import json
import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from bench import peers  # noqa: E402


def test_rows_are_exactly_the_length_with_twelve_targets_and_convert_to_full_batches(tmp_path):
    path = tmp_path / "rows.jsonl"
    rows = peers.make_rows(512, 16, seed=3)
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    for row in rows:  # HF layout: [BOS] + prompt + completion + [EOS] per example
        exs = row["examples"]
        assert 2 <= len(exs) <= 4
        assert sum(2 + len(e["prompt_ids"]) + len(e["completion_ids"]) for e in exs) == 512
        assert sum(len(e["completion_ids"]) + 1 for e in exs) == 12
        assert all(1000 <= t < 200000 for e in exs for t in e["prompt_ids"] + e["completion_ids"])
    batches = peers.read_batches(str(path), 512, 2)
    assert len(batches) == 2
    for i, b in enumerate(batches):
        assert b["decoder_input_tokens"].shape == (8, 512)
        assert int((b["decoder_loss_weights"] > 0).sum()) == 96  # 8 rows x 12 targets
        # our rows hold one position fewer per example (the last EOS is a target, never an input)
        examples = sum(len(r["examples"]) for r in rows[8 * i:8 * i + 8])
        assert int((b["decoder_segment_ids"] > 0).sum()) == 8 * 512 - examples
        # the first row's first example: BOS 2, its prompt, its completion
        first = rows[8 * i]["examples"][0]
        n = 1 + len(first["prompt_ids"]) + len(first["completion_ids"])
        np.testing.assert_array_equal(b["decoder_input_tokens"][0, :n],
                                      [2] + first["prompt_ids"] + first["completion_ids"])
    few = tmp_path / "few.jsonl"
    few.write_text("".join(json.dumps(r) + "\n" for r in peers.make_rows(512, 20)))
    with pytest.raises(SystemExit, match="20 rows, 24 needed"):
        peers.read_batches(str(few), 512, 3)


def test_model_flops_by_hand():
    config = SimpleNamespace(vocab_size=10, emb_dim=4, num_heads=2, head_dim=3, num_layers=5)
    params = {"embed": np.zeros((10, 4)), "w": np.zeros((7, 11))}  # 77 non-embedding parameters
    got = peers.model_flops(config, params, (2, 8), targets=6)
    assert got == 6 * 77 * 16 + 6 * 40 * 6 + 12 * 5 * 6 * 16 * 8


def test_bad_peer_json_is_one_line_and_exit_2(tmp_path, capsys):
    bad = tmp_path / "trl.json"
    bad.write_text('{"framework": "trl"}\n')
    with pytest.raises(SystemExit) as e:
        peers.read_peer("trl:128", str(bad))
    assert e.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"bench/peers.py: --peer trl:128={bad}: no field 's_per_step_median'"]
    with pytest.raises(SystemExit) as e:
        peers.read_peer("trl:128", str(tmp_path / "missing.json"))
    assert e.value.code == 2


def test_report_ratio_is_ours_over_the_peers_target_tokens_per_second():
    ours = {128: {"s_per_step_median": 5.0, "target_tokens_per_s": 19.2, "positions_per_s": 204.8,
                  "peak_rss_gib": 8.0, "model_flops_per_step": 6.0e11}}
    peer = {"trl:128": {"s_per_step_median": 19.2, "target_tokens_per_s": 4.8, "positions_per_s": 53.3},
            "tunix:512": {"s_per_step_median": 60.0, "target_tokens_per_s": 1.6}}
    lines = peers.report(ours, peer, peak=2.0e11)
    assert "| flan_jax | 8 x 128 | 5.00 | 19.2 | 205 | 8.0 | 120 | 0.60 | - |" in lines
    assert any(line.startswith("| trl | 8 x 128 |") and line.endswith("| 4.00x |") for line in lines)
    assert any(line.startswith("| tunix | 8 x 512 |") and line.endswith("| (not run) |") for line in lines)
