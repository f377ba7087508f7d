"""Several hosts, one program: start-up, each host's data shard, and the global batch.

On a TPU pod slice (e.g. v5e:16x16 = 64 hosts x 4 chips) the same script runs on every host.
Each host
  1. joins the others: `initialize()` -> `jax.distributed.initialize` (coordinator address,
     process count, this process's id; from arguments, else the environment, else
     auto-detected on Cloud TPU with `auto=True`); a single process skips it;
  2. reads only its own slice of the data: `shard_info()` -> seqio.ShardInfo(index=process
     index, num_shards=process count), with `host_batch_size(global)` rows per step;
  3. turns its rows into one global jax.Array: `global_batch(local, sharding)`.

Worked example: 2 hosts x 2 devices, mesh data=2 x fsdp=2 over devices [h0d0, h0d1, h1d0, h1d1],
global batch of 8 rows split over data x fsdp. Host 0 owns rows 0-3 (`process_rows` ->
slice(0, 4)), host 1 rows 4-7; each passes its [4, L] numpy arrays to `global_batch` and gets
the same [8, L] global array, of which it holds two [2, L] shards.

Environment variables (used when the argument is None): JAX_COORDINATOR_ADDRESS (host:port of
process 0), JAX_NUM_PROCESSES, JAX_PROCESS_ID.
"""
from __future__ import annotations

import dataclasses
import logging
import os
from collections.abc import Mapping
from typing import Any

import jax
import numpy as np
from jax.sharding import Sharding

from flan_jax.errors import FlanJaxError

log = logging.getLogger("flan_jax.train")
ENV_COORDINATOR, ENV_NUM_PROCESSES, ENV_PROCESS_ID = "JAX_COORDINATOR_ADDRESS", "JAX_NUM_PROCESSES", "JAX_PROCESS_ID"


@dataclasses.dataclass(frozen=True)
class ProcessInfo:
    process_index: int
    process_count: int
    local_devices: int
    global_devices: int


def _env_int(name: str) -> int | None:
    text = os.environ.get(name)
    if text in (None, ""):
        return None
    try:
        return int(text)
    except ValueError:
        raise FlanJaxError(f"environment variable {name}={text!r}: expected an integer") from None


def _already_initialized() -> bool:
    from jax._src import distributed as jax_distributed  # no public "is initialized" query

    return jax_distributed.global_state.client is not None


def initialize(coordinator_address: str | None = None, num_processes: int | None = None,
               process_id: int | None = None, *, auto: bool = False,
               timeout_seconds: int = 300) -> ProcessInfo:
    """Join the other processes (before any other JAX call); a no-op for one process.

    auto=True leaves all three to JAX's cluster detection (Cloud TPU VMs, SLURM, ...).
    Raises FlanJaxError naming the missing setting when only some of them are given.
    """
    coordinator_address = coordinator_address or os.environ.get(ENV_COORDINATOR) or None
    num_processes = num_processes if num_processes is not None else _env_int(ENV_NUM_PROCESSES)
    process_id = process_id if process_id is not None else _env_int(ENV_PROCESS_ID)
    if _already_initialized():
        pass
    elif auto:
        jax.distributed.initialize(coordinator_address, num_processes, process_id,
                                   initialization_timeout=timeout_seconds)
    elif coordinator_address is None and num_processes in (None, 1) and process_id in (None, 0):
        pass  # one process: nothing to join
    else:
        given = {"coordinator_address": coordinator_address, "num_processes": num_processes,
                 "process_id": process_id}
        missing = [k for k, v in given.items() if v is None]
        if missing:
            env = {"coordinator_address": ENV_COORDINATOR, "num_processes": ENV_NUM_PROCESSES,
                   "process_id": ENV_PROCESS_ID}
            raise FlanJaxError(f"multi-host start-up: {', '.join(missing)} not set (pass it, or set "
                               f"{', '.join(env[m] for m in missing)}; or use auto detection on a TPU pod)")
        if not 0 <= process_id < num_processes:
            raise FlanJaxError(f"multi-host start-up: process_id {process_id} is not in [0, {num_processes})")
        jax.distributed.initialize(coordinator_address, num_processes, process_id,
                                   initialization_timeout=timeout_seconds)
    info = ProcessInfo(jax.process_index(), jax.process_count(), jax.local_device_count(), jax.device_count())
    if info.process_count > 1:
        log.info("process %d of %d: %d local / %d global devices", info.process_index,
                 info.process_count, info.local_devices, info.global_devices)
    return info


def shard_info() -> Any:
    """This host's share of the data: seqio.ShardInfo(index=process index, num_shards=count)."""
    import seqio

    return seqio.ShardInfo(index=jax.process_index(), num_shards=jax.process_count())


def host_batch_size(global_batch_size: int) -> int:
    """Rows this host reads per step (the global batch split evenly over hosts)."""
    hosts = jax.process_count()
    if global_batch_size % hosts:
        raise FlanJaxError(f"batch_size {global_batch_size} is not divisible by the {hosts} hosts")
    return global_batch_size // hosts


