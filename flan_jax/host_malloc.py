"""glibc malloc settings for JAX on CPU, applied by re-executing the process once.

Why: XLA:CPU mallocs a train step's temporaries on every step (3.3 GiB for the t5-small
benchmark config at batch 8). glibc serves blocks that large with fresh `mmap` pages and unmaps
them on free, so each step page-faults its whole working set in again: 1.09M minor faults per
t5-small step, 9.5 s -> 7.8 s per step once they are gone (docs/benchmarks.md). With one arena
(worker threads' arenas cap their heaps at 64 MiB and fall back to mmap) and mmap / trim
thresholds above the step's footprint, freed memory stays in the heap and the next step reuses
it: zero faults per step, same results bit for bit. The cost is that the process keeps its peak
heap until it exits, which a training process reaches again every step anyway; a process that
runs several different models in turn (the throughput bench) calls `release_free_memory()`
between them, or the heaps of all of them add up.

glibc reads these settings only at start-up (`mallopt` cannot raise the mmap threshold past
2 GiB), hence the re-exec. It happens only for the `flan-jax` / `python -m flan_jax...` programs,
only on Linux with glibc, only when JAX runs on CPU, and never when the variables are already
set. `FLAN_JAX_MALLOC_TUNING=0` turns it off; library code and notebooks are never re-executed
(set the variables before starting Python to get the same effect there).

A tuned heap grows when a program lets large temporaries of different lifetimes interleave.
The main job (evaluation, two tunings of a 270M model, their compilations, in one process)
reached 24 GB that way until three changes made its heap flat (2026-12-08; docs/training.md,
"Host memory on CPU"): `train()` runs one step at a time on CPU (a step dispatched while the
previous one computes allocates its temporaries beside the previous step's), it and the jobs
call `release_free_memory()` after the first step's compilation and after every phase, and the
base's host copies are dropped once the state holds them. The main job now runs with these
settings too: its flan-nl tuning step 7.5-8.9 -> 4.8-6.9 s, that job's peak RSS 16.6 -> 19.9
GiB, the real-data job's 19.9 -> 16.9 GiB.

`hugepages_only` asks for a lighter setting instead, for programs whose heap must give freed
memory back: glibc's default thresholds, and transparent huge pages for the blocks glibc mmaps
(tunable `glibc.malloc.hugetlb=1`, glibc >= 2.35, effective when the kernel's THP mode is
`madvise` or `always`). The step still maps its large temporaries afresh, but in 2 MiB pages:
the main job's Gemma 3 270M step measured 8.93 -> 6.39 s, 9.17M -> 0.06M minor faults over 7
steps, same loss and peak RSS (bench/main_job_malloc.py, which compares all three settings).
"""
from __future__ import annotations

import ctypes
import os
import platform
import re
import sys
from collections.abc import Mapping, MutableMapping

from flan_jax.errors import FlanJaxError

# Values (bytes) far above any CPU step's footprint; glibc parses them as size_t.
TUNED_MALLOC_ENV: dict[str, str] = {
    "MALLOC_ARENA_MAX": "1",
    "MALLOC_MMAP_THRESHOLD_": str(8 << 30),
    "MALLOC_TRIM_THRESHOLD_": str(16 << 30),
}
HUGEPAGE_TUNABLE = "glibc.malloc.hugetlb=1"
SWITCH = "FLAN_JAX_MALLOC_TUNING"
_REEXECUTED = "FLAN_JAX_MALLOC_REEXECUTED"


def on_glibc(system: str | None = None, libc: str | None = None) -> bool:
    """Linux with glibc (the settings and `malloc_trim` are glibc's); arguments override the
    detected values (tests)."""
    system = platform.system() if system is None else system
    libc = platform.libc_ver()[0] if libc is None else libc
    return system == "Linux" and libc == "glibc"


