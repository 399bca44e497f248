"""The Kubernetes permissions the PyTorchJob launcher needs, and nothing more.

The Helm chart's Role grants exactly these rules (a test compares them), so a change to what the
launcher calls must change this list.
"""

from __future__ import annotations

#: (apiGroup, resource, verbs) the launcher uses in its own namespace:
#: create/get/list/watch/delete the job, and patch it (a retried attempt points the job it
#: re-attaches to at its own owner); get its own pod (the job's owner), list the job's pods and
#: read the master's log.
RBAC_RULES: tuple[tuple[str, str, tuple[str, ...]], ...] = (
    ("kubeflow.org", "pytorchjobs", ("create", "delete", "get", "list", "patch", "watch")),
    ("", "pods", ("get", "list", "watch")),
    ("", "pods/log", ("get",)),
)
