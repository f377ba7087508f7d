"""Checkpoints of the train state AND the data position, through orbax's CheckpointManager.

Layout: `<dir>/<step>/state` (params, opt_state, step as sharded arrays) and `<dir>/<step>/data`
(JSON: {"batches_consumed": n, "step": s, "rows_consumed": n x global batch rows, "identity":
{mixture, format, lengths, batch_size, seed, ...}}). A resumed run restores the latest step and
asks the data pipeline to start at batch n, so it sees exactly the batches an uninterrupted run
would; train.py refuses to resume when the stored identity differs from the run's.

Atomicity: orbax writes into `<dir>/<step>.orbax-checkpoint-tmp-*` and renames it to `<step>`
only once every file is written (the rename is the commit). A run killed mid-write leaves a tmp
directory that `latest_step()` ignores, so the previous checkpoint is restored. Saves are async
(the device-to-host copy blocks, the file writes run in a background thread).

Errors (FlanJaxError, and nothing is written or deleted): a checkpoint whose parameter tree or
shapes differ from the model being trained; a checkpoint orbax cannot read (corrupt/partial; the
message names the file that failed to read when the error or a scan of the files shows it).
A save that fails, in the calling thread or in the background writer (no space, read-only
filesystem), raises CheckpointWriteError naming the step, the OS error and the last complete
checkpoint, which stays as it was (orbax only renames a fully written tmp dir to `<step>`).
"""
from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping
from typing import Any

import jax
import orbax.checkpoint as ocp

from flan_jax.errors import FlanJaxError
from flan_jax.train.state import TrainState


class CheckpointWriteError(FlanJaxError):
    """A checkpoint could not be written; the last complete one is kept and named."""


def _first_line(e: BaseException) -> str:
    text = str(e).strip()
    return text.splitlines()[0][:200] if text else type(e).__name__


def _root_cause(e: BaseException) -> BaseException:
    """The innermost OSError in the chain (orbax wraps the writer's errors), else `e`."""
    seen, cur, found = set(), e, None
    while cur is not None and id(cur) not in seen:
        seen.add(id(cur))
        if isinstance(cur, OSError):
            found = cur
        cur = cur.__cause__ or cur.__context__
    return found or e


