"""flan_jax/progress.py: one line per phase when stderr is not a terminal (format checked against
hand-computed counts, seconds and rates), a tqdm bar on a terminal, nothing when quiet; the
stderr filter of `flan-jax` passes a bar's carriage-return redraws and records a terminal."""
import io
import itertools
import os
import pty
import re
import subprocess
import sys
from pathlib import Path

import pytest

from flan_jax import noise, progress

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture
def clock(monkeypatch):
    """perf_counter returns 100.0 at each phase's start and 102.5 at its end."""
    times = itertools.cycle([100.0, 102.5])
    monkeypatch.setattr(progress.time, "perf_counter", lambda: next(times))
    monkeypatch.delenv(progress.QUIET_ENV, raising=False)


def test_phase_line_when_not_a_terminal(clock):
    log = io.StringIO()
    with progress.phase("eval_before", total=10, unit="examples", stream=log) as bar:
        bar.update(4)
        bar.update(6)
    assert log.getvalue() == "eval_before: 10/10 examples in 2.5 s (4.0 examples/s)\n"  # 10 / 2.5 s


def test_phase_without_total_or_unit_and_slow_rates(clock):
    log = io.StringIO()
    with progress.phase("base", stream=log):
        pass
    assert log.getvalue() == "base: 2.5 s\n"
    assert progress.phase_line("tune", 20.0, 4, 10, "steps") == "tune: 4/10 steps in 20.0 s (5.0 s/step)"


def test_ctrl_c_says_stopped_an_error_prints_nothing(clock):
    log = io.StringIO()
    with pytest.raises(KeyboardInterrupt), progress.phase("tune", total=8, unit="steps", stream=log) as bar:
        bar.update(5)
        raise KeyboardInterrupt
    assert log.getvalue() == "tune: 5/8 steps in 2.5 s (2.0 steps/s) (stopped)\n"
    with pytest.raises(KeyError), progress.phase("base", stream=log):
        raise KeyError("x")  # the CLI's one error line stays the only line
    assert log.getvalue().count("\n") == 1


def test_quiet_prints_nothing(clock):
    log = io.StringIO()
    progress.set_quiet(True)
    try:
        assert progress.is_quiet() and os.environ[progress.QUIET_ENV] == "1"
        with progress.phase("eval_after", total=3, unit="examples", stream=log) as bar:
            bar.update(3)
    finally:
        progress.set_quiet(False)
    assert log.getvalue() == "" and not progress.is_quiet()


class _Terminal(io.StringIO):
    def isatty(self):
        return True


def test_a_terminal_gets_a_bar_with_counts_rate_and_time_left(monkeypatch):
    monkeypatch.delenv(progress.QUIET_ENV, raising=False)
    screen = _Terminal()
    with progress.phase("eval_before", total=4, unit="examples", stream=screen) as bar:
        bar.update(3)
        bar._bar.refresh()
        shown = screen.getvalue()
    assert "\r" in shown and "eval_before" in shown and "3/4" in shown and "examples/s" in shown
    assert "<" in shown  # tqdm's "elapsed<left"
    assert screen.getvalue().endswith("\n")  # the finished bar stays on screen
    screen = _Terminal()
    with progress.phase("base", stream=screen):  # nothing to count: the phase's line, no bar
        pass
    assert re.fullmatch(r"base: \d+\.\d s\n", screen.getvalue())


def test_filter_passes_redraws_and_records_a_terminal():
    """A child whose stderr is a pseudo-terminal: after noise.filter_stderr, FLAN_JAX_STDERR_TTY
    is 1 and bar redraws (no newline) reach the terminal unchanged."""
    code = ("import os, sys\nfrom flan_jax import noise, progress\nnoise.filter_stderr()\n"
            "print(os.environ.get('FLAN_JAX_STDERR_TTY'), progress.is_terminal(), flush=True)\n"
            "os.write(2, b'\\rbar 1/4'); os.write(2, b'\\rbar 2/4'); os.write(2, b'\\rbar 4/4\\n')\n")
    main_fd, child_fd = pty.openpty()
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    env.pop(noise.VERBOSE_ENV, None)
    env.pop(progress.TTY_ENV, None)
    proc = subprocess.run([sys.executable, "-c", code], stdout=subprocess.PIPE, stderr=child_fd, env=env,
                          timeout=300, cwd=REPO)
    os.close(child_fd)
    seen = b""
    while True:
        try:
            chunk = os.read(main_fd, 4096)
        except OSError:  # the terminal closed: everything was read
            break
        if not chunk:
            break
        seen += chunk
    os.close(main_fd)
    assert proc.returncode == 0 and proc.stdout.split() == [b"1", b"True"]
    assert b"\rbar 1/4\rbar 2/4\rbar 4/4" in seen
