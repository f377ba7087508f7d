"""The run directory: unusable, busy, foreign or full model_dirs are refused in one line and
nothing already written changes; steps that did not run report no loss; the data stream's
identity is checked on resume; bad data leaves no checkpoints/ or tensorboard/ behind."""
import errno
import os
import shutil
import signal
import subprocess
import sys
import textwrap
import time

import jax
import pytest

from flan_jax import cli
from flan_jax.errors import FlanJaxError
from flan_jax.train import run_dir
from flan_jax.train.checkpoint import Checkpointer, CheckpointWriteError
from flan_jax.train.train import train
from train_tiny_model import TinyLM

LENGTHS = {"inputs": 4, "targets": 4}
ARGS = dict(model=TinyLM(), mixture="synthetic", feature_lengths=LENGTHS, batch_size=8, log_every=100)


def listing(root):
    """Every path under root with its size and mtime: 'nothing changed' means equal listings."""
    out = []
    for d, _, files in os.walk(root):
        out.append((d, None, None))
        for f in files:
            if f == run_dir.LOCK_NAME:  # a stale lock of a killed run may be cleared
                continue
            st = os.stat(os.path.join(d, f))
            out.append((os.path.join(d, f), st.st_size, st.st_mtime_ns))
    return sorted(out)


def cli_train(model_dir, *bindings):
    return cli.main(["train", "--gin_file=models/decoder_tiny.gin", "--gin_file=runs/finetune.gin",
                     "--gin.train.model=@DecoderConfig()", "--gin.train.mixture='synthetic'",
                     "--gin.train.feature_lengths={'inputs': 4, 'targets': 4}", "--gin.train.batch_size=8",
                     f"--model_dir={model_dir}", *bindings])


