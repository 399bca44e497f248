"""What the shared watcher (:mod:`videollm.launcher.job_watch`) needs from one job kind."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

from videollm.launcher.k8s_errors import JobKind


@dataclass
class JobState:
    """What a job's status says.

    Attributes:
        conditions: Its status conditions (each with ``type``, ``status``, ``reason``,
            ``message`` and ``last_transition_time``).
        succeeded: It finished successfully.
        failed: It failed.
        labels: Its labels.
        owner_uids: The uids of its owner references.
        deleting: It is being deleted (``metadata.deletionTimestamp`` is set).
    """

    conditions: list[Any] = field(default_factory=list)
    succeeded: bool = False
    failed: bool = False
    labels: dict[str, str] = field(default_factory=dict)
    owner_uids: list[str] = field(default_factory=list)
    deleting: bool = False


class JobBackend(Protocol):
    """The API calls on one job of one kind; each raises one of
    :data:`~videollm.launcher.job_status.API_ERRORS` when the call fails."""

    kind: JobKind
    #: The submitted object as the JSON-ready dict the API server receives.
    manifest: dict[str, Any]
    #: How long a finished job is kept (for the failure message); ``None``: not known here.
    ttl_s: int | None

    def create(self) -> None:
        """Create the job from :attr:`manifest`."""

    def get(self) -> Any:
        """Read the job."""

    def state(self, job: Any) -> JobState:
        """What the job read by :meth:`get` says."""

    def patch(self, body: dict[str, Any]) -> None:
        """Merge-patch the job."""

    def delete(self, foreground: bool) -> None:
        """Delete the job; ``foreground``: it stays (being deleted) until its pods are gone."""

    def master_log(self) -> dict[str, str]:
        """The master pod's log by pod name (empty while there is no pod)."""
