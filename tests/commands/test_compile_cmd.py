"""`flan-jax compile`: AOT compile of the real train step for a TPU topology (needs libtpu).

The memory verdicts are checked against hand-computed state sizes: a ~1.6B-parameter decoder
with AdamW holds 12 bytes per parameter (param, two moments), 19 GB replicated on each of four
v5e chips -> does not fit 16 GiB; split four ways over 'fsdp' it does.
"""
import dataclasses

import pytest

from flan_jax.cli import main
from flan_jax.errors import FlanJaxError
from flan_jax.commands import compile as compile_cmd
from flan_jax.train import gin_config

needs_libtpu = pytest.mark.skipif(
    not compile_cmd.libtpu_available(),
    reason='libtpu not installed (pip install "jax[tpu]==0.10.2"; `make test` installs it)')

# vocab 128256 x 4096 embedding + untied head (the Llama-3 tables) and one wide layer.
WIDE = dict(vocab_size=128256, emb_dim=4096, num_heads=32, num_kv_heads=8, head_dim=128,
            mlp_dim=14336, num_layers=1, dtype="bfloat16")


@pytest.fixture(autouse=True)
def _clean_gin():
    """The CLI parses gin files into gin's global config: leave none behind for other tests."""
    import gin

    gin.clear_config()
    yield
    gin.clear_config()


def wide_params() -> int:
    d, v, f, h, k, dh = 4096, 128256, 14336, 32, 8, 128
    attention = d * h * dh + 2 * d * k * dh + h * dh * d
    mlp = 3 * d * f
    norms = 2 * d + d  # two per layer, one final
    return 2 * v * d + attention + mlp + norms


@needs_libtpu
@pytest.mark.slow
def test_memory_verdict_follows_sharding_and_hand_computed_state_size():
    from flan_jax.models.decoder import DecoderConfig
    from flan_jax.train.optim import adamw

    devices = compile_cmd.topology_devices("v5e:2x2")
    assert len(devices) == 4 and devices[0].device_kind == "TPU v5 lite"
    model = DecoderConfig(**WIDE)
    lengths = {"inputs": 64, "targets": 64}
    common = dict(topology="v5e:2x2", batch_size=4, feature_lengths=lengths)
    replicated = compile_cmd.compile_train_step(model, adamw(), devices, mesh_shape=(4, 1, 1), **common)
    sharded = compile_cmd.compile_train_step(model, adamw(), devices, mesh_shape=(1, 4, 1), **common)

    n = wide_params()
    assert sharded.num_params == n
    state_bytes = 12 * n  # float32 params + AdamW mu + nu: 19.3 GB, more than a chip's 16 GiB
    # the TPU compiler itself refuses the replicated layout
    assert replicated.fits is False and "HBM" in replicated.compiler_oom
    assert "DOES NOT FIT" in compile_cmd.format_report(replicated)
    # each chip holds a quarter of the state (plus a quarter of the batch, and tile padding) ...
    assert state_bytes / 4 <= sharded.argument_bytes <= 1.02 * state_bytes / 4 + 2**20
    # ... and the new state is written in place of the donated one
    assert sharded.alias_bytes >= state_bytes / 4
    assert sharded.fits is True
    assert "FITS: peak" in compile_cmd.format_report(sharded)

    # XLA's FLOP count of the compiled step vs 6 x non-embedding params x tokens + attention:
    # the head (4096 x 128256) dominates; optimizer and softmax add a little.
    total = sharded.compiled_flops_per_chip * 4
    assert 0.9 * sharded.model_flops_per_step <= total <= 1.5 * sharded.model_flops_per_step


@needs_libtpu
@pytest.mark.slow
def test_cli_compiles_tiny_gin_config(capsys):
    rc = main(["compile", "--gin_file=models/decoder_tiny.gin", "--topology", "v5e:2x2",
               "--batch_size", "8", "--gin.train.feature_lengths={'inputs': 16, 'targets': 16}",
               "--gin.train.mesh_shape=(2, 2, 1)"])
    out, err = capsys.readouterr()
    assert rc == 0, err
    assert "topology v5e:2x2: 4 x TPU v5 lite, mesh {'data': 2, 'fsdp': 2, 'tensor': 1}" in out
    assert "lengths {'inputs': 16, 'targets': 16}" in out
    assert "FITS: peak" in out


@needs_libtpu
@pytest.mark.slow
def test_cli_compiles_the_gemma3_270m_gin_config(capsys):
    """Gemma 3 is found from its Gemma3Config bindings alone; 268,098,176 parameters (its gin file)."""
    rc = main(["compile", "--gin_file=models/gemma3_270m.gin", "--topology", "v5e:2x2",
               "--batch_size", "4", "--gin.train.feature_lengths={'inputs': 32, 'targets': 32}",
               "--gin.train.mesh_shape=(1, 4, 1)"])
    out, err = capsys.readouterr()
    assert rc == 0, err
    assert "model 268.1M parameters" in out, out
    assert "FITS: peak" in out


@needs_libtpu
def test_unknown_topology_is_a_user_error(capsys):
    rc = main(["compile", "--gin_file=models/decoder_tiny.gin", "--topology", "v99x:3x3"])
    err = capsys.readouterr().err
    assert rc == 2 and "v99x:3x3" in err and "v5e:16x16" in err


@needs_libtpu
def test_batch_not_divisible_by_mesh_is_a_user_error(capsys):
    rc = main(["compile", "--gin_file=models/decoder_tiny.gin", "--topology", "v5e:2x2",
               "--batch_size", "6"])
    err = capsys.readouterr().err
    assert rc == 2 and "batch" in err and "6" in err


def test_without_libtpu_says_how_to_install(monkeypatch, capsys):
    monkeypatch.setattr(compile_cmd, "libtpu_available", lambda: False)
    rc = main(["compile", "--gin_file=models/decoder_tiny.gin", "--topology", "v5e:2x2"])
    err = capsys.readouterr().err
    assert rc == 2 and 'pip install "jax[tpu]==0.10.2"' in err


def test_missing_gin_file_is_named(tmp_path):
    missing = str(tmp_path / "nope.gin")
    with pytest.raises(FlanJaxError, match="nope.gin"):
        gin_config.parse_gin([missing], [])


def test_gin_without_a_model_is_a_user_error(tmp_path):
    empty = tmp_path / "empty.gin"
    empty.write_text("# no model here\n")
    gin_config.parse_gin([str(empty)], [])
    with pytest.raises(FlanJaxError, match="train.model"):
        compile_cmd._configured_model()


def test_mesh_shape_flag_is_checked():
    assert compile_cmd._parse_mesh_shape("1,-1,2") == (1, -1, 2)
    with pytest.raises(FlanJaxError, match="data,fsdp,tensor"):
        compile_cmd._parse_mesh_shape("1,2")


def test_report_fields_are_consistent():
    r = compile_cmd.CompileReport(
        topology="v5e:2x2", device_kind="TPU v5 lite", num_chips=4, mesh={"data": 4}, batch_size=4,
        num_microbatches=1, feature_lengths={}, num_params=1, argument_bytes=10 * 2**30,
        output_bytes=4 * 2**30, alias_bytes=4 * 2**30, temp_bytes=5 * 2**30, code_bytes=2**30,
        compiled_flops_per_chip=1.0, model_flops_per_step=1.0, compile_seconds=0.0)
    assert r.peak_bytes == 16 * 2**30 and r.fits is True  # exactly the 16 GiB of a v5e chip
    assert dataclasses.replace(r, temp_bytes=5 * 2**30 + 1).fits is False
    assert dataclasses.replace(r, device_kind="TPU v9").fits is None
