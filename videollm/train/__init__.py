"""videollm.train."""
