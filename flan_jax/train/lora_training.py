"""Training with LoRA adapters (models/lora.py): the state's params are the adapters only.

    state.params   = adapters            (trained: the only gradients and optimizer state)
    state.frozen   = the base parameters (read by every step, never changed, stored in
                     `LoraConfig.base_dtype`; sharded by the same logical rules)

Checkpoints hold step, adapters and optimizer state (TrainState.frozen is not saved): on resume
the base is rebuilt from its source, the `pretrained` checkpoint path (or, without one, the seeded
random init), so a resumed run equals an uninterrupted one. `save_adapters` writes the adapters
alone with the base's path; `load_merged` applies them to that base (dense weights, e.g. for HF
export with `flan-jax convert --to-hf`).
"""
from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from flan_jax.errors import FlanJaxError
from flan_jax.models import layers, lora
from flan_jax.models.sharding import LOGICAL_AXIS_RULES, logical_shardings
from flan_jax.train.state import TrainState, check_same_shapes

ADAPTERS_FILE = "adapters.safetensors"
ADAPTER_CONFIG = "adapter_config.json"


def _cast_boxed(tree: Any, dtype: Any) -> Any:
    def one(x: Any) -> Any:
        if isinstance(x, nn.LogicallyPartitioned):
            return x.replace_boxed(x.unbox().astype(dtype))
        return x.astype(dtype)

    return jax.tree.map(one, tree, is_leaf=lambda x: isinstance(x, nn.LogicallyPartitioned))


def apply_fn(module: nn.Module, config: lora.LoraConfig):
    """(adapters, batch, rng, return_hidden=False, frozen=base) -> the model's output with the
    adapters' branches (the train step passes the frozen base)."""
    dropout = float(getattr(getattr(module, "config", None), "dropout_rate", 0.0) or 0.0) > 0

    def apply(params: Any, batch: Mapping[str, jax.Array], rng: jax.Array, return_hidden: bool = False,
              frozen: Any = None) -> Any:
        if frozen is None:
            raise FlanJaxError("LoRA apply: no frozen base parameters")
        kwargs: dict[str, Any] = {"return_hidden": True} if return_hidden else {}
        if dropout:
            kwargs.update(enable_dropout=True, rngs={"dropout": rng})
        return lora.apply(module, frozen, params, config, batch,
                          dropout_rng=rng if config.dropout > 0 else None, **kwargs)

    apply.returns_hidden = layers.returns_hidden(module)
    return apply


def state_shardings(module: nn.Module, config: lora.LoraConfig, tx: Any, example: Mapping[str, Any],
                    mesh: Mesh) -> tuple[TrainState, TrainState]:
    """(abstract state, shardings): adapters and base both from their logical axes."""
    from flan_jax.train.state import _opt_state_shardings

    dtype = jnp.dtype(config.base_dtype)
    boxed_base = jax.eval_shape(lambda r: _cast_boxed(module.init(r, example)["params"], dtype),
                                jax.random.PRNGKey(0))
    boxed_lora = jax.eval_shape(lambda r: lora.init_adapters(module, example, config, r, boxed=True),
                                jax.random.PRNGKey(0))
    abstract_lora = nn.meta.unbox(boxed_lora)
    lora_shardings = logical_shardings(boxed_lora, mesh, LOGICAL_AXIS_RULES)
    abstract_opt = jax.eval_shape(tx.init, abstract_lora)
    replicated = NamedSharding(mesh, PartitionSpec())
    abstract = TrainState(step=jax.ShapeDtypeStruct((), jnp.int32), params=abstract_lora,
                          opt_state=abstract_opt, frozen=nn.meta.unbox(boxed_base))
    shardings = TrainState(step=replicated, params=lora_shardings,
                           opt_state=_opt_state_shardings(tx, abstract_opt, abstract_lora, lora_shardings, mesh),
                           frozen=logical_shardings(boxed_base, mesh, LOGICAL_AXIS_RULES))
    return abstract, shardings


def frozen_base(module: nn.Module, example: Mapping[str, Any], abstract: TrainState, shardings: TrainState,
                seed: int, pretrained: Any = None) -> Any:
    """The base parameters placed with their shardings: `pretrained`, or the seeded random init."""
    if pretrained is None:
        def init(rng: jax.Array) -> Any:
            p = nn.meta.unbox(module.init(rng, example)["params"])
            return jax.tree.map(lambda x, a: x.astype(a.dtype), p, abstract.frozen)

        return jax.jit(init, out_shardings=shardings.frozen)(jax.random.PRNGKey(seed))
    check_same_shapes(abstract.frozen, pretrained, what="pretrained parameters")
    cast = jax.tree.map(lambda x, a: jnp.asarray(x, a.dtype), pretrained, abstract.frozen)
    return jax.device_put(cast, shardings.frozen)


