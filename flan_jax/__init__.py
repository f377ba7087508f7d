"""flan_jax: FLAN-style instruction tuning in JAX/Flax.

Importing the package registers no task and reads no file. Start from
`flan_jax.data.tasks.registry` (registration), `flan_jax.train.train` (the trainer) or the CLI
(`flan-jax --help`).
"""
__version__ = "0.1.0"
