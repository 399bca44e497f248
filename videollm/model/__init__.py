"""videollm.model."""
