"""File-format readers that both data and models use (the GGUF container)."""
