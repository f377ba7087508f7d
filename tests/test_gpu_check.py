"""bench/gpu_check.py needs no TensorFlow or seqio: the core it uses imports with both blocked,
the GPU peak table reads jax's device kinds, and the script's --smoke run passes on the CPU
with both blocked."""
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
# A meta-path finder that refuses tensorflow, seqio and tensorflow_datasets, then the payload.
BLOCK = """
import sys
class Block:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in ("tensorflow", "seqio", "tensorflow_datasets"):
            raise ImportError("blocked: " + name)
sys.meta_path.insert(0, Block())
"""
CORE = ["flan_jax.models.decoder", "flan_jax.models.gemma", "flan_jax.models.t5", "flan_jax.models.layers",
        "flan_jax.models.attention", "flan_jax.models.params_io", "flan_jax.models.sharding", "flan_jax.models.lora",
        "flan_jax.train.step", "flan_jax.train.loss", "flan_jax.train.optim", "flan_jax.train.state",
        "flan_jax.train.mesh", "flan_jax.train.metrics", "flan_jax.train.synthetic", "flan_jax.train.train",
        "flan_jax.eval.rank_classification", "flan_jax.eval.decoding", "flan_jax.eval.packed_scoring"]


def _run(code: str, *args: str, timeout: int = 600) -> subprocess.CompletedProcess:
    env = {"JAX_PLATFORMS": "cpu", "TF_CPP_MIN_LOG_LEVEL": "3", "PATH": "/usr/bin:/bin"}
    return subprocess.run([sys.executable, "-c", BLOCK + code, *args], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=timeout)


def test_the_blocker_blocks():
    got = _run("import seqio")
    assert got.returncode != 0 and "blocked: seqio" in got.stderr


def test_core_modules_import_without_tensorflow_or_seqio():
    got = _run("import importlib\nfor m in %r:\n    importlib.import_module(m)\n"
               "assert not any(k.split('.')[0] in ('tensorflow', 'seqio') for k in sys.modules)" % CORE)
    assert got.returncode == 0, got.stderr[-2000:]


def test_peak_table_reads_device_kinds():
    sys.path.insert(0, str(ROOT))
    from bench.gpu_check import card_peak

    assert card_peak("NVIDIA H100 80GB HBM3") == 989e12  # the SXM card's device_kind
    assert card_peak("NVIDIA H100 PCIe") == 756e12
    assert card_peak("NVIDIA H200") == 989e12
    assert card_peak("cpu") is None


@pytest.mark.slow
def test_smoke_run_on_cpu_without_tensorflow(tmp_path):
    out = tmp_path / "gpu.json"
    got = _run("import runpy\nsys.argv = ['bench/gpu_check.py', '--smoke', '--out', %r]\n"
               "runpy.run_path('bench/gpu_check.py', run_name='__main__')" % str(out))
    assert got.returncode == 0, got.stdout[-2000:] + got.stderr[-2000:]
    import json

    figures = json.loads(out.read_text())
    assert {(r["model"], r["dtype"]) for r in figures["train"]} == {
        (m, d) for m in ("dec-50m", "gemma3-270m") for d in ("float32", "bfloat16")}
    assert all(r["loss_ok"] for r in figures["train"])
    assert figures["eval"]["largest_difference"] < 1e-3
