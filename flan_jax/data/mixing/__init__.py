"""Stage 4, mixing: mixture files, rates, caps and published sizes."""
