"""Where runs are recorded: the tracking URI, its reachability, and experiments.

With ``MLFLOW_TRACKING_URI`` unset, runs go to a SQLite file under the working directory
(``mlflow.db``) with artifacts in ``mlartifacts/`` next to it, so the demo needs no server.
A server with MLflow's basic-auth app takes the login from ``MLFLOW_TRACKING_USERNAME`` and
``MLFLOW_TRACKING_PASSWORD``; :func:`connect` checks it once, so a missing or wrong login fails
the step at its start with one line naming the variables, not later inside MLflow.
"""

from __future__ import annotations

import logging
import os
import re
import ssl
import urllib.error
import urllib.request
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import mlflow
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

from videollm.errors import TrackingError
from videollm.locking import exclusive_file

log = logging.getLogger(__name__)

DEFAULT_EXPERIMENT = "videollm"
LOCAL_DB = "mlflow.db"
LOCAL_ARTIFACTS = "mlartifacts"
# A dead server must fail fast: a step should not hang for MLflow's default ~4 min of retries.
HEALTH_TIMEOUT_S = 5.0
USERNAME_VAR = "MLFLOW_TRACKING_USERNAME"
PASSWORD_VAR = "MLFLOW_TRACKING_PASSWORD"


def tracking_uri() -> str:
    """Return the tracking URI in force.

    Returns:
        ``MLFLOW_TRACKING_URI`` when set (KFP injects it), else
        ``sqlite:///<abs cwd>/mlflow.db``.
    """
    uri = os.environ.get("MLFLOW_TRACKING_URI", "").strip()
    if uri:
        return uri
    return f"sqlite:///{Path.cwd().resolve() / LOCAL_DB}"


def experiment_name(experiment: str | None = None) -> str:
    """Resolve the experiment: the argument, else ``MLFLOW_EXPERIMENT_NAME``, else ``videollm``."""
    return experiment or os.environ.get("MLFLOW_EXPERIMENT_NAME") or DEFAULT_EXPERIMENT


def redact_uri(uri: str) -> str:
    """Drop ``user:password@`` from a URI so it can go into messages and logs."""
    parts = urlsplit(uri)
    if parts.username is None and parts.password is None:
        return uri
    host = parts.hostname or ""
    netloc = f"{host}:{parts.port}" if parts.port else host
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))


def _is_local_sqlite(uri: str) -> bool:
    return uri.startswith("sqlite:///")


def _tls_context() -> ssl.SSLContext | None:
    """Honour MLflow's own TLS settings so the probe trusts what the MLflow client trusts."""
    if os.environ.get("MLFLOW_TRACKING_INSECURE_TLS", "").lower() == "true":
        return ssl._create_unverified_context()  # The user opted out of certificate checks.
    cafile = os.environ.get("MLFLOW_TRACKING_SERVER_CERT_PATH")
    return ssl.create_default_context(cafile=cafile) if cafile else None


def check_reachable(uri: str, timeout_s: float = HEALTH_TIMEOUT_S) -> None:
    """Fail fast when nothing answers ``<uri>/health`` on an HTTP(S) tracking server.

    Args:
        uri: tracking URI; only ``http``/``https`` URIs are probed.
        timeout_s: socket timeout for the probe.

    Raises:
        TrackingError: naming the (redacted) URI and the reason.
    """
    if urlsplit(uri).scheme not in ("http", "https"):
        return
    probe = uri.rstrip("/") + "/health"
    try:
        with urllib.request.urlopen(probe, timeout=timeout_s, context=_tls_context()) as resp:
            resp.read(64)
            return
    except urllib.error.HTTPError as err:
        # It answered: 401/403/404 come from auth or a proxy in front of a live server; only
        # a 5xx (e.g. an ingress with no backend) means nothing is there to log to.
        if err.code < 500:
            return
        reason = f"HTTP {err.code}"
    except (urllib.error.URLError, OSError) as err:
        reason = str(getattr(err, "reason", err))
    raise TrackingError(
        f"MLflow tracking server {redact_uri(uri)} is unreachable ({reason}); "
        "check MLFLOW_TRACKING_URI or start the server"
    )


