"""The device mesh (axes data, fsdp, tensor) and the checks that the batch fits it.

Example: 8 devices, `mesh_shape={"data": 2, "fsdp": -1, "tensor": 2}` -> data=2, fsdp=2,
tensor=2 (the one -1 takes whatever the others leave). The batch is split over data x fsdp, so
with 2 micro-batches a batch of 16 gives micro-batches of 8 and 2 rows per batch shard.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence

import gin
import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from flan_jax.errors import FlanJaxError

MESH_AXES = ("data", "fsdp", "tensor")
BATCH_AXES = ("data", "fsdp")  # the rules table maps logical 'batch' here


def resolve_mesh_shape(mesh_shape: Mapping[str, int] | Sequence[int], num_devices: int) -> dict[str, int]:
    """Fill the one -1 entry and check the product equals the device count."""
    if not isinstance(mesh_shape, Mapping):
        if len(mesh_shape) != len(MESH_AXES):
            raise FlanJaxError(f"mesh_shape {tuple(mesh_shape)}: expected {len(MESH_AXES)} sizes for {MESH_AXES}")
        mesh_shape = dict(zip(MESH_AXES, mesh_shape))
    unknown = set(mesh_shape) - set(MESH_AXES)
    if unknown:
        raise FlanJaxError(f"mesh_shape has unknown axes {sorted(unknown)}; axes are {MESH_AXES}")
    sizes = {axis: int(mesh_shape.get(axis, 1)) for axis in MESH_AXES}
    fill = [axis for axis, size in sizes.items() if size == -1]
    if len(fill) > 1:
        raise FlanJaxError(f"mesh_shape {sizes}: at most one axis may be -1")
    if any(size == 0 or size < -1 for size in sizes.values()):
        raise FlanJaxError(f"mesh_shape {sizes}: sizes must be positive or -1")
    known = int(np.prod([s for s in sizes.values() if s != -1]))
    if fill:
        if num_devices % known:
            raise FlanJaxError(f"mesh_shape {sizes}: {known} does not divide the {num_devices} devices")
        sizes[fill[0]] = num_devices // known
    if int(np.prod(list(sizes.values()))) != num_devices:
        raise FlanJaxError(f"mesh_shape {sizes} uses {int(np.prod(list(sizes.values())))} devices "
                           f"but {num_devices} are available")
    return sizes


@gin.configurable
def make_mesh(mesh_shape: Mapping[str, int] | Sequence[int] = (-1, 1, 1),
              devices: Sequence[jax.Device] | None = None) -> Mesh:
    """A Mesh over all (or the given) devices with axes ('data', 'fsdp', 'tensor')."""
    devices = list(jax.devices() if devices is None else devices)
    sizes = resolve_mesh_shape(mesh_shape, len(devices))
    grid = np.asarray(devices, dtype=object).reshape([sizes[a] for a in MESH_AXES])
    return Mesh(grid, MESH_AXES)


def batch_shards(mesh: Mesh) -> int:
    """How many ways the batch dimension is split."""
    return int(np.prod([mesh.shape[a] for a in BATCH_AXES]))


def check_batch(mesh: Mesh, batch_size: int, num_microbatches: int = 1) -> None:
    """Raise unless every micro-batch splits evenly over the batch shards."""
    if num_microbatches < 1 or batch_size % num_microbatches:
        raise FlanJaxError(f"batch_size {batch_size} is not divisible by num_microbatches {num_microbatches}")
    micro = batch_size // num_microbatches
    shards = batch_shards(mesh)
    if micro % shards:
        raise FlanJaxError(
            f"micro-batch size {micro} (batch_size {batch_size} / {num_microbatches} micro-batches) "
            f"is not divisible by the {shards} batch shards (mesh data x fsdp = "
            f"{mesh.shape['data']} x {mesh.shape['fsdp']})")


def batch_sharding(mesh: Mesh) -> NamedSharding:
    """Rows split over data x fsdp, everything else replicated."""
    return NamedSharding(mesh, PartitionSpec(BATCH_AXES))
