"""videollm.cli."""
