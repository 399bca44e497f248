"""KFP pipelines built from ``components/``; their compiled YAML sits beside them."""

from pipelines.extract_only import extract_only
from pipelines.finetune import finetune

PIPELINES = {"finetune": finetune, "extract_only": extract_only}

__all__ = ["PIPELINES", "extract_only", "finetune"]
