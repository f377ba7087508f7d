"""The main job SIGKILLed between its phases and started again resumes at the phase it was in:
completed phases are not run again (their files and markers untouched), the summary equals an
uninterrupted run's; the same run folder with other settings is refused in one line; a phase
marker is complete or absent. The model, scoring and training are stand-ins
(main_job_kill_worker.py), so the job's own bookkeeping is what runs."""
import json
import os
import subprocess
import sys
from pathlib import Path

import gin
import pytest

import main_job_kill_worker as job
from flan_jax.errors import FlanJaxError
from flan_jax.experiments.phases import Phases

HERE = Path(__file__).parent


def worker(run_dir, kill_after):
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(HERE), os.environ.get("PYTHONPATH", "")])}
    return subprocess.run([sys.executable, str(HERE / "main_job_kill_worker.py"), str(run_dir), kill_after],
                          capture_output=True, text=True, timeout=600, env=env)


def _stamps(run):
    """mtimes of what the phases wrote (mixture.png belongs to the data step, redone each start)."""
    return {str(p): p.stat().st_mtime_ns for p in sorted(run.rglob("*")) if p.is_file() and p.parent != run}


@pytest.fixture
def stand_ins(monkeypatch):
    from flan_jax.experiments import main_job
    from flan_jax.models import params_io
    from flan_jax.train import train as train_lib

    for module, name in ((main_job, "use_base"), (main_job, "score"), (params_io, "load_checkpoint"),
                         (params_io, "build_model"), (train_lib, "train")):
        monkeypatch.setattr(module, name, getattr(module, name))  # restored after the test
    job.CALLS.clear()
    yield job.CALLS
    gin.clear_config()  # the job's bindings must not reach later tests in this process


@pytest.mark.slow
@pytest.mark.parametrize("kill_after", ["tune", "eval_after"])
def test_a_killed_main_job_resumes_at_its_phase(tmp_path, stand_ins, kill_after):
    run = tmp_path / "run"
    killed = worker(run, kill_after)
    assert killed.returncode == -9, killed.stderr[-3000:]
    assert not (run / "summary.json").exists()
    before = _stamps(run)

    out = job.run(run)  # the restart, in this process
    done = ["eval_before", "tune", "eval_after"][: 2 if kill_after == "tune" else 3]
    # only what the completed phases did not do ran again: after a kill past "tune", the tuned
    # params are read back from the tuning's folder (train() at num_steps), not trained again
    train_mix, control_mix = out["summary"]["train_mixture"], "flan_nl_no_template_heldout_no_nl_nli"
    want_calls = (["train train", f"score w={float(len(train_mix))}"] if kill_after == "tune" else []) + [
        "train control", f"score w={float(len(control_mix))}"]
    assert stand_ins == want_calls, stand_ins
    assert {k: v for k, v in _stamps(run).items() if k in before} == before  # nothing rewritten
    assert all(f"{d}.json" in os.listdir(run / "phases") for d in done)

    ref = job.run(tmp_path / "ref")  # uninterrupted
    got, want = (json.loads((r / "summary.json").read_text()) for r in (run, tmp_path / "ref"))
    for key in ("clusters", "losses", "control_losses", "steps", "held_out_cluster"):
        assert got[key] == want[key], key
    assert got["losses"] == [2.0, 1.0 + 1.0 / len(train_mix)]  # the killed process's, read back


def test_other_settings_in_the_same_folder_are_refused(tmp_path):
    Phases(tmp_path, {"gin train.num_steps": "60", "gin train.batch_size": "8"})
    Phases(tmp_path, {"gin train.num_steps": "60", "gin train.batch_size": "8"})  # the same: fine
    with pytest.raises(FlanJaxError, match=r"holds a job with other settings \(gin train.num_steps: \"60\" then, "
                                           r"\"80\" now; .*job.json\); use another run folder"):
        Phases(tmp_path, {"gin train.num_steps": "80", "gin train.batch_size": "8"})


def test_a_marker_is_complete_or_absent(tmp_path):
    phases = Phases(tmp_path, {})
    assert phases.done("tune") is None
    phases.record("tune", {"step": 2, "losses": [1.5, 1.25]}, minutes=0.5)
    assert phases.done("tune") == {"step": 2, "losses": [1.5, 1.25], "minutes": 0.5}
    assert [p.name for p in (tmp_path / "phases").iterdir() if p.name.startswith(".")] == []  # no temporary left
    (tmp_path / "phases" / "eval_after.json").write_text('{"outputs": {"correct"')  # not written by Phases
    with pytest.raises(FlanJaxError, match=r"eval_after.json: not a complete phase record"):
        phases.done("eval_after")
