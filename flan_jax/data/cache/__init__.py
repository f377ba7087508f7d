"""Stage 6, cache: rendered, tokenized tasks in ArrayRecord files and the Grain reader over them."""
