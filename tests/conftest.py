"""Test session setup: 8 fake CPU devices, set once before jax is imported."""
import os

os.environ["XLA_FLAGS"] = (
    os.environ.get("XLA_FLAGS", "") + " --xla_force_host_platform_device_count=8"
).strip()
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("JAX_PLATFORMS", "cpu")
os.environ.setdefault("CUDA_VISIBLE_DEVICES", "")
# Packaged benchmark copies never stand in for TFDS data here, so the suite reads the same rows
# whether or not `make benchmarks` ran; tests of that path switch it back on themselves.
os.environ["FLAN_JAX_PACKAGED"] = "0"

import jax  # noqa: E402  (must come after XLA_FLAGS)

assert jax.device_count() == 8, "conftest must run before anything imports jax"
