"""Stage 7, audit: duplicates, near-duplicates, lengths and train/eval overlap."""
