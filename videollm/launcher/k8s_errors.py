"""Kubernetes API failures of the cluster launchers as errors that say what to do."""

from __future__ import annotations

import json
from dataclasses import dataclass

from videollm.errors import VideoLLMError
from videollm.launcher.base import TrainJobSpec


@dataclass(frozen=True)
class JobKind:
    """What the error messages call a job kind.

    Attributes:
        kind: The object's kind, e.g. ``PyTorchJob``.
        plural: Its resource name, e.g. ``pytorchjobs``.
        group: Its API group, e.g. ``kubeflow.org``.
        installed_by: What installs its CRD, for a 404 on create.
    """

    kind: str
    plural: str
    group: str
    installed_by: str


PYTORCHJOB = JobKind(
    "PyTorchJob", "pytorchjobs", "kubeflow.org", "the kubeflow.org/v1 PyTorchJob CRD (Kubeflow "
    "training operator)"
)  # fmt: skip
TRAINJOB = JobKind(
    "TrainJob", "trainjobs", "trainer.kubeflow.org", "the trainer.kubeflow.org/v1alpha1 TrainJob "
    "CRD (Kubeflow Trainer v2)"
)  # fmt: skip


def api_status(exc: BaseException) -> int | None:
    """HTTP status of an ``ApiException``, or of the one a ``TrainingClient`` error wraps."""
    status = getattr(exc, "status", None)
    return status if isinstance(status, int) else getattr(exc.__cause__, "status", None)


def api_message(exc: BaseException) -> str:
    """The API server's own message (from its ``Status`` body), else the exception text."""
    body = getattr(exc, "body", None) or getattr(exc.__cause__, "body", None)
    if body:
        try:
            message = json.loads(body).get("message")
        except (ValueError, AttributeError):
            message = None
        if message:
            return str(message)
    return str(exc)


def api_error(
    exc: BaseException, verb: str, spec: TrainJobSpec, kind: JobKind = PYTORCHJOB
) -> VideoLLMError:
    """``exc`` (a failed ``verb`` on the job of ``spec``) as an error that says what to do."""
    where = f"{spec.namespace}/{spec.name}"
    status = api_status(exc)
    if status in (401, 403):
        return VideoLLMError(
            f"Kubernetes refused to {verb} {kind.kind} {where} ({status}): the service account "
            f"needs {verb!r} on {kind.plural}.{kind.group} in namespace {spec.namespace!r} "
            f"(see videollm.launcher.rbac.RBAC_RULES): {api_message(exc)}"
        )
    if status == 409:
        return VideoLLMError(
            f"{kind.kind} {where} already exists: delete it (kubectl -n {spec.namespace} delete "
            f"{kind.kind.lower()} {spec.name}) or pick another job name"
        )
    if status == 404 and verb == "create":
        return VideoLLMError(
            f"cannot create {kind.kind} {where}: {kind.installed_by} is not installed or "
            f"namespace {spec.namespace!r} does not exist: {api_message(exc)}"
        )
    if status == 422:
        return VideoLLMError(f"the API server rejected {kind.kind} {where}: {api_message(exc)}")
    return VideoLLMError(f"cannot {verb} {kind.kind} {where}: {api_message(exc)}")
