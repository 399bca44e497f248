"""One thin KFP component per step. Each calls ``videollm.kfp`` and holds no logic.

Every component runs in the pipeline image (:data:`videollm.images.PIPELINE_IMAGE`), which has
``videollm`` and ``kfp`` installed, so no packages are installed at run time.
"""

from components.compare_benchmarks import compare_benchmarks
from components.convert import convert
from components.evaluate import evaluate
from components.extract import extract
from components.extract_benchmark import extract_benchmark
from components.package import package
from components.plan_benchmark import plan_benchmark
from components.plan_shards import plan_shards
from components.score_benchmark import score_benchmark
from components.select import select
from components.train import train

__all__ = [
    "compare_benchmarks",
    "convert",
    "evaluate",
    "extract",
    "extract_benchmark",
    "package",
    "plan_benchmark",
    "plan_shards",
    "score_benchmark",
    "select",
    "train",
]