def one_line(capsys):
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "Traceback" not in err, err
    return err


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A model_dir after 2 steps (checkpoints 1 and 2)."""
    root = tmp_path_factory.mktemp("run") / "run"
    train(model_dir=str(root), num_steps=2, checkpoint_every=1, **ARGS)
    return root


# ---- unusable model_dir: a file, read-only, full -------------------------------------------

def test_model_dir_that_is_a_file_is_refused_by_the_cli(tmp_path, capsys):
    (tmp_path / "run").write_text("my notes")
    assert cli_train(tmp_path / "run", "--gin.train.num_steps=1") == 2
    err = one_line(capsys)
    assert f"model_dir {tmp_path / 'run'} exists and is not a directory" in err
    assert (tmp_path / "run").read_text() == "my notes"


def _mount_tmpfs(path, size):
    os.makedirs(path, exist_ok=True)
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)],
                          capture_output=True)
    if done.returncode != 0:
        pytest.skip("needs root to mount a tmpfs (out-of-space / read-only filesystem)")


@pytest.fixture
def tiny_fs(tmp_path):
    """A 2 MiB tmpfs (a real filesystem that can run out of space or turn read-only)."""
    mnt = tmp_path / "fs"
    _mount_tmpfs(mnt, "2m")
    yield mnt
    subprocess.run(["umount", "-l", str(mnt)], check=False)


def test_read_only_model_dir_is_refused_and_left_alone(tiny_fs, trained, capsys):
    shutil.copytree(trained, tiny_fs / "run")
    subprocess.run(["mount", "-o", "remount,ro", str(tiny_fs)], check=True)
    before = listing(tiny_fs)
    assert cli_train(tiny_fs / "run", "--gin.train.num_steps=4") == 2
    err = one_line(capsys)
    assert f"model_dir {tiny_fs / 'run'} cannot be written: Read-only file system" in err
    assert listing(tiny_fs) == before


def test_full_disk_mid_run_names_the_step_and_keeps_the_last_checkpoint(tiny_fs):
    """The disk fills after checkpoint 2 is written: the background write of checkpoint 4 fails;
    the run stops with one error naming step 4, ENOSPC and step 2, which still restores."""
    model_dir = tiny_fs / "run"

    def fill_disk(params, step):
        if step == 3:
            for _ in range(600):  # checkpoint 2's background write commits (renames) first
                if os.path.isdir(model_dir / "checkpoints" / "2"):
                    break
                time.sleep(0.05)
            try:  # the filler's own creation may already find the 2 MiB full (seen in a fresh-clone run)
                with open(tiny_fs / "filler", "wb") as f:
                    while True:
                        f.write(b"\0" * 65536)
                        f.flush()
            except OSError as e:
                assert e.errno == errno.ENOSPC
        return {}

    with pytest.raises(CheckpointWriteError,
                       match=r"checkpoint step 4 could not be written: No space left on device .*"
                             r"last complete checkpoint is step 2 in .*kept as it was"):
        train(model_dir=str(model_dir), num_steps=6, checkpoint_every=2, eval_hooks=[fill_disk], eval_every=1,
              **ARGS)
    os.remove(tiny_fs / "filler")
    # the kept checkpoint is whole: a run resumes from it and writes step 4 over the failed
    # write's leftover tmp directory
    assert (model_dir / "checkpoints" / "4.orbax-checkpoint-tmp").is_dir()
    r = train(model_dir=str(model_dir), num_steps=4, checkpoint_every=2, **ARGS)
    assert r.step == 4 and len(r.losses) == 2 and r.batches_consumed == 4
    assert Checkpointer(str(model_dir / "checkpoints")).latest_step() == 4


@pytest.mark.slow
def test_full_disk_through_the_cli_is_one_line_and_exit_2(tmp_path):
    """The whole stderr of `flan-jax train` on a 600 KiB filesystem (the first checkpoint does
    not fit): no traceback, no orbax ERROR records, one error line, exit status 2."""
    fs = tmp_path / "fs"
    _mount_tmpfs(fs, "600k")
    try:
        repo = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
        done = subprocess.run(
            [sys.executable, "-m", "flan_jax.cli", "train", "--gin_file=models/decoder_tiny.gin",
             "--gin_file=runs/finetune.gin", "--gin.train.model=@DecoderConfig()",
             "--gin.train.mixture='synthetic'", "--gin.train.feature_lengths={'inputs': 8, 'targets': 8}",
             "--gin.train.batch_size=8", "--gin.train.num_steps=4", "--gin.train.checkpoint_every=2",
             f"--model_dir={fs / 'run'}"],
            capture_output=True, text=True, timeout=600, env=dict(os.environ, PYTHONPATH=repo))
    finally:
        subprocess.run(["umount", "-l", str(fs)], check=False)
    lines = [ln for ln in done.stderr.splitlines()
             if ln.strip() and " INFO " not in ln and not ln.startswith(("I0000", "W0000"))]
    assert done.returncode == 2, done.stderr[-3000:]
    assert len(lines) == 1, lines
    assert lines[0].startswith("flan-jax train: error: checkpoint step 2 could not be written: "
                               "No space left on device (")
    assert "no complete checkpoint in" in lines[0]


def test_never_retrieved_write_futures_after_a_full_disk_are_dropped():
    """asyncio logs the pending tensorstore writes of a failed save as "Future exception was
    never retrieved" from the garbage collector (no orbax frame anywhere): those records are
    dropped from the CLI's stderr; other errors are kept (without their tracebacks)."""
    import logging

    from flan_jax.commands.train import _drop_traceback

    def record(exc):
        return logging.LogRecord("asyncio", logging.ERROR, __file__, 1, "Future exception was never retrieved",
                                 None, (type(exc), exc, None))

    write = ValueError("RESOURCE_EXHAUSTED: Error writing \"params.w1/0\" in OCDBT database at local file "
                       "\"/fs/run/checkpoints/2.orbax-checkpoint-tmp/state/\": [os_error_code='28']")
    assert _drop_traceback(record(write)) is False
    other = record(ValueError("a bug of ours"))
    assert _drop_traceback(other) is True and other.exc_info is None


