"""The main job with stand-ins for the model, its scoring and its training (milliseconds each;
the phases, reports and summary are the job's own code), and a subprocess body that SIGKILLs
itself right after phase `kill_after` is recorded.

Stand-ins: the base is params {"w": 0}; a tuning on mixture M gives {"w": len(M)}, losses
[2.0, 1.0 + 1 / len(M)], and when run again in the same folder returns its params without
losses (as train() does at num_steps); an example is scored correct when a hash of (w, its
inputs) is even."""
import hashlib
import os
import signal
import sys
import types

import numpy as np

from flan_jax.experiments import main_job, phases

BINDINGS = ["main_job_options.base = '/stand-in/base'", "main_job_options.held_out_examples_per_task = 3",
            "main_job_options.held_in_examples_per_task = 1", "main_job_options.compilation_cache = False",
            "train.num_steps = 2"]
CALLS: list[str] = []  # what the stand-ins were asked to do, in this process


def install_stand_ins():
    from flan_jax.models import params_io
    from flan_jax.train import train as train_lib

    def score(module, params, examples, **kwargs):
        CALLS.append(f"score w={float(params['w'])}")
        return {c: {s: [int(hashlib.sha256(f"{float(params['w'])}|{np.asarray(r['inputs']).tobytes()!r}".encode())
                                          .digest()[0] % 2 == 0) for r in rows] for s, rows in by.items()}
                for c, by in examples.items()}

    def train(mixture, model_dir, **kwargs):
        CALLS.append(f"train {os.path.basename(model_dir)}")
        done = os.path.join(model_dir, "done")
        state = types.SimpleNamespace(params={"w": np.float32(len(mixture))}, frozen=None)
        if os.path.exists(done):
            return train_lib.TrainResult(state, 2, 2, [], {}, note="nothing to train")
        os.makedirs(model_dir, exist_ok=True)
        open(done, "w").close()
        return train_lib.TrainResult(state, 2, 2, [2.0, 1.0 + 1.0 / len(mixture)], {})

    main_job.use_base = lambda base: base
    main_job.score = score
    params_io.load_checkpoint = lambda path: ("stand-in config", {"w": np.float32(0)})
    params_io.build_model = lambda config: types.SimpleNamespace(config=config)
    train_lib.train = train


def run(run_dir, kill_after=""):
    install_stand_ins()
    if kill_after:
        real = phases.Phases.record

        def record(self, name, outputs, minutes=0.0):
            real(self, name, outputs, minutes)
            if name == kill_after:
                os.kill(os.getpid(), signal.SIGKILL)

        phases.Phases.record = record
    return main_job.run_main_job(str(run_dir), None, BINDINGS)


if __name__ == "__main__":
    run(sys.argv[1], sys.argv[2] if len(sys.argv) > 2 else "")
