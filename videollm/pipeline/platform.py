"""Names the pipelines share with the Helm chart: one place, no literals scattered around.

The chart (``charts/videollm``) creates ``<release>-platform`` (ConfigMap: endpoints) and
``<release>-credentials`` (Secret: keys) and a ``videollm-pipeline`` ServiceAccount; with the
release named ``videollm`` these are the defaults below. Each is also a pipeline parameter.
"""

from __future__ import annotations

from videollm.images import PIPELINE_IMAGE
from videollm.launcher.base import GPU_RESOURCE

PLATFORM_CONFIG = "videollm-platform"
PLATFORM_SECRET = "videollm-credentials"
SERVICE_ACCOUNT = "videollm-pipeline"

#: ConfigMap keys every task reads as environment variables (the region only when the chart
#: sets ``platform.region``, for an external S3 outside the default region).
CONFIG_KEYS = (
    "VIDEOLLM_S3_ENDPOINT",
    "MLFLOW_S3_ENDPOINT_URL",
    "VIDEOLLM_S3_SECURE",
    "MLFLOW_TRACKING_URI",
    "VIDEOLLM_BUCKET",
    "AWS_DEFAULT_REGION",
)
#: Secret keys every task reads as environment variables.
SECRET_KEYS = ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY")

#: Accelerator of the GPU tasks (extraction) and the node label/taint GPU nodes carry.
#: GPUs per extract task (a literal: kfp.local cannot resolve a parameter inside ParallelFor).
EXTRACT_GPUS = 1
GPU_TOLERATION = {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}

__all__ = [
    "CONFIG_KEYS",
    "EXTRACT_GPUS",
    "GPU_RESOURCE",
    "GPU_TOLERATION",
    "PIPELINE_IMAGE",
    "PLATFORM_CONFIG",
    "PLATFORM_SECRET",
    "SECRET_KEYS",
    "SERVICE_ACCOUNT",
]
