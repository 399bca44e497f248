"""Kubernetes API failures of the PyTorchJob launcher as errors that say what to do."""

from __future__ import annotations

import json

from videollm.errors import VideoLLMError
from videollm.launcher.base import TrainJobSpec


def api_status(exc: BaseException) -> int | None:
    """HTTP status of the ``ApiException`` that ``TrainingClient`` wrapped, if any."""
    return getattr(exc.__cause__, "status", None)


def api_message(exc: BaseException) -> str:
    """The API server's own message (from its ``Status`` body), else the exception text."""
    body = getattr(exc.__cause__, "body", None)
    if body:
        try:
            message = json.loads(body).get("message")
        except (ValueError, AttributeError):
            message = None
        if message:
            return str(message)
    return str(exc)


def api_error(exc: BaseException, verb: str, spec: TrainJobSpec) -> VideoLLMError:
    where = f"{spec.namespace}/{spec.name}"
    status = api_status(exc)
    if status in (401, 403):
        return VideoLLMError(
            f"Kubernetes refused to {verb} PyTorchJob {where} ({status}): the service account "
            f"needs {verb!r} on pytorchjobs.kubeflow.org in namespace {spec.namespace!r} "
            f"(see videollm.launcher.rbac.RBAC_RULES): {api_message(exc)}"
        )
    if status == 409:
        return VideoLLMError(
            f"PyTorchJob {where} already exists: delete it "
            f"(kubectl -n {spec.namespace} delete pytorchjob {spec.name}) or pick another job name"
        )
    if status == 404 and verb == "create":
        return VideoLLMError(
            f"cannot create PyTorchJob {where}: the kubeflow.org/v1 PyTorchJob CRD is not "
            f"installed (Kubeflow training operator) or namespace {spec.namespace!r} does not "
            f"exist: {api_message(exc)}"
        )
    if status == 422:
        return VideoLLMError(f"the API server rejected PyTorchJob {where}: {api_message(exc)}")
    return VideoLLMError(f"cannot {verb} PyTorchJob {where}: {api_message(exc)}")
