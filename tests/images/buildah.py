"""Build and run the images here, with no Docker engine and no registry: buildah and debootstrap.

As root, Debian's ``debootstrap`` makes a bookworm root filesystem that stands in for the
registry's Debian image (``buildah from scratch`` + ``add`` + ``commit``); ``make images-cpu``
then builds the CPU images on it with ``buildah build --pull=never --isolation chroot`` in
storage of our own (never the machine's). :func:`run_read_only` runs an image the way a
Kubernetes pod with ``readOnlyRootFilesystem: true`` would: the image's user, environment and
working directory, its root file system mounted read-only, and writable tmpfs mounts only
where the caller says.
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import signal
import subprocess
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

#: The local stand-in for ``debian:12.11-slim`` (images/base-cpu/Dockerfile's DEBIAN_IMAGE).
DEBIAN_IMAGE = "localhost/videollm-debootstrap:bookworm"
DEBIAN_MIRROR = "http://deb.debian.org/debian"
#: Where Debian takes extra CAs from, and the variables that point TLS clients at its bundle:
#: the stand-in carries this machine's (a TLS-inspecting proxy's CA, say), so that pip and uv
#: inside the build trust what the machine trusts; the registry's image would have none.
LOCAL_CAS = Path("/usr/local/share/ca-certificates")
CA_VARIABLES = ("SSL_CERT_FILE", "PIP_CERT", "REQUESTS_CA_BUNDLE")
#: What a container runtime (or the kubelet) writes into every container's /etc/hosts.
ETC_HOSTS = "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n"


def missing_tools() -> list[str]:
    """The programs :class:`Buildah` needs that are not on PATH."""
    return [t for t in ("buildah", "debootstrap", "unshare", "chroot") if not shutil.which(t)]


@dataclass(frozen=True)
class Buildah:
    """buildah with its own storage under ``state`` (kept between runs: the layer cache).

    ``driver`` is the storage driver: ``overlay`` (the kernel's, as root) stores each layer
    once; ``vfs``, for where overlay mounts are refused, copies the whole file system for
    every build step and is several times slower.
    """

    state: Path
    driver: str = "overlay"

    @property
    def global_flags(self) -> list[str]:
        """The flags that select this storage, for every buildah command."""
        return [
            "--root", str(self.state / self.driver / "storage"),
            "--runroot", str(self.state / self.driver / "run"),
            "--storage-driver", self.driver,
        ]  # fmt: skip

    def __call__(self, *args: str) -> str:
        """Run ``buildah ARGS`` and return its stdout; a failure raises with its stderr."""
        proc = subprocess.run(
            ["buildah", *self.global_flags, *args], capture_output=True, text=True
        )
        if proc.returncode != 0:
            raise RuntimeError(f"buildah {' '.join(args)} failed:\n{proc.stderr[-4000:]}")
        return proc.stdout

    def exists(self, ref: str) -> bool:
        """Whether the image ``ref`` is in this storage."""
        proc = subprocess.run(
            ["buildah", *self.global_flags, "inspect", "--type", "image", ref],
            capture_output=True,
        )
        return proc.returncode == 0

    def bootstrap_debian(self, ref: str = DEBIAN_IMAGE, mirror: str = DEBIAN_MIRROR) -> None:
        """Make ``ref``: a minimal Debian bookworm image from debootstrap, as the registry's is."""
        self.state.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=self.state) as tmp:
            rootfs, tar = Path(tmp) / "rootfs", Path(tmp) / "rootfs.tar"
            subprocess.run(
                ["debootstrap", "--variant=minbase", "bookworm", str(rootfs), mirror],
                check=True,
                capture_output=True,
            )
            # debootstrap leaves its package cache; the registry's image has none either.
            shutil.rmtree(rootfs / "var" / "cache" / "apt" / "archives", ignore_errors=True)
            # Installing ca-certificates (every base does) adds these to the image's bundle.
            for ca in LOCAL_CAS.glob("*.crt"):
                target = rootfs / LOCAL_CAS.relative_to("/")
                target.mkdir(parents=True, exist_ok=True)
                shutil.copy(ca, target / ca.name)
            ca_env = [f"{k}={os.environ[k]}" for k in CA_VARIABLES if os.environ.get(k)]
            # A tar keeps owners and modes (a folder copy would make every file root's).
            subprocess.run(["tar", "-C", str(rootfs), "-cf", str(tar), "."], check=True)
            container = self("from", "scratch").strip()
            try:
                self("add", container, str(tar), "/")
                env = ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"]
                env += ca_env
                self("config", *(f"--env={e}" for e in env), "--cmd", "bash", container)
                self("commit", "--quiet", container, ref)
            finally:
                self("rm", container)

    def config(self, ref: str) -> dict:
        """The OCI image config of ``ref`` (User, Env, WorkingDir, Cmd, ...)."""
        return json.loads(self("inspect", "--type", "image", ref))["OCIv1"]["config"]

    def size(self, ref: str) -> str:
        """Size of ``ref`` as ``buildah images`` reports it (e.g. ``1.2 GB``)."""
        return json.loads(self("images", "--json", ref))[0]["size"]

    @contextmanager
    def rootfs(self, ref: str) -> Iterator[Path]:
        """A fresh container of ``ref``: its root file system, removed afterwards."""
        container = self("from", "--pull-never", "--quiet", ref).strip()
        try:
            yield Path(self("mount", container).strip())
        finally:
            self("rm", container)


