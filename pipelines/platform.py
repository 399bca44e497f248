"""Kubernetes settings every task gets: the platform Secret and ConfigMap as environment."""

from kfp import kubernetes
from kfp.dsl import PipelineTask

from videollm.pipeline.platform import CONFIG_KEYS, SECRET_KEYS


def with_platform(task: PipelineTask, secret: str, config: str, cache: bool) -> PipelineTask:
    """Give ``task`` the S3/MLflow endpoints and credentials, and set its caching.

    Caching is only for steps whose output is a pure function of their inputs (extract,
    convert): training, selection and packaging read or change shared state.
    """
    kubernetes.use_secret_as_env(task, secret, {k: k for k in SECRET_KEYS}, optional=True)
    kubernetes.use_config_map_as_env(task, config, {k: k for k in CONFIG_KEYS}, optional=True)
    return task.set_caching_options(enable_caching=cache)