def process_rows(sharding: Sharding, global_batch_size: int) -> slice:
    """The contiguous rows of the global batch that this process's devices hold.

    Raises if they are not contiguous (a mesh whose batch axes interleave hosts), in which case
    host-local reading would need a per-device row map.
    """
    index_map = sharding.addressable_devices_indices_map((global_batch_size,))
    rows = sorted({(idx[0].start or 0, global_batch_size if idx[0].stop is None else idx[0].stop)
                   for idx in index_map.values()})
    start, stop = rows[0][0], rows[-1][1]
    covered = sum(b - a for a, b in rows)
    if covered != stop - start:
        raise FlanJaxError(f"this process's batch rows {rows} are not one contiguous block; order the "
                           "mesh devices by process (jax.devices() order does)")
    return slice(start, stop)


def global_batch(local: Mapping[str, np.ndarray], sharding: Sharding) -> dict[str, jax.Array]:
    """Host-local numpy arrays [host rows, ...] -> global jax.Arrays [all rows, ...] laid out by
    `sharding` (every host calls this with its own rows, in process order)."""
    out = {}
    for name, rows in local.items():
        rows = np.asarray(rows)
        global_shape = (rows.shape[0] * jax.process_count(),) + rows.shape[1:]
        out[name] = jax.make_array_from_process_local_data(sharding, rows, global_shape)
    return out


# ---- per-host data positions in a checkpoint
# A cached stream (data/cache/cached_pipeline.py) gives host h of H the global blocks h, h + H, ...;
# each host's position {"block", "row"} is its own (blocks pack to different row counts), so a
# checkpoint stores all of them. Orbax writes the JSON data item from process 0 only, hence the
# gather. Saved entry, worked example for 2 hosts:
#     {"num_hosts": 2, "hosts": [{"block": 5, "row": 3}, {"block": 4, "row": 11}]}
# (host 1 is at its local block 4 = global block 1 + 4 * 2 = 9).

def _allgather(row: np.ndarray) -> np.ndarray:
    from jax.experimental import multihost_utils

    return np.asarray(multihost_utils.process_allgather(row))


def gather_data_states(local: Mapping[str, int], *, process_index: int | None = None,
                       process_count: int | None = None, gather: Any = None) -> dict[str, Any]:
    """Every host's data position, as stored in the checkpoint (the entry above).

    local: this host's {"block": int, "row": int}. A collective: every host calls it at the
    same step. process_index / process_count / gather (int32 [2] -> [H, 2]) default to JAX's
    (jax.experimental.multihost_utils.process_allgather); tests inject them to simulate hosts.
    Raises FlanJaxError for a position beyond int32 (2^31 blocks; never reached in practice).
    """
    count = jax.process_count() if process_count is None else process_count
    index = jax.process_index() if process_index is None else process_index
    block, row = int(local["block"]), int(local["row"])
    if not (0 <= block < 2 ** 31 and 0 <= row < 2 ** 31):
        raise FlanJaxError(f"data position {dict(local)} does not fit the int32 host gather")
    mine = np.asarray([block, row], np.int32)
    if count == 1:
        rows = mine[None]
    else:
        rows = np.asarray((gather or _allgather)(mine))
        if rows.shape != (count, 2) or not np.array_equal(rows[index], mine):
            raise FlanJaxError(f"gathered data positions have shape {rows.shape}, want ({count}, 2) "
                               f"with this host's {mine.tolist()} at index {index}")
    return {"num_hosts": count, "hosts": [{"block": int(b), "row": int(r)} for b, r in rows]}


def host_data_state(saved: Mapping[str, Any] | None, *, process_index: int | None = None,
                    process_count: int | None = None, where: str = "checkpoint") -> dict[str, int] | None:
    """This host's {"block", "row"} from a saved entry (`gather_data_states`); None if nothing
    was saved. A bare {"block", "row"} (single-host checkpoints before per-host entries) counts
    as one host. Raises FlanJaxError when the entry was saved by another number of hosts (each
    host's shard of the blocks would change) or is malformed, naming `where`."""
    if saved is None:
        return None
    count = jax.process_count() if process_count is None else process_count
    index = jax.process_index() if process_index is None else process_index
    if "hosts" not in saved:
        saved = {"num_hosts": 1, "hosts": [saved]}
    hosts = saved["hosts"]
    if int(saved.get("num_hosts", len(hosts))) != count or len(hosts) != count:
        raise FlanJaxError(f"{where}: the data position was saved by {len(hosts)} host(s), this run has "
                           f"{count}; a cached stream resumes exactly only on the same number of hosts")
    entry = hosts[index]
    try:
        return {"block": int(entry["block"]), "row": int(entry["row"])}
    except (KeyError, TypeError, ValueError):
        raise FlanJaxError(f"{where}: host {index}'s data position {entry!r} lacks an integer "
                           "'block' and 'row'") from None
