"""`flan-jax` subcommands, one module each: parse arguments, call the core, print."""
