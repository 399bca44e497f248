"""Built-in poolings, one module each; every module registers itself in ``POOLINGS``."""
