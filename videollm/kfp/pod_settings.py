"""Pod settings that KFP takes only as literals, written into a compiled package per run.

KFP's pod labels and annotations are literals, and its driver refuses to mount a PVC whose
name parameter is empty. So the compiled pipelines carry the defaults (Istio's sidecar kept
out of every task pod, the HF cache PVC and token Secret on the GPU tasks, no Kueue queue)
and ``videollm pipeline submit`` rewrites them from the run's parameters:

* ``istio_sidecar=true``: no ``sidecar.istio.io/inject`` label or annotation;
* ``kueue_queue=Q``: the extract pods get Kueue's queue label (the PyTorchJob gets it from the
  train task in every case);
* ``hf_cache_pvc=""`` / ``hf_token_secret=""``: no cache mount and ``HF_HOME`` / no token.

A package uploaded by hand keeps the defaults for the task pods; the training pods follow
the parameters either way.
"""

from __future__ import annotations

from typing import Any

from videollm.cluster import (
    HF_HOME,
    HF_HOME_ANNOTATION,
    ISTIO_INJECT,
    KUEUE_QUEUE_LABEL,
)
from videollm.kfp.train_task import checked_label

#: The executors of the extract tasks (``finetune``/``extract_only``, ``benchmark``): the task
#: pods Kueue queues, as they hold GPUs by the batch.
EXTRACT_EXECUTORS = ("exec-extract", "exec-extract-benchmark")


def apply_pod_settings(
    spec: dict[str, Any], platform: list[dict[str, Any]], params: dict[str, Any]
) -> None:
    """Rewrite the task pods' Kubernetes settings of a compiled pipeline from ``params``.

    Args:
        spec: The PipelineSpec (its parameter defaults fill what ``params`` leaves out).
        platform: The platform spec documents that follow it (changed in place).
        params: The run's parameters.

    Raises:
        ConfigError: ``kueue_queue`` is not a valid label value.
    """
    defaults = spec["root"].get("inputDefinitions", {}).get("parameters", {})

    def value(name: str) -> Any:
        return params.get(name, defaults.get(name, {}).get("defaultValue"))

    executors = _executors(platform)
    queue = value("kueue_queue")
    for name in EXTRACT_EXECUTORS if queue else ():
        if name in executors:
            extract = executors[name].setdefault("podMetadata", {})
            labels = extract.setdefault("labels", {})
            labels[KUEUE_QUEUE_LABEL] = checked_label("kueue_queue", queue)
    for executor in executors.values():
        if value("istio_sidecar") is True:
            _drop_metadata(executor, ISTIO_INJECT)
        if not value("hf_cache_pvc"):
            _drop_hf_cache(executor)
        if not value("hf_token_secret"):
            _drop_env_from_secret(executor, "HF_TOKEN")


def _executors(platform: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    executors: dict[str, dict[str, Any]] = {}
    for doc in platform:
        kubernetes = doc.get("platforms", {}).get("kubernetes", {})
        executors.update(kubernetes.get("deploymentSpec", {}).get("executors", {}))
    return executors


def _drop_metadata(executor: dict[str, Any], key: str) -> None:
    metadata = executor.get("podMetadata", {})
    for kind in ("labels", "annotations"):
        metadata.get(kind, {}).pop(key, None)


def _drop_hf_cache(executor: dict[str, Any]) -> None:
    mounts = [m for m in executor.get("pvcMount", []) if m.get("mountPath") != HF_HOME]
    fields = [f for f in executor.get("fieldPathAsEnv", []) if f.get("name") != "HF_HOME"]
    _set_or_drop(executor, "pvcMount", mounts)
    _set_or_drop(executor, "fieldPathAsEnv", fields)
    executor.get("podMetadata", {}).get("annotations", {}).pop(HF_HOME_ANNOTATION, None)


def _drop_env_from_secret(executor: dict[str, Any], env_var: str) -> None:
    kept = [
        s
        for s in executor.get("secretAsEnv", [])
        if all(k.get("envVar") != env_var for k in s.get("keyToEnv", []))
    ]
    _set_or_drop(executor, "secretAsEnv", kept)


def _set_or_drop(executor: dict[str, Any], key: str, items: list[Any]) -> None:
    if items:
        executor[key] = items
    else:
        executor.pop(key, None)
