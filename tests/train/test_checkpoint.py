"""Checkpoints: round trip with the data position; bad checkpoints raise and are left alone."""
import os
import shutil

import jax
import numpy as np
import pytest

from flan_jax.errors import FlanJaxError
from flan_jax.train import mesh as mesh_lib
from flan_jax.train.checkpoint import Checkpointer
from flan_jax.train.optim import adafactor
from flan_jax.train.state import create_state, state_shardings
from train_tiny_model import TinyLM, random_batch


def make_state(model, seed=0):
    mesh = mesh_lib.make_mesh((1, 2, 1), devices=jax.devices()[:2])
    tx = adafactor().tx
    abstract, shardings = state_shardings(model, tx, random_batch(0), mesh)
    return create_state(model, tx, random_batch(0), abstract, shardings, seed=seed), abstract, shardings


def listing(root):
    return sorted((d, sorted(f)) for d, _, f in os.walk(root))


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    """A directory with a complete checkpoint of step 0 holding data position 7."""
    state, abstract, shardings = make_state(TinyLM(), seed=1)
    root = tmp_path_factory.mktemp("ckpt")
    ckpt = Checkpointer(str(root), save_every=5)
    assert ckpt.save(state, batches_consumed=7, force=True)
    ckpt.close()
    return root, jax.device_get(state), abstract, shardings


def test_round_trip_restores_state_and_data_position(saved):
    root, state, abstract, shardings = saved
    ckpt = Checkpointer(str(root), save_every=5)
    assert ckpt.latest_step() == 0
    restored, consumed = ckpt.restore(abstract, shardings)
    assert consumed == 7
    for a, b in zip(jax.tree.leaves(jax.device_get(restored)), jax.tree.leaves(state)):
        np.testing.assert_array_equal(a, b)
    assert restored.params["w1"].sharding == shardings.params["w1"]


def test_only_due_steps_are_saved(tmp_path):
    state, _, _ = make_state(TinyLM())
    ckpt = Checkpointer(str(tmp_path), save_every=5)
    assert not ckpt.save(state.replace(step=state.step + 3), 3)
    assert ckpt.save(state.replace(step=state.step + 5), 5)
    ckpt.close()
    assert sorted(os.listdir(tmp_path)) == ["5"]


def test_checkpoint_of_another_model_shape_raises_and_is_kept(saved):
    root, _, _, _ = saved
    before = listing(root)
    _, abstract, shardings = make_state(TinyLM(hidden=48))
    with pytest.raises(FlanJaxError, match=r"different model.*w1.*\(16, 32\).*\(16, 48\)"):
        Checkpointer(str(root)).restore(abstract, shardings)
    assert listing(root) == before


def test_corrupt_checkpoint_raises_and_is_kept(saved, tmp_path):
    root, _, abstract, shardings = saved
    copy = tmp_path / "copy"
    shutil.copytree(root, copy)
    for d, _, files in os.walk(copy / "0" / "state"):
        for f in files:
            if not f.startswith("_"):  # keep metadata readable, garble the array data
                with open(os.path.join(d, f), "r+b") as fh:
                    fh.truncate(3)
    before = listing(copy)
    with pytest.raises(FlanJaxError, match="corrupt or incomplete"):
        Checkpointer(str(copy)).restore(abstract, shardings)
    assert listing(copy) == before


def test_checkpoint_of_another_optimizer_raises(saved):
    root, _, _, _ = saved
    from flan_jax.train.optim import adamw

    mesh = mesh_lib.make_mesh((1, 2, 1), devices=jax.devices()[:2])
    abstract, shardings = state_shardings(TinyLM(), adamw().tx, random_batch(0), mesh)
    before = listing(root)
    with pytest.raises(FlanJaxError, match="another optimizer"):
        Checkpointer(str(root)).restore(abstract, shardings)
    assert listing(root) == before


def test_unfinished_write_is_ignored_and_previous_restored(saved, tmp_path):
    root, _, abstract, shardings = saved
    copy = tmp_path / "copy"
    shutil.copytree(root, copy)
    # what a SIGKILL during the write of step 5 leaves behind: orbax's tmp dir, half written
    shutil.copytree(copy / "0", copy / "5.orbax-checkpoint-tmp-1234")
    shutil.rmtree(copy / "5.orbax-checkpoint-tmp-1234" / "state")
    ckpt = Checkpointer(str(copy))
    assert ckpt.latest_step() == 0
    _, consumed = ckpt.restore(abstract, shardings)
    assert consumed == 7


def test_bad_checkpoint_arguments(tmp_path):
    with pytest.raises(FlanJaxError, match="save_every"):
        Checkpointer(str(tmp_path), save_every=0)
    (tmp_path / "file").write_text("x")
    with pytest.raises(FlanJaxError, match="not a directory"):
        Checkpointer(str(tmp_path / "file"))
    with pytest.raises(FlanJaxError, match="no complete checkpoint"):
        Checkpointer(str(tmp_path / "empty")).restore(None, None)


def test_state_written_uncompressed_and_compressed_checkpoints_still_restore(saved, tmp_path):
    """The state's arrays are written without zstd; a checkpoint written the earlier way
    (orbax's StandardCheckpointHandler, zstd) restores to the same state."""
    import orbax.checkpoint as ocp

    root, state, abstract, shardings = saved
    raw = sum(np.asarray(x).nbytes for x in jax.tree.leaves(state))

    def stored(where):  # bytes of the state's data files (OCDBT's d/ folder)
        return sum(os.path.getsize(os.path.join(d, f)) for d, _, files in os.walk(where)
                   for f in files if os.path.basename(d) == "d")

    assert stored(root) >= raw  # no codec: the zeros of the optimizer state would shrink a lot
    old = ocp.CheckpointManager(str(tmp_path), options=ocp.CheckpointManagerOptions(create=True),
                                item_handlers={"state": ocp.StandardCheckpointHandler(),
                                               "data": ocp.JsonCheckpointHandler()})
    as_dict = {"step": state.step, "params": state.params, "opt_state": state.opt_state}
    old.save(0, args=ocp.args.Composite(state=ocp.args.StandardSave(as_dict),
                                        data=ocp.args.JsonSave({"batches_consumed": 3, "step": 0})))
    old.wait_until_finished()
    old.close()
    assert stored(tmp_path) < raw  # zstd, as checkpoints were written before
    restored, consumed = Checkpointer(str(tmp_path)).restore(abstract, shardings)
    assert consumed == 3
    for a, b in zip(jax.tree.leaves(jax.device_get(restored)), jax.tree.leaves(state)):
        np.testing.assert_array_equal(a, b)
