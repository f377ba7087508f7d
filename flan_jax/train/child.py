"""`train()` in a child process started with the tuned host-malloc settings.

Why: a process that both evaluates and trains a large-vocabulary model cannot use the tuned
settings (`flan_jax/host_malloc.py`: one arena, no mmap, no trim), because its heap keeps the
freed blocks of every phase (the main job was killed at 24 GB); with glibc's defaults every
vocabulary-sized buffer of the train step is mmapped and faulted in again on every step (the
main job counted 202 million minor page faults; its Gemma 3 270M step took ~9.5-10.5 s instead
of 6.45 s). A child that only trains gets the tuned settings, and its heap holds only the
training phase's blocks; the parent keeps glibc's defaults for everything else.

The child (a `multiprocessing` "spawn" process: a fresh interpreter, so the settings apply from
its first allocation) imports the flan_jax modules the parent has imported (so every
configurable the config names exists), parses the parent's gin config, uses the parent's
persistent compilation cache if it has one, runs `train(**kwargs)`, writes the tuned
dense parameters (with LoRA, the adapters merged into the base) as a flan_jax checkpoint into
`params_dir` (`models/params_io.py`), and sends back the `TrainResult` without its state.
"""
from __future__ import annotations

import dataclasses
import multiprocessing
import os
import sys
from pathlib import Path
from typing import Any

from flan_jax.errors import FlanJaxError


def dense_params(result: Any, model_dir: str | Path) -> Any:
    """The dense parameters a `train()` result holds: the state's own, or with LoRA
    (`train.lora`) the frozen base with the adapters the trainer saved under
    `model_dir/adapters/<step>` merged in (W0 + (alpha / r) A B, models/lora.py)."""
    if result.state.frozen is None:
        return result.state.params
    from flan_jax.models import lora
    from flan_jax.train import lora_training

    adapters, config, _ = lora_training.load_adapters(Path(model_dir) / "adapters" / str(result.step))
    return lora.merge(result.state.frozen, adapters, config)


def _child(conn: Any, gin_config: str, modules: list[str], cache: str | None, params_dir: str,
           kwargs: dict[str, Any]) -> None:
    try:
        import importlib

        import gin
        import jax

        from flan_jax.models import params_io
        from flan_jax.train import train as train_lib

        for name in modules:  # the parent's flan_jax modules: every configurable the config names
            importlib.import_module(name)
        gin.parse_config(gin_config)
        if cache:  # the parent's persistent compilation cache
            jax.config.update("jax_compilation_cache_dir", cache)
        result = train_lib.train(**kwargs)
        params_io.save_checkpoint(params_dir, kwargs["model"], jax.device_get(dense_params(result, kwargs["model_dir"])))
        conn.send(("ok", dataclasses.replace(result, state=None)))
    except BaseException as e:  # noqa: BLE001  (sent to the parent, which raises it)
        message = str(e) if isinstance(e, FlanJaxError) else f"{type(e).__name__}: {str(e).splitlines()[0][:300]}"
        conn.send(("error", message))
    finally:
        conn.close()


def train_in_child(gin_config: str, params_dir: str | Path, **kwargs: Any) -> tuple[Any, dict[str, Any]]:
    """(TrainResult with state None, tuned float32 params) of `train(**kwargs)` run in a child
    process with the tuned malloc settings (none where `host_malloc.missing_settings` gives none,
    e.g. several fake devices). gin_config: `gin.config_str()` of the parent. kwargs must be
    picklable (`model` a config dataclass). Raises FlanJaxError with the child's message when
    training fails, or naming the exit code when the child dies (e.g. the OOM killer)."""
    import jax

    from flan_jax import host_malloc
    from flan_jax.models import params_io

    ctx = multiprocessing.get_context("spawn")
    receive, send = ctx.Pipe(duplex=False)
    settings = host_malloc.missing_settings(os.environ)
    saved = {k: os.environ.get(k) for k in settings}
    os.environ.update(settings)  # read by the child's glibc at its start
    try:
        modules = sorted(m for m in sys.modules if m == "flan_jax" or m.startswith("flan_jax."))
        cache = jax.config.jax_compilation_cache_dir
        process = ctx.Process(target=_child, args=(send, gin_config, modules, cache, str(params_dir), kwargs))
        process.start()
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
    send.close()
    try:
        status, payload = receive.recv()
    except EOFError:
        process.join()
        raise FlanJaxError(f"training in a child process ({kwargs.get('model_dir')}) died with exit code "
                           f"{process.exitcode} before it reported (killed for memory?)") from None
    process.join()
    if status != "ok":
        raise FlanJaxError(payload)
    return payload, params_io.load_checkpoint(params_dir)[1]
