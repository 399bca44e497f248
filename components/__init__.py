"""One thin KFP component per step. Each calls ``videollm.kfp`` and holds no logic.

Every component runs in the pipeline image (:data:`videollm.images.PIPELINE_IMAGE`), which has
``videollm`` and ``kfp`` installed, so no packages are installed at run time.
"""

from components.convert import convert
from components.evaluate import evaluate
from components.extract import extract
from components.package import package
from components.plan_shards import plan_shards
from components.select import select
from components.train import train

__all__ = ["convert", "evaluate", "extract", "package", "plan_shards", "select", "train"]
