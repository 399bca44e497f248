"""``train``: a PyTorchJob on the cluster, ``torchrun`` without one.

The parameters that set :class:`~videollm.kfp.train_task.TrainTaskArgs` fields, and their
``Args:`` lines, are what ``python -m videollm.kfp.train_params`` prints: KFP runs this
function's source, so they are spelled out here, and ``tests/pipelines/test_train_params.py``
fails when they drift from the dataclass.
"""

from kfp import dsl
from kfp.dsl import Artifact, Metrics, Model, Output

from videollm.images import PIPELINE_IMAGE


@dsl.component(base_image=PIPELINE_IMAGE, install_kfp_package=False)
def train(
    features_uris: list,
    work_uri: str,
    run_id: str,
    experiment: str,
    records_uri: str,
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
    trainjob_runtime: str,
    checkpoint: Output[Model],
    metrics: Output[Metrics],
    job: Output[Artifact],
    train_log: Output[Artifact],
) -> str:
    """Train on ``num_workers`` nodes × ``gpus_per_worker`` GPUs and wait for the job.

    Args:
        features_uris: The extract shards' feature prefixes (collected; all the same).
        work_uri: Folder or prefix for all runs' data.
        run_id: The pipeline run's id; this run's data goes under ``<work_uri>/<run_id>``,
            and the job is labelled with it, so a retried task finds the run's job.
        experiment: MLflow experiment.
        records_uri: Records folder or prefix (``train.jsonl``, ``val.jsonl``; from ``convert``).
        llm: Base LLM (HF id, path or s3:// mirror).
        recipe: Training preset (``demo``, ``videochatgpt_7b``, ``breakfast``) or YAML path.
        train_overrides: Extra ``key=value`` training overrides.
        num_workers: Training nodes (PyTorchJob master + workers).
        gpus_per_worker: GPUs per training node (0: CPU).
        deepspeed: ``""``, ``zero2`` or ``zero3``.
        launcher: Where training runs: ``auto`` (``pytorchjob`` inside a cluster, else ``local``),
            ``local`` (torchrun on this machine), ``pytorchjob`` (a Kubeflow PyTorchJob, training
            operator v1) or ``trainjob`` (a Kubeflow Trainer v2 TrainJob).
        image: Image of the training pods.
        service_account: Service account of the training pods (not the one of the train task, which
            creates the job and runs as KFP's own account).
        platform_secret: Secret with S3/MLflow credentials, as env in the training pods.
        platform_config: ConfigMap with S3/MLflow endpoints, as env in the training pods.
        node_selector: Node labels for the training pods.
        tolerations: Tolerations for the training pods.
        image_pull_secrets: Registry secrets for the training pods.
        cpu: CPU request and limit of each training pod (``""``: unset).
        memory: Memory request and limit of each training pod (``""``: unset).
        timeout_hours: The job's deadline (``runPolicy.activeDeadlineSeconds``); the train task
            waits 10 minutes longer before it deletes the job itself.
        ttl_hours: How long the operator keeps a finished job (``ttlSecondsAfterFinished``).
        delete_on_success: Delete the PyTorchJob when it succeeds.
        istio_sidecar: Let Istio inject its sidecar into the training pods (off by default: a
            sidecar keeps a finished pod running, so the job never ends).
        kueue_queue: Kueue ``LocalQueue`` of the job (``""``: none).
        hf_cache_pvc: PersistentVolumeClaim mounted as the Hugging Face cache of the training pods
            (``""``: none).
        hf_token_secret: Secret with the Hub token as ``HF_TOKEN`` for the training pods (``""``:
            none).
        trainjob_runtime: The ``TrainingRuntime`` (looked up first, in the job's namespace) or
            ``ClusterTrainingRuntime`` a TrainJob runs on (``launcher=trainjob`` only).
        checkpoint: Manifest of the checkpoint (its URI, base LLM, recipe, log URI).
        metrics: The training run's final metrics.
        job: The submitted PyTorchJob as YAML (a comment for a local run).
        train_log: The tail of the master's log (also kept, failed or not, under
            ``<work_uri>/<run_id>/train-logs``).

    Returns:
        The checkpoint URI.
    """
    params = dict(locals())  # first, so it holds the parameters only
    from videollm.kfp.task_io import init_task, log_metrics, single_uri, write_outputs
    from videollm.kfp.train_task import TrainTaskArgs, run_train_task
    from videollm.kfp.work_dirs import work_dir
    from videollm.storage import join

    init_task(experiment, platform_config, platform_secret)
    args = TrainTaskArgs.from_component(
        params,
        features_uri=single_uri(features_uris),
        checkpoint_uri=join(work_dir(work_uri, run_id), "checkpoint"),
    )
    done = run_train_task(args)
    write_outputs(done.result, checkpoint.path)
    with open(job.path, "w") as f:
        f.write(done.job_yaml)
    with open(train_log.path, "w") as f:
        f.write(done.log)
    log_metrics(metrics, done.result)
    return done.result.uri
