"""bench/op_profile.py: the HLO metadata parser, the scope rules, and one real traced call whose
dominant op (a large matmul under the `mlp` scope) must come out as the largest share."""
import sys
from pathlib import Path

import jax
import jax.numpy as jnp

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from bench import op_profile  # noqa: E402


def test_hlo_metadata_line_and_scope_rules():
    text = ('  %dot.3 = f32[8,16]{1,0} dot(f32[8,4]{1,0} %a, f32[4,16]{1,0} %b), lhs_contracting_dims={1}, '
            'metadata={op_name="jit(step)/transpose(jvp(Decoder))/layers_0/mlp/wi/dot_general" stack_frame_id=4}\n'
            '  ROOT %add.1 = f32[8,16]{1,0} add(%dot.3, %c), metadata={op_name="jit(step)/optimizer/add"}\n')
    meta = op_profile.hlo_metadata(text)
    assert meta == {"dot.3": {"opcode": "dot", "op_name": "jit(step)/transpose(jvp(Decoder))/layers_0/mlp/wi/dot_general"},
                    "add.1": {"opcode": "add", "op_name": "jit(step)/optimizer/add"}}
    assert op_profile.scopes("a/transpose(jvp(loss))/dot_general") == ["a", "loss", "dot_general"]
    assert [op_profile.category(meta[k]["op_name"]) for k in ("dot.3", "add.1")] == ["mlp", "optimizer"]
    assert op_profile.category("jit(step)/jvp(Decoder)/layers_1/attention/query/dot_general") == "attention"
    assert op_profile.category("jit(step)/while/body/jvp(loss)/reduce_max") == "head + loss"
    assert op_profile.category("jit(step)/jvp(Decoder)/final_norm/mul") == "norms"
    assert op_profile.category("jit(step)/add") == "other"
    # control-flow ops span their bodies: a row per (category, kind), never a while loop
    rows = op_profile.rows(meta, {"dot.3": 2.0, "add.1": 0.5, "mystery.7": 0.25})
    assert rows == [("mlp", "matmul", 2.0), ("optimizer", "other", 0.5), ("other", "other", 0.25)]


def test_a_traced_call_puts_the_big_matmul_first(tmp_path):
    def f(x, w, v):
        with jax.named_scope("mlp"):
            h = x @ w  # 2 * 512^3 FLOPs
        with jax.named_scope("attention"):
            return h + jnp.tanh(v)  # 512^2 elementwise

    x = jnp.ones((512, 512))
    rows, top = op_profile.profile(jax.jit(f), x, x, x, out_dir=str(tmp_path))
    assert rows[0][:2] == ("mlp", "matmul"), rows
    assert sum(s for _, _, s in rows) > 0 and any(c == "attention" for c, _, _ in rows)
    assert "mlp" in op_profile.scopes(top[0][2]), top