def check_login(client: MlflowClient) -> None:
    """Fail when an HTTP(S) tracking server refuses this client's login (HTTP 401/403).

    The probe is the cheapest authenticated call (one experiment), made through the MLflow
    client so it sends exactly the credentials every later call will send.

    Raises:
        TrackingError: naming ``MLFLOW_TRACKING_URI`` and ``MLFLOW_TRACKING_USERNAME`` (and the
            user name given), never the password.
    """
    uri = client.tracking_uri
    if urlsplit(uri).scheme not in ("http", "https"):
        return
    try:
        client.search_experiments(max_results=1)
    except MlflowException as err:
        status = err.get_http_status_code()
        if status not in (401, 403):
            return  # not a login problem: the call that needs the server reports it
        user = os.environ.get(USERNAME_VAR, "").strip()
        where = f"MLflow tracking server {redact_uri(uri)} (MLFLOW_TRACKING_URI)"
        if status == 403:
            problem = f"denies {USERNAME_VAR}={user!r} access (HTTP 403)"
            fix = "grant this user permission on the server, or use another account"
        elif not user:
            problem = f"requires a login (HTTP 401) and {USERNAME_VAR} is not set"
            fix = f"set {USERNAME_VAR} and {PASSWORD_VAR} (the platform Secret holds them)"
        else:
            problem = f"rejected the login of {USERNAME_VAR}={user!r} (HTTP 401)"
            fix = f"check {USERNAME_VAR} and {PASSWORD_VAR}"
        raise TrackingError(f"{where} {problem}; {fix}") from err


def connect(uri: str | None = None) -> MlflowClient:
    """Point MLflow at ``uri`` (default: :func:`tracking_uri`) after checking it answers.

    Args:
        uri: tracking URI; ``None`` resolves it from the environment.

    Returns:
        A client bound to that URI (the registry URI follows the tracking URI).

    Raises:
        TrackingError: when the server is unreachable or refuses the login.
    """
    uri = uri or tracking_uri()
    check_reachable(uri)
    mlflow.set_tracking_uri(uri)
    client = _open_sqlite(uri) if _is_local_sqlite(uri) else MlflowClient(tracking_uri=uri)
    check_login(client)
    return client


def _open_sqlite(uri: str) -> MlflowClient:
    """A client of a local SQLite store, whose tables are created once whoever opens it.

    MLflow creates (or migrates) the tables when a process first opens the store; two
    processes doing that at once on a new file (the ranks of a ``torchrun`` training,
    parallel pipeline tasks) fail with SQLAlchemy errors. The opener holds a lock on the file.
    """
    db = Path(uri.removeprefix("sqlite:///"))
    # SQLite creates the file but not its folder; a missing folder would be a cryptic error.
    db.parent.mkdir(parents=True, exist_ok=True)
    with exclusive_file(db):
        client = MlflowClient(tracking_uri=uri)
        client.search_experiments(max_results=1)
    return client


def _local_artifact_location(uri: str, name: str) -> str | None:
    """Artifact folder for a new experiment in a local SQLite store, beside the DB file."""
    if not _is_local_sqlite(uri):
        return None  # A server decides where artifacts go (proxied or S3).
    slug = re.sub(r"[^A-Za-z0-9._-]+", "_", name).strip("_") or "experiment"
    root = Path(uri.removeprefix("sqlite:///")).parent / LOCAL_ARTIFACTS / slug
    return root.resolve().as_uri()


def ensure_experiment(client: MlflowClient, name: str) -> str:
    """Return the id of experiment ``name``, creating it when missing.

    Args:
        client: a connected client.
        name: experiment name.

    Returns:
        The experiment id.

    Raises:
        TrackingError: when the experiment cannot be read or created.
    """
    uri = client.tracking_uri
    try:
        found = client.get_experiment_by_name(name)
        if found is not None:
            return str(found.experiment_id)
        location = _local_artifact_location(uri, name)
        try:
            return str(client.create_experiment(name, artifact_location=location))
        except MlflowException as err:
            # Another step may have created it between our lookup and create.
            if err.error_code != "RESOURCE_ALREADY_EXISTS":
                raise
            again = client.get_experiment_by_name(name)
            if again is None:
                raise
            return str(again.experiment_id)
    except MlflowException as err:
        raise TrackingError(
            f"cannot open experiment {name!r} at {redact_uri(uri)}: {err.message}"
        ) from err
