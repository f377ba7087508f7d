"""Subprocess body for the LoRA SIGKILL test: train tiny adapters on a random-init frozen base,
SIGKILL itself after step `kill` ("step:N") or inside the final adapter write ("adapters"),
then save the written adapters."""
import os
import signal
import sys

import numpy as np

from flan_jax.models import lora
from flan_jax.models.decoder import DecoderConfig
from flan_jax.train import lora_training
from flan_jax.train.optim import adamw
from flan_jax.train.train import train

DEC = DecoderConfig(vocab_size=64, emb_dim=16, num_heads=4, num_kv_heads=2, head_dim=8, mlp_dim=32, num_layers=2)
CFG = lora.LoraConfig(rank=4, alpha=8.0, targets=("heads", "kv_heads", "mlp"))


def run(model_dir, steps, kill="none"):
    def hook(params, step):
        if kill == f"step:{step}":
            os.kill(os.getpid(), signal.SIGKILL)
        return {}

    if kill == "adapters":  # after the safetensors file is in the temporary folder, before the rename
        import safetensors.numpy

        real = safetensors.numpy.save_file

        def save_file(*args, **kwargs):
            real(*args, **kwargs)
            os.kill(os.getpid(), signal.SIGKILL)

        safetensors.numpy.save_file = save_file
    return train(model=DEC, mixture="synthetic", feature_lengths={"inputs": 8, "targets": 8}, batch_size=8,
                 num_steps=steps, model_dir=model_dir, lora=CFG, checkpoint_every=2, seed=1,
                 optimizer=adamw(1e-2, weight_decay=0.0), eval_hooks=[hook], eval_every=1)


def adapters(model_dir, step):
    found, _, _ = lora_training.load_adapters(os.path.join(model_dir, "adapters", str(step)))
    return {f"{path}/{name}": np.asarray(v) for path, d in found.items() for name, v in d.items()}


if __name__ == "__main__":
    model_dir, steps, kill, out = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
    r = run(model_dir, steps, kill)
    np.savez(out, **adapters(model_dir, r.step))