def run_read_only(
    rootfs: Path,
    config: Mapping,
    argv: Sequence[str] | None = None,
    *,
    env: Mapping[str, str] | None = None,
    writable: Sequence[str] = ("/tmp",),
    binds: Mapping[str, Path] | None = None,
    read_only_binds: Mapping[str, Path] | None = None,
    **popen: object,
) -> subprocess.Popen:
    """Start ``argv`` (default: the image's Cmd) in ``rootfs`` like a read-only pod would.

    In new mount and PID namespaces: ``rootfs`` bind-mounted read-only onto itself, /proc and
    /dev, an /etc/hosts for localhost, an empty tmpfs owned by the image's user at each path
    of ``writable``, and host folders at container paths (``binds`` writable,
    ``read_only_binds`` not); then chroot, the image's User, Env (plus ``env``) and
    WorkingDir. The network is the host's, so a server inside listens on this machine.

    Args:
        rootfs: The container's root file system (:meth:`Buildah.rootfs`).
        config: The image config (:meth:`Buildah.config`).
        argv: Command to run instead of the image's Cmd.
        env: Variables added to the image's Env.
        writable: Container paths that get a writable tmpfs (emptyDirs in a pod).
        binds: Container path → host folder, mounted writable.
        read_only_binds: Container path → host folder, mounted read-only.
        **popen: Passed to :class:`subprocess.Popen` (stdout, stderr, text, ...).

    Returns:
        The process, in a session of its own: end it with :func:`stop`.
    """
    user = config.get("User", "")
    if not all(part.isdigit() for part in user.split(":")) or not user:
        raise ValueError(f"the image's USER must be numeric uid:gid, not {user!r}")
    uid, _, gid = user.partition(":")
    gid = gid or uid
    variables = dict(v.split("=", 1) for v in config.get("Env", []))
    variables.update(env or {})
    command = list(argv or config["Cmd"])
    root = str(rootfs)
    hosts = rootfs.parent / "videollm-hosts"
    hosts.write_text(ETC_HOSTS)

    def at(path: str) -> str:
        return shlex.quote(root + path)

    steps = []
    # Mount points, made before the root turns read-only (a runtime creates them too).
    for path in [*writable, *(binds or {}), *(read_only_binds or {})]:
        (rootfs / path.lstrip("/")).mkdir(parents=True, exist_ok=True)
    (rootfs / "etc" / "hosts").touch()
    steps += [
        f"mount --bind {at('')} {at('')}",
        f"mount -o remount,bind,ro {at('')}",
        f"mount -t proc proc {at('/proc')}",
        f"mount --rbind /dev {at('/dev')}",
        f"mount --bind {shlex.quote(str(hosts))} {at('/etc/hosts')}",
        f"mount -o remount,bind,ro {at('/etc/hosts')}",
    ]
    for path in writable:
        mode = "1777" if path == "/tmp" else "0755"
        steps.append(f"mount -t tmpfs -o uid={uid},gid={gid},mode={mode} tmpfs {at(path)}")
    for path, host in (binds or {}).items():
        steps.append(f"mount --bind {shlex.quote(str(host))} {at(path)}")
    for path, host in (read_only_binds or {}).items():
        steps.append(f"mount --bind {shlex.quote(str(host))} {at(path)}")
        steps.append(f"mount -o remount,bind,ro {at(path)}")
    run = [
        "exec", "chroot", f"--userspec={uid}:{gid}", root,
        "/usr/bin/env", "-i", f"--chdir={config.get('WorkingDir') or '/'}",
        *(f"{k}={v}" for k, v in variables.items()),
        *command,
    ]  # fmt: skip
    steps.append(shlex.join(run))
    script = "set -eu\n" + "\n".join(steps)
    namespaces = ["unshare", "--mount", "--propagation", "private", "--pid", "--kill-child"]
    return subprocess.Popen([*namespaces, "sh", "-c", script], start_new_session=True, **popen)


def stop(proc: subprocess.Popen, timeout: float = 60) -> None:
    """SIGTERM the container's processes (a pod's stop), then SIGKILL them after ``timeout``.

    ``unshare`` ignores SIGTERM while it waits for its child, so the signal goes to the whole
    session: the command, PID 1 of its namespace, gets it too.
    """
    if proc.poll() is not None:
        return
    os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=timeout)
