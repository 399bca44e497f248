"""Built-in encoder families, one module each; each registers itself in ``ENCODER_FAMILIES``."""
