"""videollm.features."""
