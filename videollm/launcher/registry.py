"""Launchers by name: the train task's ``launcher`` setting picks one here.

A launcher is one module in :mod:`videollm.launcher` that registers a factory, which builds
the launcher from the train task's :class:`LaunchSettings`::

    # videollm/launcher/slurm.py
    from videollm.launcher.registry import LAUNCHERS, LaunchSettings

    @LAUNCHERS.register("slurm", summary="an sbatch job on the Slurm cluster")
    def slurm_launcher(settings: LaunchSettings) -> SlurmLauncher: ...

``auto`` is not a launcher of its own: it stands for ``pytorchjob`` inside a Kubernetes
cluster and ``local`` anywhere else (:func:`resolve`).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from dataclasses import dataclass

from videollm.errors import ConfigError
from videollm.launcher.base import Launcher
from videollm.registry import Registry

logger = logging.getLogger(__name__)

#: The launcher setting that picks one by where the task runs.
AUTO = "auto"
#: Set in every pod by Kubernetes: its presence means the task runs inside a cluster.
IN_CLUSTER_ENV = "KUBERNETES_SERVICE_HOST"


@dataclass(frozen=True)
class LaunchSettings:
    """The train task's settings that say how a launcher waits for its job.

    Attributes:
        deadline_s: The job's own deadline (``runPolicy.activeDeadlineSeconds``); a watcher
            waits somewhat longer, so the deadline normally ends a hung job first.
        delete_on_success: Delete a cluster job once it succeeds.
    """

    deadline_s: int
    delete_on_success: bool = True


LauncherFactory = Callable[[LaunchSettings], Launcher]

#: Every launcher; each module of :mod:`videollm.launcher` may register one.
LAUNCHERS: Registry[LauncherFactory] = Registry("launcher", "launcher", package="videollm.launcher")


def choices() -> list[str]:
    """What the ``launcher`` setting accepts: ``auto`` and every registered launcher."""
    return [AUTO, *LAUNCHERS.names()]


def resolve(name: str) -> str:
    """The launcher ``name`` stands for: ``auto`` is ``pytorchjob`` when the process runs inside
    a cluster (``KUBERNETES_SERVICE_HOST`` is set) and ``local`` otherwise; any other name is
    itself.

    Raises:
        ConfigError: ``name`` is neither ``auto`` nor a registered launcher; the message lists
            the choices.
    """
    if name != AUTO and name not in LAUNCHERS:
        known = ", ".join(choices())
        raise ConfigError(f"launcher: unknown launcher {name!r}; choose from {known}")
    if name != AUTO:
        return name
    in_cluster = bool(os.environ.get(IN_CLUSTER_ENV))
    picked = "pytorchjob" if in_cluster else "local"
    logger.info(
        "launcher auto → %s (%s %s)", picked, IN_CLUSTER_ENV, "set" if in_cluster else "unset"
    )
    return picked


def make_launcher(name: str, settings: LaunchSettings) -> Launcher:
    """The launcher called ``name`` (after :func:`resolve`), built from ``settings``.

    Raises:
        ConfigError: Unknown launcher name.
    """
    return LAUNCHERS.get(resolve(name))(settings)