def test_failed_background_save_is_raised_with_its_step(tmp_path, monkeypatch):
    """Without root (no tmpfs): the background writer's ENOSPC simulated by monkeypatching
    orbax's wait; the error names the step being written and the last complete one."""
    from train_tiny_model import random_batch

    from flan_jax.train import mesh as mesh_lib
    from flan_jax.train.optim import adafactor
    from flan_jax.train.state import create_state, state_shardings

    mesh = mesh_lib.make_mesh((1, 1, 1), devices=jax.devices()[:1])
    tx = adafactor().tx
    abstract, shardings = state_shardings(TinyLM(), tx, random_batch(0), mesh)
    state = create_state(TinyLM(), tx, random_batch(0), abstract, shardings)
    ckpt = Checkpointer(str(tmp_path), save_every=1)
    assert ckpt.save(state.replace(step=state.step + 1), 1, step=1)
    ckpt.wait()

    def no_space():
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(tmp_path / "2.orbax-checkpoint-tmp" / "x"))

    assert ckpt.save(state.replace(step=state.step + 2), 2, step=2)
    monkeypatch.setattr(ckpt._manager, "wait_until_finished", no_space)
    with pytest.raises(CheckpointWriteError, match=r"step 2 could not be written: No space left on device.*"
                                                   r"2\.orbax-checkpoint-tmp/x.*last complete checkpoint is step 1"):
        ckpt.wait()
    monkeypatch.undo()
    ckpt.close()


# ---- one run per model_dir -------------------------------------------------------------------

HOLD = textwrap.dedent("""
    import sys, time
    from flan_jax.train.run_dir import RunLock
    RunLock(sys.argv[1]).acquire()
    print("locked", flush=True)
    time.sleep(600)
""")


def _holder(model_dir):
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path))
    p = subprocess.Popen([sys.executable, "-c", HOLD, str(model_dir)], stdout=subprocess.PIPE, text=True, env=env)
    assert p.stdout.readline().strip() == "locked"
    return p


def test_second_run_on_a_busy_model_dir_is_refused(trained, capsys):
    holder = _holder(trained)
    try:
        before = listing(trained)
        with pytest.raises(run_dir.RunDirError, match=rf"in use by another training run \(pid {holder.pid} on "):
            train(model_dir=str(trained), num_steps=4, **ARGS)
        assert cli_train(trained, "--gin.train.num_steps=4") == 2
        assert f"pid {holder.pid}" in one_line(capsys)
        assert listing(trained) == before
    finally:
        holder.kill()
        holder.wait()


def test_lock_of_a_killed_run_is_stale_and_taken_over(tmp_path, caplog):
    import logging

    holder = _holder(tmp_path / "run")
    holder.send_signal(signal.SIGKILL)
    holder.wait()
    assert os.path.exists(tmp_path / "run" / ".lock")  # a crash leaves the file behind
    with caplog.at_level(logging.INFO, logger="flan_jax.train"):
        r = train(model_dir=str(tmp_path / "run"), num_steps=1, **ARGS)
    assert r.step == 1
    assert any(f"stale lock of pid {holder.pid}" in rec.getMessage() for rec in caplog.records)
    assert not os.path.exists(tmp_path / "run" / ".lock")  # released at the end


# ---- foreign contents --------------------------------------------------------------------------

@pytest.mark.parametrize("plant,named", [
    ("notes.txt", "notes.txt"),  # another program's files
    ("5/state/x", "5"),  # a checkpoint copied to the top level (orbax step dir)
    ("_CHECKPOINT_METADATA", "_CHECKPOINT_METADATA"),  # model_dir pointed at a checkpoint
    ("checkpoints/best", "checkpoints holds entries that are not checkpoint step directories (best)"),
])
def test_foreign_files_are_refused_and_kept(tmp_path, plant, named):
    path = tmp_path / "run" / plant
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("x")
    before = listing(tmp_path)
    with pytest.raises(run_dir.RunDirError, match=named.replace("(", r"\(").replace(")", r"\)")):
        train(model_dir=str(tmp_path / "run"), num_steps=1, **ARGS)
    assert listing(tmp_path) == before


