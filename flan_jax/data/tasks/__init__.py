"""Stage 3, tasks: seqio task registration and the catalogue of collections."""
