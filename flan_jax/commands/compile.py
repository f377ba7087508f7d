"""`flan-jax compile`: will this gin config's train step fit a TPU slice? Answered on any machine.

The real train step (the same `state_shardings`, `make_train_step` and `jit_train_step` that
`train()` uses) is lowered with abstract inputs -- `jax.ShapeDtypeStruct`s carrying their
NamedShardings on a mesh of the slice's devices -- and compiled ahead of time by libtpu's
compiler for a topology such as `v5e:16x16`. Nothing is allocated; libtpu only needs to be
installed (`pip install "jax[tpu]==0.10.2"`, the `tpu` extra), no TPU attached.

    flan-jax compile --gin_file=gin_configs/models/t5_1_1_xxl.gin --topology v5e:16x16 \
        --batch_size 256 --mesh_shape 1,-1,1 --gin.train.feature_lengths="{'inputs': 512, 'targets': 128}"

prints, per chip: argument, output, aliased (donated) and temporary bytes, generated code,
their peak, the chip's HBM and whether it fits; and the FLOPs of one step (XLA's count for the
compiled program and the PaLM-style model FLOPs of train/metrics.py).

Settings come from the gin `train` bindings (batch_size, num_microbatches, feature_lengths,
mesh_shape, optimizer, model) with train()'s own defaults; --batch_size and --mesh_shape
override them. A model-only gin file (gin_configs/models/*.gin) is enough: the model is
`train.model` if bound, else the T5Config, DecoderConfig or Gemma3Config that the files configure.
"""
from __future__ import annotations

import argparse
import dataclasses
import glob
import inspect
import os
import time
from collections.abc import Mapping, Sequence
from typing import Any

from flan_jax.errors import FlanJaxError
# gin files, search path and errors exactly as `flan-jax train`
from flan_jax.train.gin_config import accept_gin_flags, parse_gin

GIB = 1024**3
INSTALL_HINT = ('libtpu is not installed; install the tpu extra: pip install "jax[tpu]==0.10.2" '
                '(or `pip install -e ".[tpu]"` in a checkout)')

# device_kind -> (HBM GiB per chip, bf16 peak TFLOP/s per chip), from Google Cloud's TPU
# system-architecture pages. A kind missing here prints the memory without a verdict.
TPU_CHIPS: dict[str, tuple[float, float]] = {
    "TPU v2": (8.0, 45.0),
    "TPU v3": (16.0, 123.0),
    "TPU v4": (32.0, 275.0),
    "TPU v5 lite": (16.0, 197.0),  # v5e
    "TPU v5": (95.0, 459.0),  # v5p
    "TPU v6 lite": (32.0, 918.0),  # v6e (Trillium)
}


@dataclasses.dataclass(frozen=True)
class CompileReport:
    """Per-chip figures of one compiled train step."""

    topology: str
    device_kind: str
    num_chips: int
    mesh: dict[str, int]
    batch_size: int
    num_microbatches: int
    feature_lengths: dict[str, int]
    num_params: int
    argument_bytes: int
    output_bytes: int
    alias_bytes: int
    temp_bytes: int
    code_bytes: int
    compiled_flops_per_chip: float
    model_flops_per_step: float
    compile_seconds: float
    compiler_oom: str | None = None  # the TPU compiler's own out-of-HBM message, if it gave up

    @property
    def peak_bytes(self) -> int:
        """Live at once: inputs, outputs not written in place of a donated input, temporaries,
        the program itself."""
        return self.argument_bytes + self.output_bytes - self.alias_bytes + self.temp_bytes + self.code_bytes

    @property
    def hbm_bytes(self) -> int | None:
        chip = TPU_CHIPS.get(self.device_kind)
        return int(chip[0] * GIB) if chip else None

    @property
    def fits(self) -> bool | None:
        if self.compiler_oom:
            return False
        return None if self.hbm_bytes is None else self.peak_bytes <= self.hbm_bytes


# ---- libtpu without a TPU ------------------------------------------------------------------

def tpu_attached() -> bool:
    """A TPU VM exposes its chips as /dev/accel* (v2-v5e) or VFIO groups (v5p, v6e)."""
    return bool(glob.glob("/dev/accel*") or glob.glob("/dev/vfio/[0-9]*"))