def tuning_enabled(environ: Mapping[str, str]) -> bool:
    """Whether `SWITCH` allows the tuning ("1", the default, or "0")."""
    value = environ.get(SWITCH, "1").strip()
    if value not in ("0", "1"):
        raise FlanJaxError(f"environment variable {SWITCH}={value!r}: expected 0 or 1")
    return value == "1"


def missing_settings(environ: Mapping[str, str], *, hugepages_only: bool = False,
                     system: str | None = None, libc: str | None = None) -> dict[str, str]:
    """The tuned variables this process still lacks ({} = nothing to do). With hugepages_only,
    only GLIBC_TUNABLES with `HUGEPAGE_TUNABLE` appended to the user's tunables (none when they
    already set glibc.malloc.hugetlb).

    Empty unless: Linux with glibc, JAX restricted to CPU (JAX_PLATFORMS=cpu, which the CLI sets
    when the host has no TPU) with one device, tuning enabled, and not already re-executed once.
    Variables the user set are kept as they are.

    Not with several fake CPU devices (`--xla_force_host_platform_device_count` > 1 in XLA_FLAGS):
    their threads allocate at once from the one arena, and the t5-small bench step on 8 fake
    devices measured 1.17x slower with 1.7x the peak memory (20.5 vs 12.0 GiB)."""
    if not on_glibc(system, libc) or not tuning_enabled(environ):
        return {}
    if environ.get("JAX_PLATFORMS", "").strip().lower() != "cpu" or environ.get(_REEXECUTED):
        return {}
    if several_fake_devices(environ):
        return {}
    if hugepages_only:
        tunables = environ.get("GLIBC_TUNABLES", "")
        if "glibc.malloc.hugetlb=" in tunables:
            return {}
        return {"GLIBC_TUNABLES": ":".join(t for t in (tunables, HUGEPAGE_TUNABLE) if t)}
    return {k: v for k, v in TUNED_MALLOC_ENV.items() if k not in environ}


def several_fake_devices(environ: Mapping[str, str]) -> bool:
    """Whether XLA_FLAGS asks for more than one (fake) CPU device."""
    counts = re.findall(r"--xla_force_host_platform_device_count=(\d+)", environ.get("XLA_FLAGS", ""))
    return bool(counts) and int(counts[-1]) > 1


def reexec_with_tuned_malloc(environ: MutableMapping[str, str] = os.environ, *,
                             hugepages_only: bool = False) -> None:
    """Replaces this process by the same command with `missing_settings` added to its
    environment; returns without doing anything when none are missing. Call it first thing
    in a program's entry point, before JAX (or anything that starts threads) is imported."""
    missing = missing_settings(environ, hugepages_only=hugepages_only)
    if not missing:
        return
    env = {**environ, **missing, _REEXECUTED: "1"}
    sys.stdout.flush()
    sys.stderr.flush()
    os.execve(sys.executable, list(sys.orig_argv), env)


def untuned_hint(environ: Mapping[str, str]) -> str | None:
    """A one-line note for `train()` on CPU when this process runs with glibc's defaults
    (research code and notebooks are never re-executed); None when there is nothing to say."""
    if not on_glibc() or environ.get(SWITCH) == "0":
        return None
    if several_fake_devices(environ) or HUGEPAGE_TUNABLE in environ.get("GLIBC_TUNABLES", ""):
        return None
    unset = [k for k in TUNED_MALLOC_ENV if k not in environ]
    if not unset:
        return None
    settings = " ".join(f"{k}={v}" for k, v in TUNED_MALLOC_ENV.items())
    return (f"glibc malloc defaults: CPU steps page-fault their temporaries in on every step "
            f"(~20% of step time at the benchmark sizes); start Python with {settings} to reuse "
            f"them (the flan-jax CLI does this itself; see flan_jax/host_malloc.py)")


def release_free_memory() -> bool:
    """Returns the heap's free pages to the kernel (glibc `malloc_trim(0)`); False where there
    is no glibc. For the points where a tuned process switches to a different workload."""
    if not on_glibc():
        return False
    ctypes.CDLL("libc.so.6").malloc_trim(0)
    return True
