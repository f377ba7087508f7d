"""`num_microbatches="auto"`: the fewest micro-batches whose compiled step fits a memory budget.

A step that does not fit should not silently thrash (issue 16: at one micro-batch the dec-50m
step over 8 x 2048 packed rows nearly filled a 24 GiB host, 40M page faults, and ran at 0.69x
the speed of the same step in 8 micro-batches). So, when asked, the trainer compiles its own
step for k = 1, 2, ... micro-batches (the divisors of the batch that keep every micro-batch
split evenly over the batch shards, smallest first) and keeps the first whose predicted peak
fits the budget. The compiled step is the one that then runs: nothing is compiled twice.

Predicted peak (bytes per device) = XLA's `compiled.memory_analysis()`: arguments + outputs -
aliased (the donated state is written in place, so it counts once) + temporaries; the same sum
`flan-jax compile` and bench/head_cost.py report. It ignores the host's own allocations (the
Python process, the data pipeline, XLA's code), hence the budget is a fraction of the memory.

Budget (`microbatch_options`): `memory_budget_gib` if bound, else `memory_fraction` of the
device's memory (`device.memory_stats()["bytes_limit"]` on accelerators; on CPU the host's
physical memory, shared by all fake devices, so divided by the local device count).

Example: batch 8 on one device, budget 8 GiB, predicted peaks k=1: 15.1 GiB, k=2: 8.4 GiB,
k=4: 5.0 GiB -> 4 micro-batches of 2 rows (k=8 is never compiled).
"""
from __future__ import annotations

import dataclasses
import logging
import os
from collections.abc import Callable, Sequence
from typing import Any

import gin
import jax

from flan_jax.errors import FlanJaxError

log = logging.getLogger("flan_jax.train")
AUTO = "auto"
GIB = 1024**3


class MicrobatchBudgetError(FlanJaxError):
    """No number of micro-batches makes the compiled step fit the memory budget."""


@gin.configurable
def microbatch_options(memory_budget_gib: float | None = None, memory_fraction: float = 0.5) -> dict[str, Any]:
    """The memory budget of `train.num_microbatches = "auto"` (module docstring): an absolute
    `memory_budget_gib` per device, or `memory_fraction` in (0, 1] of the device's memory."""
    return {"memory_budget_gib": memory_budget_gib, "memory_fraction": memory_fraction}


def memory_budget_bytes(memory_budget_gib: float | None = None, memory_fraction: float = 0.5,
                        device: Any = None) -> int:
    """Bytes per device allowed for one step (see `microbatch_options`).

    Raises FlanJaxError for a budget <= 0 or a fraction outside (0, 1]."""
    if memory_budget_gib is not None:
        if not memory_budget_gib > 0:
            raise FlanJaxError(f"microbatch_options.memory_budget_gib must be > 0, got {memory_budget_gib!r}")
        return int(memory_budget_gib * GIB)
    if not 0 < memory_fraction <= 1:
        raise FlanJaxError(f"microbatch_options.memory_fraction must be in (0, 1], got {memory_fraction!r}")
    device = device or jax.local_devices()[0]
    stats = None
    try:
        stats = device.memory_stats()
    except Exception:  # noqa: BLE001  (backends without memory stats raise various errors)
        stats = None
    if device.platform != "cpu" and stats and stats.get("bytes_limit"):
        return int(memory_fraction * stats["bytes_limit"])
    host = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    return int(memory_fraction * host / jax.local_device_count())


def peak_bytes(compiled: Any) -> int:
    """Predicted peak bytes per device of a compiled program: arguments + outputs - aliased
    (donated) + temporaries (XLA memory_analysis)."""
    m = compiled.memory_analysis()
    return int(m.argument_size_in_bytes + m.output_size_in_bytes - m.alias_size_in_bytes
               + m.temp_size_in_bytes)


def candidates(batch_size: int, batch_shards: int = 1) -> list[int]:
    """Micro-batch counts k to try, ascending: k divides `batch_size` and each micro-batch of
    batch_size / k rows splits over the `batch_shards`. Example: (8, 1) -> [1, 2, 4, 8];
    (8, 2) -> [1, 2, 4]."""
    return [k for k in range(1, batch_size + 1)
            if batch_size % k == 0 and (batch_size // k) % batch_shards == 0]


@dataclasses.dataclass(frozen=True)
class MicrobatchChoice:
    num_microbatches: int
    peak_bytes: int  # predicted peak of the chosen step
    budget_bytes: int
    tried: tuple[tuple[int, int], ...]  # (k, predicted peak bytes) for every k compiled
    compiled: Any  # the compiled step for the choice

    def summary(self) -> str:
        tried = ", ".join(f"k={k}: {p / GIB:.2f} GiB" for k, p in self.tried)
        return (f"num_microbatches=auto: chose {self.num_microbatches} (predicted step peak "
                f"{self.peak_bytes / GIB:.2f} GiB per device, budget {self.budget_bytes / GIB:.2f} GiB; "
                f"compiled {tried})")


def choose(compile_for: Callable[[int], Any], counts: Sequence[int], budget_bytes: int) -> MicrobatchChoice:
    """Compile for each k in `counts` (ascending) until one's `peak_bytes` <= `budget_bytes`.

    compile_for(k) -> a compiled step (`jax.stages.Compiled`). Raises MicrobatchBudgetError
    (one line: the budget, the smallest predicted peak and what to change) when none fits."""
    tried = []
    for k in counts:
        compiled = compile_for(k)
        peak = peak_bytes(compiled)
        tried.append((k, peak))
        if peak <= budget_bytes:
            choice = MicrobatchChoice(k, peak, budget_bytes, tuple(tried), compiled)
            log.info(choice.summary())
            return choice
    k, peak = min(tried, key=lambda t: t[1])
    raise MicrobatchBudgetError(
        f"num_microbatches=auto: no micro-batch count fits the memory budget of {budget_bytes / GIB:.2f} GiB "
        f"per device (smallest predicted step peak {peak / GIB:.2f} GiB at {k} micro-batches); bind "
        "microbatch_options.memory_budget_gib higher, or lower train.batch_size or train.feature_lengths")


def auto_train_step(make_step: Callable[[int], Callable], abstract_state: Any, batch: Any, mesh: Any,
                    batch_size: int, budget_bytes: int) -> tuple[Callable, MicrobatchChoice]:
    """(runner, choice) for `train()`: make_step(k) -> a `step.jit_train_step` runner (with
    `.lower`); `abstract_state` the state's ShapeDtypeStructs with shardings; `batch` one
    global batch (arrays or ShapeDtypeStructs; only shapes and dtypes are read).

    The runner calls the chosen compiled step directly (it was compiled with the batch's exact
    fields, shapes and dtypes; a batch that differs raises jax's TypeError)."""
    from flan_jax.train import mesh as mesh_lib
    from flan_jax.train.step import global_batch_spec

    batch_in = global_batch_spec(batch, batch_size, mesh)

    def compile_for(k: int) -> Any:
        return make_step(k).lower(abstract_state, batch_in).compile()

    choice = choose(compile_for, candidates(batch_size, mesh_lib.batch_shards(mesh)), budget_bytes)
    return choice.compiled, choice
