"""Where a pipeline run's data goes.

Features and records go under a prefix keyed by what they are made from
(``<work_uri>/features|records/<key>``), so a re-run with the same inputs reuses them and KFP's
cache can skip the task; the rest goes under one prefix per pipeline run
(``<work_uri>/<run>/checkpoint|eval|bento|train-logs``).
"""

from __future__ import annotations

import hashlib
import json
import os
from typing import Any

from videollm.errors import ConfigError
from videollm.kfp.task_io import whole_numbers
from videollm.storage import join


def work_root(work_uri: str) -> str:
    """``work_uri``, or by default ``s3://$VIDEOLLM_BUCKET/runs``.

    ``VIDEOLLM_BUCKET`` comes from the platform ConfigMap, so on a cluster the data goes to the
    bucket the Helm chart created, whatever it is named.

    Raises:
        ConfigError: neither is set.
    """
    if work_uri:
        return work_uri
    bucket = os.environ.get("VIDEOLLM_BUCKET", "").strip()
    if not bucket:
        raise ConfigError(
            "work_uri: required (a folder or s3:// prefix for the run's data) when the "
            "platform ConfigMap gives no VIDEOLLM_BUCKET"
        )
    return f"s3://{bucket}/runs"


def work_dir(work_uri: str, run_id: str) -> str:
    """The prefix every task of one pipeline run writes under."""
    return join(work_root(work_uri), run_id or "run")


def keyed_dir(work_uri: str, kind: str, **inputs: Any) -> str:
    """``<work_uri>/<kind>/<key>``: where data made from exactly ``inputs`` goes.

    The key is a digest of the inputs, not the run id: every run with the same inputs reads
    and writes the same prefix (extraction skips videos already there), and the task that
    writes it has the same KFP inputs, so KFP's cache can skip it altogether.
    """
    canonical = json.dumps(inputs, sort_keys=True, default=str)
    return join(work_root(work_uri), kind, hashlib.sha256(canonical.encode()).hexdigest()[:16])


def features_dir(
    work_uri: str,
    videos_uri: str,
    encoder: str,
    num_frames: int,
    pooling: str = "spatiotemporal",
    pooling_options: dict[str, Any] | None = None,
) -> str:
    """Where ``extract`` puts the features of these videos, encoder, frames and pooling."""
    inputs: dict[str, Any] = {"videos_uri": videos_uri, "encoder": encoder}
    inputs["num_frames"] = int(num_frames)
    # Keyed by the pooling only when it is not the default: features made before pooling
    # was a parameter keep their key, so re-runs still find them.
    if pooling != "spatiotemporal" or pooling_options:
        inputs.update(pooling=pooling, pooling_options=whole_numbers(pooling_options or {}))
    return keyed_dir(work_uri, "features", **inputs)


def records_dir(
    work_uri: str,
    annotations_uri: str,
    annotation_format: str,
    num_frames: int,
    val_fraction: float,
) -> str:
    """Where ``convert`` puts the records made from these annotations and settings."""
    return keyed_dir(
        work_uri,
        "records",
        annotations_uri=annotations_uri,
        annotation_format=annotation_format,
        num_frames=int(num_frames),
        val_fraction=float(val_fraction),
    )


def benchmark_features_root(work_uri: str) -> str:
    """Where the ``benchmark`` pipeline keeps benchmark videos' features, one folder per
    videos folder and extraction settings (see :mod:`videollm.bench.features`)."""
    return join(work_root(work_uri), "benchmark-features")
