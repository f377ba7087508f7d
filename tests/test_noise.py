"""Start-up noise: `--help` imports no TensorFlow; TensorFlow's absl lines and sentencepiece's
charsmap line are dropped from the program's stderr, everything else passes (flan_jax/noise.py)."""
import os
import subprocess
import sys
from pathlib import Path

import pytest

from flan_jax import cli, noise

REPO = Path(__file__).resolve().parents[1]

NOISE_LINES = [
    b"WARNING: All log messages before absl::InitializeLog() is called are written to STDERR\n",
    b"I0000 00:00:1795988219.291694    8287 port.cc:153] oneDNN custom operations are on. You may "
    b"see slightly different numerical results.\n",
    b"I0000 00:00:1795988219.292942    8287 cudart_stub.cc:31] Could not find cuda drivers on your "
    b"machine, GPU will not be used.\n",
    b"normalizer.cc(51) LOG(INFO) precompiled_charsmap is empty. use identity normalization.\n",
]
KEPT_LINES = [
    b"Traceback (most recent call last):\n",
    b"flan-jax check: error: /data/a.jsonl:2: field 'output' is null\n",
    b"2026-11-29 21:00:00,000 INFO step 10 loss 2.31\n",
    b"W0000 00:00:1795988219.29 8287 pjrt_client.cc:12] something that matters\n",
    b"E0000 00:00:1795988219.29 8287 xla_compiler.cc:99] a real error\n",
]


def test_noise_pattern():
    assert all(noise.is_noise(line) for line in NOISE_LINES)
    assert not any(noise.is_noise(line) for line in KEPT_LINES)


def _run(code: str, env=None) -> subprocess.CompletedProcess:
    full_env = {**os.environ, "PYTHONPATH": str(REPO), **(env or {})}
    full_env.pop(noise.VERBOSE_ENV, None)
    return subprocess.run([sys.executable, "-c", code], env=full_env, capture_output=True,
                          timeout=600, cwd=REPO)


def test_filter_drops_noise_keeps_the_rest_in_order():
    code = ("import os, sys\nfrom flan_jax import noise\nnoise.filter_stderr()\n"
            f"for line in {NOISE_LINES + KEPT_LINES!r}:\n    os.write(2, line)\n"
            "print('py line', file=sys.stderr)\nos.write(2, b'no newline at the end')\n")
    proc = _run(code)
    assert proc.returncode == 0
    assert proc.stderr == b"".join(KEPT_LINES) + b"py line\nno newline at the end"


@pytest.mark.parametrize("command", list(cli.COMMANDS))
def test_help_imports_no_tensorflow(command):
    code = ("import sys\nfrom flan_jax import cli\ntry:\n"
            f"    cli.main([{command!r}, '--help'])\nexcept SystemExit:\n    pass\n"
            "print('tensorflow' in sys.modules, 'jax' in sys.modules, file=sys.stderr)")
    proc = _run(code)
    assert proc.stderr.decode().strip().splitlines()[-1] == "False False"


@pytest.mark.slow
def test_program_is_quiet_by_default_and_verbose_brings_the_lines_back():
    args = [sys.executable, "-m", "flan_jax.cli", "mixture", "--list"]  # imports TensorFlow
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    env.pop(noise.VERBOSE_ENV, None)
    quiet = subprocess.run(args, env=env, capture_output=True, timeout=600)
    loud = subprocess.run(args + ["--verbose"], env=env, capture_output=True, timeout=600)
    assert quiet.returncode == loud.returncode == 0, quiet.stderr
    assert quiet.stderr == b"", quiet.stderr
    assert quiet.stdout == loud.stdout
    # the lines the filter removed are there without it (TensorFlow's start-up)
    assert any(noise.is_noise(line + b"\n") for line in loud.stderr.splitlines())


def test_expected_seqio_records_are_dropped_others_kept(caplog):
    import logging

    noise.quiet_python_logs()
    absl_logger = logging.getLogger("absl")
    with caplog.at_level(logging.INFO, logger="absl"):
        absl_logger.warning("Using an uncached FunctionDataset for training is not recommended")
        absl_logger.error("Failed to load task 'local.mine:zs_noopt' as part of mixture 'm'")
        absl_logger.warning("something else")
    assert [r.getMessage() for r in caplog.records] == ["something else"]
