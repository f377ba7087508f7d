"""Checkpoints of the train state AND the data position, through orbax's CheckpointManager.

Layout: `<dir>/<step>/state` (params, opt_state, step as sharded arrays) and `<dir>/<step>/data`
(JSON: {"batches_consumed": n}). A resumed run restores the latest step and asks the data
pipeline to start at batch n, so it sees exactly the batches an uninterrupted run would.

Atomicity: orbax writes into `<dir>/<step>.orbax-checkpoint-tmp-*` and renames it to `<step>`
only once every file is written (the rename is the commit). A run killed mid-write leaves a tmp
directory that `latest_step()` ignores, so the previous checkpoint is restored. Saves are async
(the device-to-host copy blocks, the file writes run in a background thread).

Errors (FlanJaxError, and nothing is written or deleted): a checkpoint whose parameter tree or
shapes differ from the model being trained; a checkpoint orbax cannot read (corrupt/partial).
"""
from __future__ import annotations

import os
from typing import Any

import jax
import orbax.checkpoint as ocp

from flan_jax.errors import FlanJaxError
from flan_jax.train.state import TrainState


def _as_dict(state: TrainState) -> dict[str, Any]:
    return {"step": state.step, "params": state.params, "opt_state": state.opt_state}


class Checkpointer:
    """Save every `save_every` steps, keep the last `keep`, restore the latest."""

    def __init__(self, directory: str, *, save_every: int = 1000, keep: int | None = 3,
                 async_save: bool = True) -> None:
        if save_every < 1:
            raise FlanJaxError(f"checkpoint save_every must be >= 1, got {save_every}")
        self.directory = os.path.abspath(directory)
        if os.path.exists(self.directory) and not os.path.isdir(self.directory):
            raise FlanJaxError(f"checkpoint dir {self.directory} exists and is not a directory")
        self.save_every = save_every
        options = ocp.CheckpointManagerOptions(
            max_to_keep=keep, create=True,
            enable_async_checkpointing=async_save)
        # Handlers named up front so a fresh process can read metadata before any save.
        handlers = {"state": ocp.StandardCheckpointHandler(), "data": ocp.JsonCheckpointHandler()}
        self._manager = ocp.CheckpointManager(self.directory, options=options, item_handlers=handlers)

    def latest_step(self) -> int | None:
        """The newest COMPLETE checkpoint's step (tmp dirs of interrupted writes are ignored)."""
        return self._manager.latest_step()

    def is_due(self, step: int) -> bool:
        """Our own schedule (orbax's would also save the first step of every run)."""
        return step % self.save_every == 0

    def save(self, state: TrainState, batches_consumed: int, *, step: int | None = None,
             force: bool = False) -> bool:
        """Save if this step is due (or `force`); returns whether a save was started. Pass
        `step` (= state.step) to avoid a device sync."""
        step = int(jax.device_get(state.step)) if step is None else int(step)
        if not (force or self.is_due(step)) or step in self._manager.all_steps():
            return False
        return self._manager.save(step, args=ocp.args.Composite(
            state=ocp.args.StandardSave(_as_dict(state)),
            data=ocp.args.JsonSave({"batches_consumed": int(batches_consumed), "step": step})),
            force=True)

    def restore(self, abstract: TrainState, shardings: TrainState,
                step: int | None = None) -> tuple[TrainState, int]:
        """(state placed with `shardings`, batches consumed) of `step` (default: the latest)."""
        step = self.latest_step() if step is None else step
        if step is None:
            raise FlanJaxError(f"no complete checkpoint in {self.directory}")
        where = os.path.join(self.directory, str(step))
        self._check_params_match(step, abstract, where)
        target = jax.tree.map(
            lambda a, s: jax.ShapeDtypeStruct(a.shape, a.dtype, sharding=s),
            _as_dict(abstract), _as_dict(shardings))
        try:
            restored = self._manager.restore(step, args=ocp.args.Composite(
                state=ocp.args.StandardRestore(target), data=ocp.args.JsonRestore()))
        except FlanJaxError:
            raise
        except Exception as e:  # orbax/tensorstore raise many types for unreadable files
            raise FlanJaxError(f"checkpoint {where} cannot be restored: corrupt or incomplete files, or "
                               "an optimizer state of another optimizer "
                               f"({type(e).__name__}: {str(e).splitlines()[0][:200]}); "
                               "move it away to resume from an earlier step") from None
        data = restored.data or {}
        if "batches_consumed" not in data:
            raise FlanJaxError(f"checkpoint {where}/data lacks 'batches_consumed'")
        s = restored.state
        state = TrainState(step=s["step"], params=s["params"], opt_state=s["opt_state"])
        return state, int(data["batches_consumed"])

    def _check_params_match(self, step: int, abstract: TrainState, where: str) -> None:
        try:
            meta = self._manager.item_metadata(step)
            tree = meta["state"].tree if hasattr(meta["state"], "tree") else meta["state"]
            params_meta = tree["params"]
        except Exception as e:
            raise FlanJaxError(f"checkpoint {where} is corrupt or incomplete: its metadata cannot be "
                               f"read ({type(e).__name__}: {str(e).splitlines()[0][:200]}); "
                               "move it away to resume from an earlier step") from None
        want = {jax.tree_util.keystr(k): tuple(v.shape)
                for k, v in jax.tree_util.tree_leaves_with_path(abstract.params)}
        have = {jax.tree_util.keystr(k): tuple(v.shape)
                for k, v in jax.tree_util.tree_leaves_with_path(params_meta)}
        if set(want) != set(have):
            missing, extra = sorted(set(want) - set(have)), sorted(set(have) - set(want))
            raise FlanJaxError(f"checkpoint {where} is from a different model: parameters missing "
                               f"{missing[:3]}, unexpected {extra[:3]}")
        for key, shape in want.items():
            if have[key] != shape:
                raise FlanJaxError(f"checkpoint {where} is from a different model: parameter "
                                   f"{key} has shape {have[key]}, this model has {shape}")

    def wait(self) -> None:
        """Block until async writes are committed."""
        self._manager.wait_until_finished()

    def close(self) -> None:
        self._manager.wait_until_finished()
        self._manager.close()
