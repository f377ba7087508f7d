"""Stage 5, features: vocabularies, feature conversion, packing, chat templates, the input pipeline."""
