"""Quiet start-up noise of native libraries on stderr, for the `flan-jax` program only.

TensorFlow's C++ start-up lines are written by absl logging before Python can configure it
(`TF_CPP_MIN_LOG_LEVEL` does not reach them), and the sentencepiece op prints one
"precompiled_charsmap is empty" line per vocabulary it loads (once per task when training):

    WARNING: All log messages before absl::InitializeLog() is called are written to STDERR
    I0000 00:00:1795988219.291694    8287 port.cc:153] oneDNN custom operations are on. ...
    I0000 00:00:1795988219.292942    8287 cudart_stub.cc:31] Could not find cuda drivers ...
    normalizer.cc(51) LOG(INFO) precompiled_charsmap is empty. use identity normalization.

`quiet_python_logs()` also drops two seqio log records that are expected here (SEQIO_NOISE).

`filter_stderr()` routes file descriptor 2 through a small forked process that drops the lines
matching NOISE and passes every other line on unchanged, in order (Python tracebacks, warnings,
logging, native errors); a partial line holding a carriage return (a progress bar redrawn in
place) passes at once, and FLAN_JAX_STDERR_TTY=1 records that fd 2 was a terminal, so
flan_jax/progress.py still draws bars. A process rather than a thread: native code can write
to stderr while holding the GIL, and a full pipe must never wait on Python. The filter ends
when the last writer closes the pipe (the program and any child it started). `--verbose` or
FLAN_JAX_VERBOSE=1 turns it off (cli.py).
"""
from __future__ import annotations

import logging
import os
import re
import signal

VERBOSE_ENV = "FLAN_JAX_VERBOSE"
STDERR_TTY_ENV = "FLAN_JAX_STDERR_TTY"  # = progress.TTY_ENV: fd 2 was a terminal before the filter

NOISE = re.compile(
    rb"^(?:WARNING: All log messages before absl::InitializeLog\(\) is called are written to STDERR"
    # absl/glog INFO lines of native code, e.g. "I0000 00:00:17.29 8287 port.cc:153] ..."
    rb"|I\d{4} [\d:.]+\s+\d+ [\w.]+:\d+\] .*"
    # CUDA probing on a machine without GPUs (warnings and errors that change nothing on CPU)
    rb"|[WE]\d{4} [\d:.]+\s+\d+ (?:cudart_stub|cuda_dnn|cuda_fft|cuda_blas|cuda_executor"
    rb"|cuda_diagnostics|cpu_feature_guard)\.cc:\d+\] .*"
    rb"|normalizer\.cc\(\d+\) LOG\(INFO\) precompiled_charsmap is empty\..*"
    rb")\r?\n?$")


# seqio log records (absl logger) that say nothing to a flan_jax user: local files are read
# through FunctionDataSource on purpose (validated whole, see data/sources/local_files.py), and a task
# that fails to load inside a mixture is followed by its own one-line error.
SEQIO_NOISE = ("Using an uncached FunctionDataset", "Failed to load task ")


class _DropSeqioNoise(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith(SEQIO_NOISE)


def quiet_python_logs() -> None:
    """Drop the SEQIO_NOISE records from the absl logger (seqio logs through absl)."""
    absl_logger = logging.getLogger("absl")
    if not any(isinstance(f, _DropSeqioNoise) for f in absl_logger.filters):
        absl_logger.addFilter(_DropSeqioNoise())
    # TFDS warns through absl about every dataset folder it cannot find (offline use is normal
    # here: sizes come from the published table); --verbose shows them
    absl_logger.setLevel(logging.ERROR)


def is_noise(line: bytes) -> bool:
    return NOISE.match(line) is not None


def verbose() -> bool:
    return os.environ.get(VERBOSE_ENV, "") not in ("", "0")


def _pump(read_fd: int) -> None:
    """The filter process: copy lines from the pipe to the real stderr, minus the noise."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C stops the program, not its stderr
    with os.fdopen(read_fd, "rb", buffering=0) as pipe:
        pending = b""
        while chunk := pipe.read(65536):
            pending += chunk
            *lines, pending = pending.split(b"\n")
            out = b"".join(line + b"\n" for line in lines if not is_noise(line + b"\n"))
            if b"\r" in pending:  # a progress bar redrawn in place (flan_jax/progress.py): no noise line
                out, pending = out + pending, b""
            if out:
                os.write(2, out)
        if pending and not is_noise(pending):
            os.write(2, pending)


def filter_stderr() -> bool:
    """Route fd 2 through the noise filter (see module doc); returns False when not possible
    (no os.fork) and leaves stderr as it is."""
    if not hasattr(os, "fork"):
        return False
    read_fd, write_fd = os.pipe()
    pid = os.fork()
    if pid == 0:  # the filter process: keep only the pipe and the real stderr
        os.close(write_fd)
        for fd in (0, 1):
            try:
                os.close(fd)
            except OSError:
                pass
        try:
            _pump(read_fd)
        finally:
            os._exit(0)
    os.close(read_fd)
    if os.isatty(2):  # progress bars (flan_jax/progress.py) still draw: the pipe ends at a terminal
        os.environ[STDERR_TTY_ENV] = "1"
    os.dup2(write_fd, 2)
    os.close(write_fd)
    return True
