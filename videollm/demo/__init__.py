"""Self-contained demo assets: tiny random models and synthetic videos, built offline."""