def quiet_libtpu_without_tpu() -> None:
    """Environment for loading libtpu as a compiler only (call before the first topology).

    ALLOW_MULTIPLE_LIBTPU_LOAD: libtpu takes /tmp/libtpu_lockfile at load; without this a
    second process (a parallel test, another user's compile) fails with "ABORTED ... lockfile".
    TPU_ACCELERATOR_TYPE / TPU_WORKER_HOSTNAMES: with no TPU metadata libtpu logs several
    "could not determine TPU accelerator type / worker hostnames" errors at start-up; the
    explicit topology given to the compiler is unaffected by them. Never set on a real TPU VM.
    """
    if tpu_attached():
        return
    os.environ.setdefault("ALLOW_MULTIPLE_LIBTPU_LOAD", "1")
    os.environ.setdefault("TPU_ACCELERATOR_TYPE", "v5litepod-4")
    os.environ.setdefault("TPU_WORKER_HOSTNAMES", "localhost")


def libtpu_available() -> bool:
    try:
        import libtpu  # noqa: F401
    except ImportError:
        return bool(os.environ.get("TPU_LIBRARY_PATH"))
    return True


def topology_devices(topology: str) -> list[Any]:
    """Compile-only devices of a TPU topology, e.g. 'v5e:16x16' -> 256 'TPU v5 lite' devices."""
    if not libtpu_available():
        raise FlanJaxError(f"compile --topology {topology}: {INSTALL_HINT}")
    quiet_libtpu_without_tpu()
    from jax.experimental import topologies

    try:
        return list(topologies.get_topology_desc(topology, "tpu").devices)
    except Exception as e:  # libtpu raises JaxRuntimeError / RuntimeError with its own text
        first = str(e).strip().splitlines()[0][:300] if str(e).strip() else type(e).__name__
        raise FlanJaxError(f"compile --topology {topology!r}: libtpu cannot build this topology "
                           f"({first}); names look like v5e:2x2, v5e:16x16, v4:2x2x2, v5p:2x2x4") from None


def _bound(selector: str, default: Any) -> Any:
    """The gin value of `selector` (a referenced configurable is called), else `default`."""
    import gin

    try:
        value = gin.query_parameter(selector)
    except ValueError:
        return default
    if isinstance(value, gin.config.ConfigurableReference):
        return value.scoped_configurable_fn() if value.evaluate else value.scoped_configurable_fn
    return value


def _configured_model() -> Any:
    """train.model if bound, else the one model config class the gin files bind fields of."""
    import gin

    model = _bound("train.model", None)
    if model is not None:
        return model
    from flan_jax.models.decoder import DecoderConfig
    from flan_jax.models.gemma import Gemma3Config
    from flan_jax.models.t5 import T5Config

    found = []
    for cls in (T5Config, DecoderConfig, Gemma3Config):
        for field in dataclasses.fields(cls):
            try:
                gin.query_parameter(f"{cls.__name__}.{field.name}")
            except ValueError:
                continue
            found.append(cls)
            break
    if len(found) != 1:
        raise FlanJaxError("compile: cannot tell which model to build: bind train.model = @T5Config() "
                           f"/ @DecoderConfig() / @Gemma3Config() (the gin files configure {[c.__name__ for c in found]})")
    return found[0]()


def _parse_mesh_shape(text: str) -> tuple[int, int, int]:
    try:
        sizes = tuple(int(s) for s in text.split(","))
    except ValueError:
        sizes = ()
    if len(sizes) != 3:
        raise FlanJaxError(f"--mesh_shape {text!r}: expected data,fsdp,tensor sizes such as 1,-1,1")
    return sizes  # type: ignore[return-value]


# ---- the compile --------------------------------------------------------------------------

