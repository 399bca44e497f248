"""Reading a cluster job's status: transient API errors tolerated, condition changes logged."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import urllib3
from kubernetes.client.rest import ApiException

from videollm.launcher.base import TrainJobSpec
from videollm.launcher.k8s_errors import JobKind, api_error, api_status

#: What a failed Kubernetes call raises: ``TrainingClient`` wraps the ``ApiException`` in a
#: ``RuntimeError`` (or raises ``TimeoutError``); the plain client raises it, or urllib3's
#: errors when the API server cannot be reached.
API_ERRORS: tuple[type[BaseException], ...] = (
    RuntimeError,
    OSError,
    ApiException,
    urllib3.exceptions.HTTPError,
)
#: Consecutive failed ``get`` calls tolerated (API server restarts, network blips).
MAX_GET_ERRORS = 5


class JobGone(Exception):
    """The job no longer exists (404 on ``get``)."""


@dataclass(frozen=True)
class Condition:
    """One status condition of a job, whatever its kind (the attributes of ``V1JobCondition``)."""

    type: str
    status: str
    reason: str | None = None
    message: str | None = None
    last_transition_time: str | None = None

    @classmethod
    def from_dict(cls, c: dict[str, Any]) -> Condition:
        """A condition from its JSON form (``status.conditions[]`` of a custom object)."""
        return cls(
            str(c.get("type", "")),
            str(c.get("status", "")),
            c.get("reason"),
            c.get("message"),
            c.get("lastTransitionTime"),
        )


class StatusPoller:
    """Reads the job, tolerating a few transient API errors, and logs condition changes.

    Args:
        get: Reads the job (raises one of :data:`API_ERRORS` when the call fails).
        spec: The job's run (its name and namespace).
        kind: The job's kind, for messages.
        log: Where condition changes and retries are logged.
    """

    def __init__(
        self, get: Callable[[], Any], spec: TrainJobSpec, kind: JobKind, log: logging.Logger
    ) -> None:
        self._get = get
        self._spec = spec
        self._kind = kind
        self._log = log
        self._errors = 0
        self._seen: set[tuple[str, str]] = set()

    def get(self) -> Any:
        """The job, or ``None`` after a transient error (the next poll tries again).

        Raises:
            JobGone: The job was deleted.
            VideoLLMError: Reading it is forbidden, or failed :data:`MAX_GET_ERRORS` times in a row.
        """
        spec = self._spec
        try:
            job = self._get()
        except API_ERRORS as exc:
            status = api_status(exc)
            if status == 404:
                raise JobGone from exc
            self._errors += 1
            if status in (401, 403) or self._errors >= MAX_GET_ERRORS:
                raise api_error(exc, "get", spec, self._kind) from exc
            self._log.warning(
                "reading %s %s/%s failed (%d/%d), retrying: %s",
                self._kind.kind,
                spec.namespace,
                spec.name,
                self._errors,
                MAX_GET_ERRORS,
                exc,
            )
            return None
        self._errors = 0
        return job

    def note(self, conditions: Iterable[Any]) -> None:
        """Log each condition the first time it becomes true."""
        for c in conditions:
            key = (str(c.type), str(c.last_transition_time))
            if c.status == "True" and key not in self._seen:
                self._seen.add(key)
                self._log.info(
                    "%s %s/%s: %s (%s)",
                    self._kind.kind,
                    self._spec.namespace,
                    self._spec.name,
                    c.type,
                    c.message,
                )


def failed_reason(conditions: Iterable[Any]) -> str:
    """The ``Failed`` condition's reason and message."""
    for c in conditions:
        if c.type == "Failed" and c.status == "True":
            return f"{c.reason or 'Failed'}: {c.message}" if c.message else c.reason or "Failed"
    return "Failed"
