"""Progress of long work: a bar on a terminal, one line per phase in logs, nothing when quiet.

    with progress.phase("eval_before", total=1530, unit="examples") as bar:
        for task in tasks:
            ...score 30 examples...
            bar.update(30)

* stderr is a terminal and the phase has a total and unit: a tqdm bar
  `eval_before:  40%|####      | 612/1530 [00:21<00:32, 28.6 examples/s]` (done/total,
  elapsed<left, rate), kept on screen when the phase ends; a phase without them (loading the
  base, a tuning whose trainer shows its own steps) gets the line below.
* stderr is not a terminal (a log file, CI, a pipe): nothing while the phase runs, then one line
  when it ends, e.g. `eval_before: 1530/1530 examples in 53.4 s (28.7 examples/s)`; a phase
  without a total or unit prints `base: 12.0 s`; one stopped by Ctrl-C adds ` (stopped)`; one
  left by any other exception prints nothing (the error is the one line that matters).
* quiet (`set_quiet(True)`, or FLAN_JAX_QUIET=1, what `--quiet` sets): nothing at all.

`flan-jax` routes stderr through a line filter (flan_jax/noise.py), so stderr is a pipe even on
a terminal; the filter records the original in FLAN_JAX_STDERR_TTY=1, which counts as a
terminal here. Ground module: imports nothing from flan_jax.
"""
from __future__ import annotations

import os
import sys
import time
from typing import IO, Any

QUIET_ENV = "FLAN_JAX_QUIET"
TTY_ENV = "FLAN_JAX_STDERR_TTY"  # set by noise.filter_stderr when fd 2 was a terminal


def set_quiet(quiet: bool = True) -> None:
    """Silence (or restore) every progress bar and phase line of this process and its children."""
    if quiet:
        os.environ[QUIET_ENV] = "1"
    else:
        os.environ.pop(QUIET_ENV, None)


def is_quiet() -> bool:
    return os.environ.get(QUIET_ENV, "") not in ("", "0")


def is_terminal(stream: IO[str] | None = None) -> bool:
    """Whether `stream` (default sys.stderr) shows on a terminal: isatty(), or for the real
    stderr behind flan-jax's filter, FLAN_JAX_STDERR_TTY=1."""
    stream = sys.stderr if stream is None else stream
    try:
        if stream.isatty():
            return True
    except (AttributeError, ValueError):  # a closed or stand-in stream
        return False
    return stream is sys.__stderr__ and os.environ.get(TTY_ENV) == "1"


def rate_text(done: float, seconds: float, unit: str) -> str:
    """'28.7 examples/s' (or 's/example' below one per second); '' for no unit or no time."""
    if not unit or seconds <= 0 or done <= 0:
        return ""
    per_second = done / seconds
    if per_second >= 1:
        return f"{per_second:.1f} {unit}/s"
    return f"{seconds / done:.1f} s/{unit.rstrip('s')}"


def phase_line(name: str, seconds: float, done: float = 0, total: float | None = None,
               unit: str = "", stopped: bool = False) -> str:
    """The one line a finished phase leaves in a log (see the module docstring for examples)."""
    if unit:
        count = f"{done:g}/{total:g}" if total is not None else f"{done:g}"
        rate = rate_text(done, seconds, unit)
        text = f"{name}: {count} {unit} in {seconds:.1f} s" + (f" ({rate})" if rate else "")
    else:
        text = f"{name}: {seconds:.1f} s"
    return text + (" (stopped)" if stopped else "")


class Phase:
    """One phase of work (a context manager); `update(n)` counts n more units done."""

    def __init__(self, name: str, total: float | None = None, unit: str = "",
                 stream: IO[str] | None = None, quiet: bool | None = None) -> None:
        self.name, self.total, self.unit, self.done = name, total, unit, 0.0
        self.stream = sys.stderr if stream is None else stream
        self.quiet = is_quiet() if quiet is None else quiet
        self.started = time.perf_counter()
        self.seconds: float | None = None
        self._bar: Any = None
        if not self.quiet and total is not None and unit and is_terminal(self.stream):
            import tqdm  # noqa: PLC0415

            self._bar = tqdm.tqdm(total=total, desc=name, unit=f" {unit}" if unit else "it",
                                  file=self.stream, leave=True, dynamic_ncols=True)

    def update(self, n: float = 1) -> None:
        self.done += n
        if self._bar is not None:
            self._bar.update(n)

    def close(self, stopped: bool = False) -> float:
        """Ends the phase (once): closes the bar or writes the phase line; returns its seconds."""
        if self.seconds is not None:
            return self.seconds
        self.seconds = time.perf_counter() - self.started
        if self._bar is not None:
            self._bar.close()
        elif not self.quiet:
            line = phase_line(self.name, self.seconds, self.done, self.total, self.unit, stopped)
            print(line, file=self.stream, flush=True)
        return self.seconds

    def __enter__(self) -> "Phase":
        return self

    def __exit__(self, kind: Any, *_: Any) -> None:
        if kind is not None and not issubclass(kind, KeyboardInterrupt):
            self.quiet = True  # the error's own line says what happened
        self.close(stopped=kind is not None)


def phase(name: str, total: float | None = None, unit: str = "", stream: IO[str] | None = None,
          quiet: bool | None = None) -> Phase:
    """`with phase("tune"):` ... -- see `Phase` and the module docstring."""
    return Phase(name, total, unit, stream, quiet)


class Silent:
    """A stand-in with Phase's `update` that shows nothing (for library calls without progress)."""

    def update(self, n: float = 1) -> None:
        pass
