"""Load any checkpoint flan_jax writes, as (flax module, dense params, config), for trying,
scoring and exporting a model.

What `load_model(path, base=...)` accepts, tried in this order:

    path holds                                  kind        the model config comes from
    model_config.json + params.safetensors      "params"    the file (`flan-jax convert`, params_io)
    adapter_config.json + adapters.safetensors  "lora"      the base recorded with the adapters (or `base`)
    adapters/<step>/ (a LoRA trainer model_dir) "lora"      the newest step's adapters, as above
    checkpoints/<step>/state, <step>/state or   "trainer"   `base` (a params dir: the checkpoint it was
    state/ (a full fine-tuning model_dir)                   tuned from) or the `config` argument

LoRA adapters are merged into their base (W0 + (alpha / r) A B, `train.lora_training.load_merged`),
so every kind gives dense float32 numpy params the model's `apply` takes. A full fine-tuning
model_dir stores no model config (train/run_dir.py lists what it holds), hence `base`: the main
job's tuned model is `load_model("runs/main-X/train", base=<the base checkpoint it prints>)`.

Errors (FlanJaxError, one line naming the path): the path does not exist; it is none of the
above; a trainer checkpoint without `base`/`config`; unreadable orbax files; parameters whose
names or shapes differ from the config's model.
"""
from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import jax
import numpy as np

from flan_jax.errors import FlanJaxError
from flan_jax.models import params_io
from flan_jax.train import lora_training


@dataclasses.dataclass
class LoadedModel:
    """A checkpoint ready to run: `module.apply({"params": params}, batch)`."""

    module: Any  # flax module (Decoder, Gemma3, T5)
    params: Any  # nested dict of float32 numpy arrays
    config: Any  # the config dataclass (DecoderConfig, Gemma3Config, T5Config)
    kind: str  # "params", "lora" or "trainer"
    step: int | None  # training step of a trainer/LoRA checkpoint
    base: Path | None  # the params dir whose config (and HF token ids) the model shares
    token_ids: dict[str, Any] | None  # HF special token ids of an imported model (export keeps them)


def _newest_step(directory: Path) -> int | None:
    steps = [int(p.name) for p in directory.iterdir() if p.name.isdigit() and p.is_dir()] \
        if directory.is_dir() else []
    return max(steps) if steps else None


def trainer_state_dir(path: Path) -> tuple[Path, int | None] | None:
    """(the orbax `state` directory, its step) of a trainer checkpoint at `path`: a model_dir,
    its `checkpoints/`, one `checkpoints/<step>/`, or None when there is none."""
    if (path / "checkpoints").is_dir():
        path = path / "checkpoints"
    if (path / "state").is_dir():
        return path / "state", int(path.name) if path.name.isdigit() else None
    step = _newest_step(path)
    if step is None or not (path / str(step) / "state").is_dir():
        return None
    return path / str(step) / "state", step


def read_trainer_params(state_dir: Path) -> Any:
    """The `params` of an orbax train-state directory as host numpy arrays (any topology)."""
    import orbax.checkpoint as ocp  # noqa: PLC0415

    item = str(state_dir.resolve())
    try:
        checkpointer = ocp.PyTreeCheckpointer()
        meta = checkpointer.metadata(item).item_metadata
        tree = meta.tree if hasattr(meta, "tree") else meta
        as_numpy = jax.tree.map(lambda _: ocp.RestoreArgs(restore_type=np.ndarray), tree)
        state = checkpointer.restore(item, args=ocp.args.PyTreeRestore(restore_args=as_numpy))
    except Exception as e:  # orbax/tensorstore raise many types for unreadable files
        raise FlanJaxError(f"{state_dir}: cannot read the checkpoint ({type(e).__name__}: "
                           f"{str(e).strip().splitlines()[0][:200] if str(e).strip() else ''})") from None
    return state["params"]