def create_state(module: nn.Module, config: lora.LoraConfig, tx: Any, example: Mapping[str, Any],
                 abstract: TrainState, shardings: TrainState, base: Any, seed: int) -> TrainState:
    """Fresh adapters (seeded) with their optimizer state, around the placed `base`."""
    def init(rng: jax.Array) -> TrainState:
        adapters = lora.init_adapters(module, example, config, rng)
        return TrainState(step=jnp.zeros((), jnp.int32), params=adapters, opt_state=tx.init(adapters))

    no_base = dataclasses.replace(shardings, frozen=None)
    state = jax.jit(init, out_shardings=no_base)(jax.random.fold_in(jax.random.PRNGKey(seed), 1))
    return state.replace(frozen=base)


def save_adapters(out_dir: str | Path, adapters: Any, config: lora.LoraConfig, base: str | None) -> Path:
    """Adapters alone (safetensors) + adapter_config.json {lora config, base checkpoint path}."""
    from safetensors.numpy import save_file

    from flan_jax.models.params_io import atomic_directory

    import numpy as np

    flat = {f"{path}/{name}": np.asarray(jax.device_get(v), np.float32)
            for path, d in adapters.items() for name, v in d.items()}
    with atomic_directory(out_dir) as tmp:
        save_file(flat, str(tmp / ADAPTERS_FILE))
        (tmp / ADAPTER_CONFIG).write_text(json.dumps({"lora": dataclasses.asdict(config), "base": base},
                                                     indent=1) + "\n")
    return Path(out_dir)


def load_adapters(adapter_dir: str | Path) -> tuple[dict[str, dict[str, Any]], lora.LoraConfig, str | None]:
    """(adapters, LoraConfig, base checkpoint path) written by `save_adapters`."""
    from safetensors.numpy import load_file

    adapter_dir = Path(adapter_dir)
    cfg_path = adapter_dir / ADAPTER_CONFIG
    if not cfg_path.is_file() or not (adapter_dir / ADAPTERS_FILE).is_file():
        raise FlanJaxError(f"{adapter_dir}: not an adapter directory (needs {ADAPTER_CONFIG} and {ADAPTERS_FILE})")
    meta = json.loads(cfg_path.read_text())
    adapters: dict[str, dict[str, Any]] = {}
    for key, value in load_file(str(adapter_dir / ADAPTERS_FILE)).items():
        path, _, name = key.rpartition("/")
        adapters.setdefault(path, {})[name] = value
    return adapters, lora.LoraConfig(**meta["lora"]), meta.get("base")


def load_merged(adapter_dir: str | Path, base: str | None = None, *, with_base: bool = False) -> tuple[Any, ...]:
    """(model config, dense params W0 + (alpha/r) A B) of adapters applied to their base (the
    recorded base path, or `base`); with `with_base` also the base path used. Raises
    FlanJaxError naming the directory when there is no base or the adapters do not fit it."""
    from flan_jax.models import params_io

    adapters, config, stored = load_adapters(adapter_dir)
    base = base or stored
    if not base:
        raise FlanJaxError(f"{adapter_dir}: no base checkpoint recorded; pass the base path (--from CKPT)")
    model_config, params = params_io.load_checkpoint(base)
    try:
        merged = jax.device_get(lora.merge(params, adapters, config))
    except (FlanJaxError, KeyError, ValueError, TypeError) as e:
        raise FlanJaxError(f"{adapter_dir}: the adapters do not fit the base {base} ({type(e).__name__}: "
                           f"{str(e).splitlines()[0][:160]})") from None
    return (model_config, merged, base) if with_base else (model_config, merged)


def dense_params(result: Any, model_dir: str | Path) -> Any:
    """The dense parameters a `train()` result holds: the state's own, or with LoRA
    (`train.lora`) the frozen base with the adapters the trainer saved under
    `model_dir/adapters/<step>` merged in (W0 + (alpha / r) A B, models/lora.py)."""
    if result.state.frozen is None:
        return result.state.params
    adapters, config, _ = load_adapters(Path(model_dir) / "adapters" / str(result.step))
    return lora.merge(result.state.frozen, adapters, config)