def compile_train_step(model: Any, optimizer: Any, devices: Sequence[Any], *, topology: str,
                       batch_size: int, feature_lengths: Mapping[str, int], num_microbatches: int = 1,
                       mesh_shape: Any = (-1, 1, 1), loss_kwargs: Mapping[str, Any] | None = None,
                       ) -> CompileReport:
    """AOT-compile train()'s step for `devices` (usually `topology_devices(...)`)."""
    import jax

    from flan_jax.models import params_io
    from flan_jax.train import mesh as mesh_lib
    from flan_jax.train.metrics import model_flops_per_step
    from flan_jax.train.state import num_params, state_shardings
    from flan_jax.train.step import jit_train_step, make_train_step, model_apply_fn
    from flan_jax.train.synthetic import synthetic_batch

    module = model if hasattr(model, "apply") else params_io.build_model(model)
    config = getattr(module, "config", None)
    mesh = mesh_lib.make_mesh(mesh_shape, devices=devices)
    mesh_lib.check_batch(mesh, batch_size, num_microbatches)
    vocab_size = int(getattr(config, "vocab_size", 32))
    example = synthetic_batch(module.FEATURE_FORMAT, feature_lengths, 1, vocab_size, 0)

    abstract, shardings = state_shardings(module, optimizer.tx, example, mesh)
    state_in = jax.tree.map(lambda a, s: jax.ShapeDtypeStruct(a.shape, a.dtype, sharding=s), abstract, shardings)
    rows = mesh_lib.batch_sharding(mesh)
    batch_in = {k: jax.ShapeDtypeStruct((batch_size,) + v.shape[1:], v.dtype, sharding=rows)
                for k, v in example.items()}
    step = jit_train_step(make_train_step(model_apply_fn(module), optimizer, num_microbatches=num_microbatches,
                                          loss_kwargs=loss_kwargs, mesh=mesh), mesh, shardings)
    start = time.perf_counter()
    lowered = step.lower(state_in, batch_in)
    shapes = {k: tuple(v.shape) for k, v in batch_in.items()}
    report = dict(
        topology=topology, device_kind=devices[0].device_kind, num_chips=len(devices),
        mesh=dict(mesh.shape), batch_size=batch_size, num_microbatches=num_microbatches,
        feature_lengths=dict(feature_lengths), num_params=num_params(abstract.params),
        model_flops_per_step=model_flops_per_step(abstract.params, config, shapes))
    try:
        compiled = lowered.compile()
    except jax.errors.JaxRuntimeError as e:
        # The TPU compiler refuses a program whose buffers exceed HBM (RESOURCE_EXHAUSTED, with
        # the sizes it needed): that is the answer "does not fit", not a failure of the check.
        if "RESOURCE_EXHAUSTED" not in str(e):
            raise
        return CompileReport(**report, argument_bytes=0, output_bytes=0, alias_bytes=0, temp_bytes=0,
                             code_bytes=0, compiled_flops_per_chip=0.0,
                             compile_seconds=time.perf_counter() - start,
                             compiler_oom=str(e).strip().splitlines()[0][:500])
    seconds = time.perf_counter() - start
    mem = compiled.memory_analysis()
    cost = compiled.cost_analysis()
    cost = cost[0] if isinstance(cost, (list, tuple)) else cost
    return CompileReport(
        **report, argument_bytes=int(mem.argument_size_in_bytes), output_bytes=int(mem.output_size_in_bytes),
        alias_bytes=int(mem.alias_size_in_bytes), temp_bytes=int(mem.temp_size_in_bytes),
        code_bytes=int(mem.generated_code_size_in_bytes),
        compiled_flops_per_chip=float((cost or {}).get("flops", 0.0)), compile_seconds=seconds)