def test_corrupt_checkpoint_names_the_file_that_failed(trained, tmp_path):
    copy = tmp_path / "run"
    shutil.copytree(trained, copy)
    for chunk in (copy / "checkpoints" / "2" / "state" / "d").iterdir():
        with open(chunk, "r+b") as f:  # the array data cut short (a partial copy), metadata intact
            f.truncate(os.path.getsize(chunk) // 2)
    before = listing(copy)
    with pytest.raises(FlanJaxError, match=rf"checkpoint {copy}/checkpoints/2 .*file {copy}/checkpoints/2/state/d/"
                                           r"\w+ failed to read"):
        train(model_dir=str(copy), num_steps=4, **ARGS)
    assert listing(copy) == before


# ---- steps that do not run ----------------------------------------------------------------------

def test_negative_num_steps_is_refused_and_writes_nothing(tmp_path, capsys):
    assert cli_train(tmp_path / "run", "--gin.train.num_steps=-5") == 2
    assert "train.num_steps must be an int >= 0, got -5" in one_line(capsys)
    assert not os.path.exists(tmp_path / "run")


@pytest.mark.slow
def test_nothing_to_train_prints_no_loss(tmp_path, capsys):
    assert cli_train(tmp_path / "run", "--gin.train.num_steps=1") == 0
    assert "trained 1 steps to step 1; last loss" in capsys.readouterr().out
    before = listing(tmp_path / "run")
    assert cli_train(tmp_path / "run", "--gin.train.num_steps=1") == 0
    out = capsys.readouterr().out
    assert "nothing to train: the checkpoint in" in out and "at step 1, num_steps is 1" in out
    assert "loss" not in out
    assert listing(tmp_path / "run") == before
    r = train(model_dir=str(tmp_path / "fresh"), num_steps=0, **ARGS)
    assert r.losses == [] and r.note == "nothing to train: num_steps is 0"
    assert not os.path.exists(tmp_path / "fresh")


# ---- data stream identity ------------------------------------------------------------------------

@pytest.mark.parametrize("change,field", [({"batch_size": 16}, "batch_size: 8 then, 16 now"),
                                          ({"seed": 1}, "seed: 0 then, 1 now"),
                                          ({"feature_lengths": {"inputs": 4, "targets": 6}}, "feature_lengths")])
def test_resume_with_another_data_stream_is_refused(trained, change, field):
    before = listing(trained)
    with pytest.raises(FlanJaxError, match=rf"another data stream \(.*{field}.*allow_data_change"):
        train(model_dir=str(trained), num_steps=4, checkpoint_every=1, **{**ARGS, **change})
    assert listing(trained) == before


def test_allowed_batch_size_change_continues_at_the_same_row(trained, tmp_path):
    """2 steps of 8 rows consumed 16 rows: with batch 16 the run continues at batch 1 (row 16)."""
    shutil.copytree(trained, tmp_path / "run")
    r = train(model_dir=str(tmp_path / "run"), num_steps=3, checkpoint_every=1, allow_data_change=True,
              **{**ARGS, "batch_size": 16})
    assert r.batches_consumed == 16 // 16 + 1 and len(r.losses) == 1


# ---- bad data ---------------------------------------------------------------------------------------

def test_bad_data_leaves_no_run_directories(tmp_path, monkeypatch):
    """The first batch fails (an example holding id 0): no checkpoints/, tensorboard/ or
    model_dir is left behind."""
    from flan_jax.data.features import pipeline
    from flan_jax.train import train as train_mod

    bad = [{"inputs": [5, 0, 7], "targets": [3, 1]}] * 64
    monkeypatch.setattr(train_mod.train_data, "register", lambda name, feature_format=None, inputs_length=None: {})
    monkeypatch.setattr(train_mod.train_data, "check_vocabulary", lambda size: None)
    real = pipeline.batches
    monkeypatch.setattr(pipeline, "batches", lambda source, *a, **k: real(bad, *a, **k))
    with pytest.raises(FlanJaxError, match="example 0: 'inputs' contains id 0"):
        train(model_dir=str(tmp_path / "run"), num_steps=2, **{**ARGS, "mixture": "some.task:zs"})
    assert not os.path.exists(tmp_path / "run")
