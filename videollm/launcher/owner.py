"""The object a training job belongs to: the run's Argo Workflow, found from the watcher's pod.

KFP runs each task as a pod owned by the run's Argo ``Workflow``. A PyTorchJob that names the same
owner is deleted by Kubernetes' garbage collector together with the run (deleting the run in
KFP, or the backend's workflow TTL), even if its watcher was killed without a chance to clean
up. The reference has ``blockOwnerDeletion: false``: setting it to true would need ``update`` on
the owner's ``finalizers``, a permission the watcher does not have.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

import urllib3
from kubernetes import client as k8s
from kubernetes.client.rest import ApiException

log = logging.getLogger(__name__)

#: The namespace of the pod's service account; Kubernetes mounts it into every pod that has a token.
NAMESPACE_FILE = Path("/var/run/secrets/kubernetes.io/serviceaccount/namespace")


def watcher_pod(namespace_file: Path = NAMESPACE_FILE) -> tuple[str, str] | None:
    """``(namespace, name)`` of the pod this process runs in, or ``None`` outside a cluster.

    The name is ``HOSTNAME`` (a pod's host name is its name unless the pod sets another).
    """
    name = os.environ.get("HOSTNAME", "")
    try:
        namespace = namespace_file.read_text().strip()
    except OSError:
        return None
    return (namespace, name) if namespace and name else None


def run_owner(
    core_api: k8s.CoreV1Api, pod: tuple[str, str] | None, job_namespace: str
) -> k8s.V1OwnerReference | None:
    """The owner reference a job in ``job_namespace`` gets: the pod's controller, else the pod.

    Args:
        core_api: Kubernetes core API (reads the pod: ``get`` on ``pods``).
        pod: ``(namespace, name)`` of the watcher pod (:func:`watcher_pod`), or ``None``.
        job_namespace: Where the job goes.

    Returns:
        The reference, or ``None`` (logged) when there is no pod, it cannot be read, or it is in
        another namespace: an owner must be in its dependent's namespace, and the garbage
        collector deletes a dependent whose owner it cannot find there.
    """
    if pod is None:
        log.info("not running in a Kubernetes pod: the training job gets no owner reference")
        return None
    namespace, name = pod
    if namespace != job_namespace:
        log.warning(
            "the training job goes to namespace %s, this pod runs in %s: no owner reference "
            "(owners must share the namespace); only the deadline and TTL bound the job",
            job_namespace,
            namespace,
        )
        return None
    try:
        found = core_api.read_namespaced_pod(name, namespace)
    except (ApiException, urllib3.exceptions.HTTPError, OSError) as exc:
        # Only the owner reference is lost: the deadline, the TTL and SIGTERM still hold.
        log.warning(
            "cannot read this pod %s/%s (needs get on pods): the training job gets no owner "
            "reference: %s",
            namespace,
            name,
            exc,
        )
        return None
    refs = found.metadata.owner_references or []
    controller = next((r for r in refs if r.controller), refs[0] if refs else None)
    if controller is None:
        # A bare pod (no workflow): tie the job to the pod itself.
        owner = k8s.V1OwnerReference(
            api_version="v1", kind="Pod", name=found.metadata.name, uid=found.metadata.uid
        )
    else:
        owner = k8s.V1OwnerReference(
            api_version=controller.api_version,
            kind=controller.kind,
            name=controller.name,
            uid=controller.uid,
        )
    owner.block_owner_deletion = False
    log.info("the training job belongs to %s %s (uid %s)", owner.kind, owner.name, owner.uid)
    return owner
