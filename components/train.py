"""``train``: a PyTorchJob on the cluster, ``torchrun`` without one."""

from kfp import dsl
from kfp.dsl import Artifact, Metrics, Model, Output

from videollm.images import PIPELINE_IMAGE


@dsl.component(base_image=PIPELINE_IMAGE, install_kfp_package=False)
def train(
    features_uris: list,
    records_uri: str,
    work_uri: str,
    run_id: str,
    llm: str,
    recipe: str,
    train_overrides: list,
    num_workers: int,
    gpus_per_worker: int,
    deepspeed: str,
    launcher: str,
    image: str,
    service_account: str,
    platform_secret: str,
    platform_config: str,
    node_selector: dict,
    tolerations: list,
    image_pull_secrets: list,
    cpu: str,
    memory: str,
    timeout_hours: float,
    ttl_hours: float,
    delete_on_success: bool,
    istio_sidecar: bool,
    kueue_queue: str,
    hf_cache_pvc: str,
    hf_token_secret: str,
    experiment: str,
    checkpoint: Output[Model],
    metrics: Output[Metrics],
    job: Output[Artifact],
    train_log: Output[Artifact],
) -> str:
    """Train on ``num_workers`` nodes × ``gpus_per_worker`` GPUs and wait for the job.

    Args:
        features_uris: The extract shards' feature prefixes (collected; all the same).
        records_uri: Records prefix (from ``convert``).
        work_uri: Folder or prefix for all runs' data.
        run_id: The pipeline run's id; this run's data goes under ``<work_uri>/<run_id>``,
            and the job is labelled with it, so a retried task finds the run's job.
        llm: Base LLM (HF id, path or s3:// mirror).
        recipe: Training preset (``demo``, ``videochatgpt_7b``, ``breakfast``) or YAML path.
        train_overrides: Extra ``key=value`` training overrides.
        num_workers: Nodes of the PyTorchJob (master + workers).
        gpus_per_worker: GPUs per node; 0 trains on CPU.
        deepspeed: ``""``, ``zero2`` or ``zero3``.
        launcher: ``auto`` (PyTorchJob in a cluster, else torchrun), ``local`` or ``pytorchjob``.
        image: Image of the training pods.
        service_account: Service account of the training pods (not this task's).
        platform_secret: Secret with S3/MLflow credentials, as env in the pods.
        platform_config: ConfigMap with S3/MLflow endpoints, as env in the pods.
        node_selector: Node labels for the training pods.
        tolerations: Tolerations for the training pods.
        image_pull_secrets: Registry secrets for the training pods.
        cpu: CPU request and limit of each training pod.
        memory: Memory request and limit of each training pod.
        timeout_hours: The job's deadline; this task waits 10 minutes more.
        ttl_hours: How long a finished job is kept before the operator deletes it.
        delete_on_success: Delete the PyTorchJob once it succeeds.
        istio_sidecar: Let Istio inject its sidecar into the training pods.
        kueue_queue: Kueue LocalQueue of the job (empty: none).
        hf_cache_pvc: Hugging Face cache PVC of the training pods (empty: none).
        hf_token_secret: Secret holding ``HF_TOKEN`` for the training pods (empty: none).
        experiment: MLflow experiment.
        checkpoint: Manifest of the checkpoint (its URI, base LLM, recipe, log URI).
        metrics: The training run's final metrics.
        job: The submitted PyTorchJob as YAML (a comment for a local run).
        train_log: The tail of the master's log (also kept, failed or not, under
            ``<work_uri>/<run_id>/train-logs``).

    Returns:
        The checkpoint URI.
    """
    from videollm.kfp.tasks import init_task, log_metrics, single_uri, work_dir, write_outputs
    from videollm.kfp.train_task import TrainTaskArgs, run_train_task
    from videollm.storage import join

    init_task(experiment, platform_config, platform_secret)
    work = work_dir(work_uri, run_id)
    args = TrainTaskArgs(
        records_uri=records_uri,
        features_uri=single_uri(features_uris),
        checkpoint_uri=join(work, "checkpoint"),
        llm=llm,
        recipe=recipe,
        overrides=list(train_overrides),
        num_workers=num_workers,
        gpus_per_worker=gpus_per_worker,
        deepspeed=deepspeed,
        launcher=launcher,
        image=image,
        service_account=service_account,
        platform_secret=platform_secret,
        platform_config=platform_config,
        node_selector=node_selector,
        tolerations=tolerations,
        image_pull_secrets=image_pull_secrets,
        cpu=cpu,
        memory=memory,
        timeout_hours=timeout_hours,
        ttl_hours=ttl_hours,
        delete_on_success=delete_on_success,
        istio_sidecar=istio_sidecar,
        kueue_queue=kueue_queue,
        hf_cache_pvc=hf_cache_pvc,
        hf_token_secret=hf_token_secret,
    )
    done = run_train_task(args)
    write_outputs(done.result, checkpoint.path)
    with open(job.path, "w") as f:
        f.write(done.job_yaml)
    with open(train_log.path, "w") as f:
        f.write(done.log)
    log_metrics(metrics, done.result)
    return done.result.uri
