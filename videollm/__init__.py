"""videollm: fine-tune, evaluate and serve Video-ChatGPT-style video LLMs."""

__version__ = "0.1.0"
