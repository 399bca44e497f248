"""What the KFP tasks take in and hand out: task set-up, small results, artifact files.

Big data moves by URI (see :mod:`videollm.kfp.work_dirs`); what a task returns is small: URIs,
counts, metrics and a Markdown report.
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from videollm.errors import VideoLLMError


@dataclass
class TaskResult:
    """A task's small outputs.

    Attributes:
        uri: Where its big output went.
        metrics: Numbers for the KFP Metrics artifact.
        report: Markdown for the KFP Markdown artifact.
        manifest: JSON for the Dataset/Model artifact (always includes ``uri``).
    """

    uri: str
    metrics: dict[str, float] = field(default_factory=dict)
    report: str = ""
    manifest: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.manifest = {"uri": self.uri, **self.manifest}


def init_task(experiment: str, platform_config: str, platform_secret: str) -> None:
    """Per-task set-up: INFO logs to the task's log, a check that the platform ConfigMap and
    Secret reached the pod (:func:`~videollm.kfp.preflight.check_platform`), and the
    run's MLflow experiment.

    Raises:
        ConfigError: inside a cluster, the ConfigMap or Secret is missing or incomplete.
    """
    from videollm.kfp.preflight import check_platform

    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    check_platform(platform_config, platform_secret)
    if experiment:
        os.environ["MLFLOW_EXPERIMENT_NAME"] = experiment


def log_metrics(artifact: Any, result: TaskResult) -> None:
    """Copy ``result.metrics`` into a KFP ``Metrics`` artifact (names made KFP-safe)."""
    for name, value in result.metrics.items():
        artifact.log_metric(name.replace("/", "_"), float(value))


def single_uri(uris: list[str]) -> str:
    """The one prefix that every collected shard output names."""
    distinct = sorted(set(uris))
    if len(distinct) != 1:
        raise VideoLLMError(f"expected every shard to share one prefix, got {distinct}")
    return distinct[0]


def whole_numbers(value: Any) -> Any:
    """``value`` with integral floats made ints, through lists and dicts.

    KFP passes ``dict`` parameters as protobuf Structs, whose numbers are all floats: a
    ``tokens_per_frame: 4`` arrives as ``4.0``, which an integer option refuses.
    """
    if isinstance(value, dict):
        return {k: whole_numbers(v) for k, v in value.items()}
    if isinstance(value, list):
        return [whole_numbers(v) for v in value]
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def write_outputs(result: TaskResult, manifest_path: str, report_path: str | None = None) -> None:
    """Write the manifest (Dataset/Model artifact) and the report (Markdown artifact)."""
    Path(manifest_path).parent.mkdir(parents=True, exist_ok=True)
    Path(manifest_path).write_text(json.dumps(result.manifest, indent=2) + "\n")
    if report_path:
        write_report(result, report_path)


def write_report(result: TaskResult, report_path: str) -> None:
    """Write the report (Markdown artifact)."""
    Path(report_path).parent.mkdir(parents=True, exist_ok=True)
    Path(report_path).write_text(result.report or "(nothing to report)\n")
