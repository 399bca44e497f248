"""The Kubernetes permissions the cluster launchers need, and nothing more.

The Helm chart's Role grants exactly these rules, in this order (a test compares them), so a
change to what a launcher calls must change this list.
"""

from __future__ import annotations

#: (apiGroup, resource, verbs) the launchers use in their own namespace:
#: create/get/list/watch/delete the job (PyTorchJob or TrainJob), and patch it (a retried
#: attempt points the job it re-attaches to at its own owner); get the namespaced Trainer
#: runtime a TrainJob names (to say clearly when it is missing); get its own pod (the job's
#: owner), list the job's pods and read the master's log.
RBAC_RULES: tuple[tuple[str, str, tuple[str, ...]], ...] = (
    ("kubeflow.org", "pytorchjobs", ("create", "delete", "get", "list", "patch", "watch")),
    ("trainer.kubeflow.org", "trainjobs", ("create", "delete", "get", "list", "patch", "watch")),
    ("trainer.kubeflow.org", "trainingruntimes", ("get",)),
    ("", "pods", ("get", "list", "watch")),
    ("", "pods/log", ("get",)),
)

#: Calls a launcher tries without a namespaced Role granting them, a refusal (403) tolerated:
#: the ``trainjob`` launcher reads the cluster-scoped ``ClusterTrainingRuntime`` its job names
#: (a ClusterRole may grant it; without one, Trainer's webhook alone checks the runtime).
BEST_EFFORT_RULES: tuple[tuple[str, str, tuple[str, ...]], ...] = (
    ("trainer.kubeflow.org", "clustertrainingruntimes", ("get",)),
)
