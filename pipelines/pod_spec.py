"""Kubernetes settings of the tasks: platform env, Istio, resources, GPUs, the HF cache.

Everything here but the container resources lives in the platform (Kubernetes) spec, which
``kfp.local`` ignores, so a local run keeps its own environment.
"""

from kfp import kubernetes
from kfp.dsl import PipelineTask
from kfp.dsl.pipeline_channel import PipelineChannel

from videollm.cluster import (
    CONFIG_KEYS,
    GPU_RESOURCE,
    GPU_TOLERATION,
    HF_HOME,
    HF_HOME_ANNOTATION,
    HF_TOKEN_KEY,
    ISTIO_INJECT,
    SECRET_KEYS,
)


def with_platform(task: PipelineTask, secret: str, config: str, cache: bool) -> PipelineTask:
    """Give ``task`` the S3/MLflow endpoints and credentials, keep Istio out, set caching.

    Both objects are optional in the pod (a missing required one would leave it waiting for
    ever); the task itself fails fast when they are missing (``init_task``). The Istio
    label and annotation keep the sidecar out: it would outlive the task's container and
    hold the pod open. ``videollm pipeline submit`` drops them for ``istio_sidecar=true``
    (KFP takes only literals in pod metadata).

    Caching is only for steps whose output is a pure function of their inputs (extract,
    convert): training, selection and packaging read or change shared state.
    """
    kubernetes.use_secret_as_env(task, secret, {k: k for k in SECRET_KEYS}, optional=True)
    kubernetes.use_config_map_as_env(task, config, {k: k for k in CONFIG_KEYS}, optional=True)
    kubernetes.add_pod_label(task, ISTIO_INJECT, "false")
    kubernetes.add_pod_annotation(task, ISTIO_INJECT, "false")
    return task.set_caching_options(enable_caching=cache)


def with_resources(task: PipelineTask, cpu: str, memory: str) -> PipelineTask:
    """Request and limit ``cpu`` and ``memory`` (pipeline parameters) for ``task``."""
    task.set_cpu_request(cpu).set_cpu_limit(cpu)
    task.set_memory_request(memory).set_memory_limit(memory)
    # kfp 2.17 hands a ParallelFor body only the parameters its tasks take as inputs, not
    # those used in resources alone ("Parent pipeline input argument ... not found").
    task.register_pipeline_channels([v for v in (cpu, memory) if isinstance(v, PipelineChannel)])
    return task


def with_gpus(task: PipelineTask, count: int | str) -> PipelineTask:
    """``count`` GPUs, tolerating the GPU nodes' taint.

    ``count`` is a literal or a string pipeline parameter: KFP's driver reads a parameter in
    pod resources as a string, so a number would give no GPU at all.
    """
    task.set_accelerator_type(GPU_RESOURCE).set_accelerator_limit(count)
    if isinstance(count, PipelineChannel):
        task.register_pipeline_channels([count])
    return kubernetes.add_toleration(task, **GPU_TOLERATION)


def with_hf_cache(task: PipelineTask, pvc: str, token_secret: str) -> PipelineTask:
    """Mount the Hugging Face cache PVC at ``HF_HOME`` and pass the optional Hub token.

    ``HF_HOME`` reaches the container through the downward API from a pod annotation, not as
    a container variable: ``kfp.local`` would set a container variable on this machine too,
    pointing local downloads at a cluster path. ``videollm pipeline submit`` drops all of it
    when ``hf_cache_pvc`` or ``hf_token_secret`` is empty (KFP cannot mount a PVC whose name
    is empty).
    """
    kubernetes.mount_pvc(task, pvc_name=pvc, mount_path=HF_HOME)
    kubernetes.add_pod_annotation(task, HF_HOME_ANNOTATION, HF_HOME)
    kubernetes.use_field_path_as_env(
        task, "HF_HOME", f"metadata.annotations['{HF_HOME_ANNOTATION}']"
    )
    kubernetes.use_secret_as_env(task, token_secret, {HF_TOKEN_KEY: "HF_TOKEN"}, optional=True)
    return task