def _write_error_text(e: BaseException, directory: str) -> str:
    """'No space left on device (/path/of/the/file)' from an OSError in the chain or from
    tensorstore's message (`os_error_code='28'`, `Failed writing: "/path"`)."""
    cause = _root_cause(e)
    if isinstance(cause, OSError) and cause.strerror:
        return f"{cause.strerror} ({cause.filename or directory})"
    text = str(e)
    code = re.search(r"os_error_code='(\d+)'", text)
    path = re.search(r'"(/[^"]+)"', text[text.find("Failed writing"):] if "Failed writing" in text else text)
    if code:
        return f"{os.strerror(int(code.group(1)))} ({path.group(1) if path else directory})"
    return f"{type(cause).__name__}: {_first_line(cause)}"


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
        self._pending: int | None = None  # step of the latest save started (maybe still writing)
        options = ocp.CheckpointManagerOptions(
            max_to_keep=keep, create=True,
            enable_async_checkpointing=async_save)
        # Handlers named up front so a fresh process can read metadata before any save. The
        # state is written without zstd: float32 weights and moments compress ~1.08x, and a
        # 3 GB state took 5-12 s to save compressed, ~2 s not (bench/checkpoint_write.py).
        # Checkpoints written compressed (before 2026-12-08) restore as before.
        handlers = {"state": ocp.PyTreeCheckpointHandler(use_compression=False),
                    "data": ocp.JsonCheckpointHandler()}
        self._manager = ocp.CheckpointManager(self.directory, options=options, item_handlers=handlers)

    def latest_step(self) -> int | None:
        """The newest COMPLETE checkpoint's step (tmp dirs of interrupted writes are ignored)."""
        return self._manager.latest_step()

    def is_due(self, step: int) -> bool:
        """Our own schedule (orbax's would also save the first step of every run)."""
        return step % self.save_every == 0

    def committed_steps(self) -> list[int]:
        """Steps whose directory orbax has committed (renamed from its tmp name), read from disk."""
        if not os.path.isdir(self.directory):
            return []
        return sorted(int(n) for n in os.listdir(self.directory) if n.isdigit())

    def _write_failed(self, step: int | None, e: BaseException) -> CheckpointWriteError:
        why = _write_error_text(e, self.directory)
        good = [s for s in self.committed_steps() if s != step]
        kept = (f"the last complete checkpoint is step {good[-1]} in {self.directory}, kept as it was"
                if good else f"no complete checkpoint in {self.directory}")
        what = "a checkpoint" if step is None else f"checkpoint step {step}"
        return CheckpointWriteError(f"{what} could not be written: {why}; {kept}")

    def save(self, state: TrainState, batches_consumed: int, *, step: int | None = None,
             force: bool = False, data: Mapping[str, Any] | None = None) -> bool:
        """Save if this step is due (or `force`); returns whether a save was started. Pass
        `step` (= state.step) to avoid a device sync. `data`: more JSON stored with the data
        position (train.py stores rows_consumed and the pipeline's identity). A failed save,
        or a failure of the previous background save, raises CheckpointWriteError."""
        step = int(jax.device_get(state.step)) if step is None else int(step)
        if not (force or self.is_due(step)) or step in self._manager.all_steps():
            return False
        self.wait()  # orbax would wait for the previous save anyway; its failure is named here
        position = {**dict(data or {}), "batches_consumed": int(batches_consumed), "step": step}
        self._pending = step
        try:
            return self._manager.save(step, args=ocp.args.Composite(
                state=ocp.args.PyTreeSave(_as_dict(state)), data=ocp.args.JsonSave(position)),
                force=True)
        except Exception as e:  # orbax raises many types; the OSError inside names the cause
            raise self._write_failed(step, e) from None

    def check_for_errors(self) -> None:
        """Raise CheckpointWriteError if a background save has failed (cheap; call every step)."""
        try:
            self._manager.check_for_errors()
        except Exception as e:
            raise self._write_failed(self._pending, e) from None

    def data_position(self, step: int | None = None) -> dict[str, Any]:
        """The JSON stored beside the state of `step` (default latest): batches_consumed, step,
        and what train.py added (rows_consumed, identity). Reads no arrays."""
        step = self.latest_step() if step is None else step
        where = os.path.join(self.directory, str(step), "data")
        try:
            restored = self._manager.restore(step, args=ocp.args.Composite(data=ocp.args.JsonRestore()))
            data = dict(restored.data or {})
        except Exception as e:
            raise FlanJaxError(f"checkpoint {where} cannot be read ({_culprit(e, os.path.dirname(where))}"
                               f"{type(e).__name__}: {_first_line(e)}); move step {step} away to resume "
                               "from an earlier step") from None
        if "batches_consumed" not in data:
            raise FlanJaxError(f"checkpoint {where} lacks 'batches_consumed'")
        return data

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
                state=ocp.args.PyTreeRestore(target, restore_args=ocp.checkpoint_utils.construct_restore_args(target)),
                data=ocp.args.JsonRestore()))
        except FlanJaxError:
            raise
        except Exception as e:  # orbax/tensorstore raise many types for unreadable files
            raise FlanJaxError(f"checkpoint {where} cannot be restored: {_culprit(e, where)}corrupt or "
                               "incomplete files, or an optimizer state of another optimizer "
                               f"({type(e).__name__}: {_first_line(e)}); "
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
            raise FlanJaxError(f"checkpoint {where} is corrupt or incomplete: {_culprit(e, where)}its "
                               f"metadata cannot be read ({type(e).__name__}: {str(e).splitlines()[0][:200]}); "
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
        """Block until async writes are committed; CheckpointWriteError if one failed."""
        try:
            self._manager.wait_until_finished()
            self._manager.check_for_errors()
        except Exception as e:
            raise self._write_failed(self._pending, e) from None

    def close(self) -> None:
        try:
            self.wait()
        finally:
            self._manager.close()


# orbax's JSON files in a step: the checkpoint's, each item's metadata, the state's tree and
# sharding metadata, per-process array metadata
_JSON_FILES = ("_CHECKPOINT_METADATA", "_METADATA", "_sharding", "metadata")


def _bad_json(where: str) -> str:
    """'file X is not complete JSON (truncated? N bytes): ' for the first of the step's JSON
    metadata files that does not parse, else ''."""
    for d, _, files in sorted(os.walk(where)):
        for f in sorted(files):
            if f in _JSON_FILES or os.path.basename(d) == "array_metadatas":
                path = os.path.join(d, f)
                try:
                    with open(path, "rb") as fh:
                        json.loads(fh.read())
                except (OSError, ValueError):
                    return f"file {path} is not complete JSON (truncated? {os.path.getsize(path)} bytes): "
    return ""


def _culprit(e: BaseException, where: str) -> str:
    """'file X failed to read: ' from the error text, else from a scan of the step's files: a
    JSON metadata file that does not parse (a truncated `state/_METADATA`), an empty or
    truncated array chunk (orbax's ocdbt/zarr files); else ''."""
    text = " ".join(str(x) for x in (e, e.__cause__, e.__context__) if x is not None)
    for path in re.findall(r"(/[^\s\"'\]\[,:]+)", text):
        if path.startswith(where) and os.path.isfile(path):
            return f"file {path} failed to read: "
    if bad := _bad_json(where):
        return bad
    for d, _, files in os.walk(where):
        for f in sorted(files):
            path = os.path.join(d, f)
            if os.path.getsize(path) == 0 or (not f.startswith("_") and f != "manifest.ocdbt"
                                              and os.path.getsize(path) < 16):
                return f"file {path} failed to read (truncated to {os.path.getsize(path)} bytes): "
    return ""
