"""Counting XLA backend compilations over a block of code (an evaluation phase, a bench pass).

    with compilations.counted() as seconds:
        rank_classify(...)
    len(seconds), sum(seconds)   # programs compiled inside the block, their compile seconds

jax reports each backend compilation as the duration event `COMPILE_EVENT`
(`jax.monitoring`); one listener, registered on first use, appends each duration to every
counter open at that moment (counters nest). Programs loaded from the persistent compilation
cache are not compiled and do not count.
"""
from __future__ import annotations

import contextlib
from collections.abc import Iterator

COMPILE_EVENT = "/jax/core/compile/backend_compile_duration"
_open: list[list[float]] = []
_registered = False


def _listener(event: str, seconds: float, **_: object) -> None:
    if event == COMPILE_EVENT:
        for counter in _open:
            counter.append(seconds)


@contextlib.contextmanager
def counted() -> Iterator[list[float]]:
    """A list that receives the seconds of every compilation inside the `with` block."""
    global _registered
    if not _registered:
        from jax import monitoring

        monitoring.register_event_duration_secs_listener(_listener)
        _registered = True
    counter: list[float] = []
    _open.append(counter)
    try:
        yield counter
    finally:
        _open.remove(counter)
