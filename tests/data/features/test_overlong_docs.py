"""docs/features.md says what truncation does to a target's EOS, and the code does that: a cut
target keeps its EOS (cut to Lt - 1 tokens, the EOS after them, as seqio's
append_eos_after_trim), hand-computed below."""
from pathlib import Path

import numpy as np

from flan_jax.data.features import converters

DOC = Path(__file__).resolve().parents[3] / "docs" / "features.md"


def test_a_cut_target_keeps_its_eos_in_the_code_and_the_docs():
    ex = {"inputs": [7], "targets": [415, 928, 323, 1]}
    seg, outcome = converters.example_to_segment(ex, "enc_dec", {"inputs": 4, "targets": 3}, eos_id=1)
    assert outcome == "truncated"
    np.testing.assert_array_equal(seg.decoder, [415, 928, 1])
    text = " ".join(DOC.read_text().split())
    assert "loses its EOS" not in text
    assert "a cut target keeps its EOS" in text