def format_report(r: CompileReport) -> str:
    gib = lambda n: f"{n / GIB:8.3f} GiB"  # noqa: E731
    chip = TPU_CHIPS.get(r.device_kind)
    lines = [
        f"topology {r.topology}: {r.num_chips} x {r.device_kind}, mesh {r.mesh}",
        f"model {r.num_params / 1e6:,.1f}M parameters; batch {r.batch_size} in {r.num_microbatches} "
        f"micro-batch(es), lengths {r.feature_lengths}; compiled in {r.compile_seconds:.1f} s",
    ]
    if r.compiler_oom:
        lines.append(f"model FLOPs per step (6ND + attention) {r.model_flops_per_step / 1e12:.2f} TFLOP")
        lines.append(f"DOES NOT FIT: the TPU compiler ran out of HBM: {r.compiler_oom}")
        return "\n".join(lines)
    lines += [
        "memory per chip:",
        f"  arguments (state + batch)  {gib(r.argument_bytes)}",
        f"  outputs (new state)        {gib(r.output_bytes)}",
        f"  aliased (donated state)    {gib(r.alias_bytes)}",
        f"  temporaries (activations)  {gib(r.temp_bytes)}",
        f"  generated code             {gib(r.code_bytes)}",
        f"  peak                       {gib(r.peak_bytes)}",
    ]
    total = r.compiled_flops_per_chip * r.num_chips
    lines.append(f"FLOPs per step: model (6ND + attention) {r.model_flops_per_step / 1e12:.2f} TFLOP "
                 f"({r.model_flops_per_step / r.num_chips / 1e12:.3f} per chip); XLA's count of the "
                 f"compiled step {total / 1e12:.2f} TFLOP")
    if r.model_flops_per_step > 2 * total:
        # XLA's cost analysis counts a while-loop body once: a scanned layer stack (scan_layers)
        # contributes one layer instead of num_layers.
        lines.append("  (XLA counts a loop body once: with scanned layers its count covers one layer)")
    if chip is None:
        lines.append(f"HBM of {r.device_kind!r} unknown (not in TPU_CHIPS): no verdict")
        return "\n".join(lines)
    hbm, peak_tflops = chip
    lines.append(f"step time at 100% of the bf16 peak ({peak_tflops:.0f} TFLOP/s/chip), model FLOPs: "
                 f"{r.model_flops_per_step / r.num_chips / (peak_tflops * 1e12):.3f} s")
    verdict = "FITS" if r.fits else "DOES NOT FIT"
    lines.append(f"{verdict}: peak {r.peak_bytes / GIB:.2f} GiB of {hbm:.0f} GiB HBM per chip "
                 f"({100 * r.peak_bytes / (hbm * GIB):.0f}%)")
    return "\n".join(lines)


# ---- CLI ----------------------------------------------------------------------------------

def add_arguments(parser: argparse.ArgumentParser) -> None:
    accept_gin_flags(parser)
    parser.add_argument("--gin_file", action="append", default=[], required=True,
                        help="gin file (repeatable); relative paths also resolve under gin_configs/")
    parser.add_argument("--gin_bindings", action="append", default=[], metavar="KEY=VALUE",
                        help="a gin binding (repeatable); --gin.KEY=VALUE works too")
    parser.add_argument("--topology", required=True, help="TPU topology, e.g. v5e:16x16 or v5e:2x2")
    parser.add_argument("--batch_size", type=int, default=None, help="global batch (default: train.batch_size)")
    parser.add_argument("--mesh_shape", default=None, help="data,fsdp,tensor sizes, e.g. 1,-1,1 "
                                                           "(default: train.mesh_shape)")


def run(args: argparse.Namespace) -> int:
    if not libtpu_available():
        raise FlanJaxError(INSTALL_HINT)
    devices = topology_devices(args.topology)  # before the gin files: fail fast on a bad name
    from flan_jax.train.optim import adafactor  # registers the configurables run files bind
    from flan_jax.train.train import train
    from flan_jax.train.train_setup import loss_options

    parse_gin(args.gin_file, args.gin_bindings)

    defaults = {name: p.default for name, p in inspect.signature(train).parameters.items()}
    batch_size = args.batch_size or int(_bound("train.batch_size", defaults["batch_size"]))
    lengths = dict(_bound("train.feature_lengths", None) or {"inputs": 256, "targets": 128})
    mesh_shape = (_parse_mesh_shape(args.mesh_shape) if args.mesh_shape
                  else _bound("train.mesh_shape", defaults["mesh_shape"]))
    optimizer = _bound("train.optimizer", None) or adafactor()
    num_microbatches = _bound("train.num_microbatches", 1)
    if num_microbatches == "auto":  # the host's memory budget says nothing about a TPU's HBM
        raise FlanJaxError("flan-jax compile: train.num_microbatches = 'auto' picks from the host's memory "
                           "budget at train time; bind an int to check a TPU slice")
    report = compile_train_step(
        _configured_model(), optimizer, devices, topology=args.topology, batch_size=batch_size,
        feature_lengths=lengths, num_microbatches=int(num_microbatches),
        mesh_shape=mesh_shape, loss_kwargs=loss_options())
    print(format_report(report))
    return 0 if report.fits is not False else 1
