"""Fail a run's first task, not its last, when the cluster lacks the platform ConfigMap or Secret.

Every task reads the MLflow and S3 endpoints from the platform ConfigMap and the credentials
from the platform Secret, both mounted as optional environment variables. Optional, because a
missing required object leaves the pod in ``CreateContainerConfigError`` for ever; but then a
missing ConfigMap would send the run's tracking to a SQLite file inside the pod, noticed only
at ``select``. So each task checks on start, inside a cluster, that they arrived.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

from videollm.cluster import current_namespace
from videollm.errors import ConfigError
from videollm.storage.settings import KEY_VARS, SECRET_DIR_VAR


def check_platform(
    platform_config: str, platform_secret: str, env: Mapping[str, str] | None = None
) -> None:
    """Inside a cluster pod, require what the platform ConfigMap and Secret provide.

    Outside a cluster (no ``KUBERNETES_SERVICE_HOST``) nothing is checked: a local run may
    track to SQLite and keep its data in folders. An empty name means the run uses no such
    object (``videollm pipeline run --local`` passes empty names), so it is not checked either.

    Args:
        platform_config: The ConfigMap that must provide ``MLFLOW_TRACKING_URI``.
        platform_secret: The Secret that must provide ``AWS_ACCESS_KEY_ID`` and
            ``AWS_SECRET_ACCESS_KEY`` (or a mounted ``VIDEOLLM_S3_SECRET_DIR``).
        env: The environment to check (default ``os.environ``).

    Raises:
        ConfigError: a value is missing; the message names the object, its namespace and the
            pipeline parameter that names it.
    """
    env = os.environ if env is None else env
    if not env.get("KUBERNETES_SERVICE_HOST"):
        return
    namespace = current_namespace()
    problems = []
    if platform_config and not env.get("MLFLOW_TRACKING_URI", "").strip():
        problems.append(
            f"MLFLOW_TRACKING_URI is not set: the platform ConfigMap {platform_config!r} is "
            f"missing from namespace {namespace!r} or has no MLFLOW_TRACKING_URI key (the "
            "pipeline parameter platform_config names it; the Helm chart creates "
            "<release>-platform)"
        )
    missing = [k for k in KEY_VARS if not env.get(k, "").strip()]
    if platform_secret and missing and not env.get(SECRET_DIR_VAR, "").strip():
        problems.append(
            f"{' and '.join(missing)} not set: the platform Secret {platform_secret!r} is "
            f"missing from namespace {namespace!r} or lacks those keys (the pipeline "
            "parameter platform_secret names it; the Helm chart creates <release>-credentials)"
        )
    if problems:
        raise ConfigError("; ".join(problems))
