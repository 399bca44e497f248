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
    timeout_s: int,
    delete_on_success: bool,
    experiment: str,
    checkpoint: Output[Model],
    metrics: Output[Metrics],
    job: Output[Artifact],
) -> str:
    """Train on ``num_workers`` nodes × ``gpus_per_worker`` GPUs and wait for the job.

    Args:
        features_uris: The extract shards' feature prefixes (collected; all the same).
        records_uri: Records prefix (from ``convert``).
        work_uri: Folder or prefix for all runs' data.
        run_id: The pipeline run's id; this run's data goes under ``<work_uri>/<run_id>``.
        llm: Base LLM (HF id or path).
        recipe: Training preset (``demo``, ``videochatgpt_7b``, ``breakfast``) or YAML path.
        train_overrides: Extra ``key=value`` training overrides.
        num_workers: Nodes of the PyTorchJob (master + workers).
        gpus_per_worker: GPUs per node; 0 trains on CPU.
        deepspeed: ``""``, ``zero2`` or ``zero3``.
        launcher: ``auto`` (PyTorchJob in a cluster, else torchrun), ``local`` or ``pytorchjob``.
        image: Image of the training pods.
        service_account: Service account of the training pods.
        platform_secret: Secret with S3/MLflow credentials, as env in the pods.
        platform_config: ConfigMap with S3/MLflow endpoints, as env in the pods.
        node_selector: Node labels for the training pods.
        tolerations: Tolerations for the training pods.
        image_pull_secrets: Registry secrets for the training pods.
        timeout_s: How long to wait for the job.
        delete_on_success: Delete the PyTorchJob once it succeeds.
        experiment: MLflow experiment.
        checkpoint: Manifest of the checkpoint (its URI, base LLM, recipe).
        metrics: The training run's final metrics.
        job: The submitted PyTorchJob as YAML (a comment for a local run).

    Returns:
        The checkpoint URI.
    """
    from videollm.pipeline.tasks import init_task, log_metrics, single_uri, work_dir, write_outputs
    from videollm.pipeline.train_task import TrainTaskArgs, run_train_task
    from videollm.storage import join

    init_task(experiment)
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
        timeout_s=timeout_s,
        delete_on_success=delete_on_success,
    )
    result, job_yaml = run_train_task(args)
    write_outputs(result, checkpoint.path)
    with open(job.path, "w") as f:
        f.write(job_yaml)
    log_metrics(metrics, result)
    return result.uri
