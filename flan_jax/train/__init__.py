"""The trainer (t5x's conventions without t5x), one concern per module, in data-flow order:

    loss.py        cross_entropy_loss: masked sums + aux (token count, correct, z-loss)
    optim.py       adafactor (T5 fine-tuning defaults), adamw, lr_schedule  [gin]
    mesh.py        make_mesh (data, fsdp, tensor), check_batch
    state.py       TrainState, state_shardings (eval_shape -> logical rules), create_state
    step.py        make_train_step (micro-batch accumulation), jit_train_step
    checkpoint.py  Checkpointer (orbax; state + data position)
    distributed.py multi-host start-up and global batches
    metrics.py     model FLOPs, measured matmul peak, TensorBoard writer
    train.py       train(): mesh -> data -> state -> step -> restore -> loop  [gin]
    train_cmd.py   `flan-jax train` / `python -m flan_jax.train`

Nothing is imported here, so `import flan_jax.train.<module>` stays cheap and JAX is not
initialised before a command (e.g. `flan-jax compile`) has set its platform.
"""
