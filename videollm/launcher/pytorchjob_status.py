"""Reading a PyTorchJob's status: transient API errors tolerated, condition changes logged."""

from __future__ import annotations

import logging

from kubeflow.training import TrainingClient, models

from videollm.launcher.base import TrainJobSpec
from videollm.launcher.k8s_errors import api_error, api_status
from videollm.launcher.pytorchjob_manifest import KIND

log = logging.getLogger("videollm.launcher.pytorchjob")

#: Consecutive failed ``get`` calls tolerated (API server restarts, network blips).
MAX_GET_ERRORS = 5


class JobGone(Exception):
    """The job no longer exists (404 on ``get``)."""


class StatusPoller:
    """Reads the job, tolerating a few transient API errors, and logs condition changes."""

    def __init__(self, training: TrainingClient, spec: TrainJobSpec) -> None:
        self._training = training
        self._spec = spec
        self._errors = 0
        self._seen: set[tuple[str, str]] = set()

    def get(self) -> models.KubeflowOrgV1PyTorchJob | None:
        """The job, or ``None`` after a transient error (the next poll tries again).

        Raises:
            JobGone: The job was deleted.
            VideoLLMError: Reading it is forbidden, or failed :data:`MAX_GET_ERRORS` times in a row.
        """
        spec = self._spec
        try:
            job = self._training.get_job(spec.name, namespace=spec.namespace, job_kind=KIND)
        except (RuntimeError, TimeoutError) as exc:
            status = api_status(exc)
            if status == 404:
                raise JobGone from exc
            self._errors += 1
            if status in (401, 403) or self._errors >= MAX_GET_ERRORS:
                raise api_error(exc, "get", spec) from exc
            log.warning(
                "reading PyTorchJob %s/%s failed (%d/%d), retrying: %s",
                spec.namespace,
                spec.name,
                self._errors,
                MAX_GET_ERRORS,
                exc,
            )
            return None
        self._errors = 0
        return job

    def note(self, conditions: list[models.V1JobCondition]) -> None:
        """Log each condition the first time it becomes true."""
        for c in conditions:
            key = (str(c.type), str(c.last_transition_time))
            if c.status == "True" and key not in self._seen:
                self._seen.add(key)
                log.info(
                    "PyTorchJob %s/%s: %s (%s)",
                    self._spec.namespace,
                    self._spec.name,
                    c.type,
                    c.message,
                )


def failed_reason(conditions: list[models.V1JobCondition]) -> str:
    """The ``Failed`` condition's reason and message."""
    for c in conditions:
        if c.type == "Failed" and c.status == "True":
            return f"{c.reason or 'Failed'}: {c.message}" if c.message else c.reason or "Failed"
    return "Failed"