def check_shapes(module: Any, params: Any, where: str, hint: str = "the wrong --base?") -> None:
    """FlanJaxError unless `params` has exactly the names and shapes `module` initialises;
    `hint` ends the message (what the caller's user most likely got wrong)."""
    import flax.linen as nn  # noqa: PLC0415

    if module.FEATURE_FORMAT == "enc_dec":
        from flan_jax.models.t5 import dummy_batch  # noqa: PLC0415
    else:
        from flan_jax.models.decoder import dummy_batch  # noqa: PLC0415
    abstract = jax.eval_shape(lambda: nn.meta.unbox(module.init(jax.random.PRNGKey(0), dummy_batch())["params"]))
    want = _shapes(abstract)
    have = _shapes(params)
    missing, extra = sorted(set(want) - set(have)), sorted(set(have) - set(want))
    if missing or extra:
        raise FlanJaxError(f"{where}: parameters do not match the model config: missing {missing[:3]}, "
                           f"unexpected {extra[:3]} ({hint})")
    for key in sorted(want):
        if have[key] != want[key]:
            raise FlanJaxError(f"{where}: parameter {key} has shape {have[key]}, the model config needs "
                               f"{want[key]} ({hint})")


def _shapes(tree: Any, prefix: str = "") -> dict[str, tuple[int, ...]]:
    out: dict[str, tuple[int, ...]] = {}
    for key, child in tree.items():
        path = f"{prefix}/{key}" if prefix else str(key)
        out.update(_shapes(child, path) if hasattr(child, "items") else {path: tuple(child.shape)})
    return out


def checkpoint_kind(path: str | Path) -> str | None:
    """"params", "lora", "trainer" (see the module docstring) or None for anything else."""
    path = Path(path)
    if (path / params_io.CONFIG_FILE).is_file():
        return "params"
    if _adapter_dir(path) is not None:
        return "lora"
    return "trainer" if trainer_state_dir(path) is not None else None


def _adapter_dir(path: Path) -> tuple[Path, int | None] | None:
    """(adapter directory, its step) of an adapters dir or a LoRA model_dir's newest adapters."""
    if (path / lora_training.ADAPTER_CONFIG).is_file():
        return path, int(path.name) if path.name.isdigit() else None
    step = _newest_step(path / "adapters")
    return None if step is None else (path / "adapters" / str(step), step)


def load_model(path: str | Path, base: str | Path | None = None, config: Any = None,
               hint: str = "the wrong --base?") -> LoadedModel:
    """The model at `path` (see the module docstring); `base` names the params dir a trainer
    checkpoint was tuned from (or another base for LoRA adapters), `config` a model config
    dataclass to use instead of the base's; `hint` ends a shape-mismatch message."""
    path = Path(path)
    if not path.exists():
        raise FlanJaxError(f"checkpoint {path}: does not exist")
    kind = checkpoint_kind(path)
    if kind == "params":
        stored, params = params_io.load_checkpoint(path)
        return _checked(params, config or stored, kind, None, path, params_io.load_token_ids(path), path, hint)
    if kind == "lora":
        adapter_dir, step = _adapter_dir(path)
        stored, params, base_used = lora_training.load_merged(adapter_dir, str(base) if base else None,
                                                              with_base=True)
        return _checked(params, config or stored, kind, step, Path(base_used),
                        params_io.load_token_ids(base_used), adapter_dir, hint)
    if kind is None:
        raise FlanJaxError(f"checkpoint {path}: no flan_jax checkpoint here (neither model_config.json, "
                           "LoRA adapters, nor trainer checkpoints/<step>/state)")
    state_dir, step = trainer_state_dir(path)
    if config is None and base is None:
        raise FlanJaxError(f"checkpoint {path}: a trainer checkpoint stores no model config; pass the "
                           "checkpoint it was tuned from (--base PARAMS_DIR)")
    token_ids = None
    if config is None:
        config, token_ids = params_io.load_config(base), params_io.load_token_ids(base)
    return _checked(read_trainer_params(state_dir), config, "trainer", step,
                    Path(base) if base else None, token_ids, state_dir, hint)


def _checked(params: Any, config: Any, kind: str, step: int | None, base: Path | None,
             token_ids: dict[str, Any] | None, where: Path, hint: str) -> LoadedModel:
    module = params_io.build_model(config)
    check_shapes(module, params, f"checkpoint {where}", hint)
    return LoadedModel(module, params, config, kind, step, base, token_ids)


def load_vocabulary(path: str | None = None) -> Any:
    """The vocabulary to read and write text with: a sentencepiece `.model`, a GGUF file or
    `gguf:gemma-3-270m` (its tokenizer), else the tasks' default (`vocabulary_file`,
    $FLAN_JAX_VOCAB, or the flan-mini vocabulary)."""
    from flan_jax.data.features import vocab  # noqa: PLC0415

    return vocab.load_vocabulary(path) if path else vocab.default_vocabulary()
