"""Built-in projectors, one module each; every module registers itself in ``PROJECTORS``."""
