"""Stage 2, sources: row readers (TFDS, local files, packaged benchmarks, Flan 2022 files, plain text)."""
