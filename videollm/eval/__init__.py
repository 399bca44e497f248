"""videollm.eval."""
