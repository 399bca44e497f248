"""``finetune``: videos + annotations → features → records → checkpoint → eval → champion → Bento.

    videollm pipeline compile                                   # pipelines/finetune.yaml
    videollm pipeline run --local --param videos_uri=... --param annotations_uri=...
    videollm pipeline submit --host https://kfp.example.com --param ...

The parameter names are the interface; the CLI sets them with ``--param name=value``. The
resource defaults fit the ``videochatgpt_7b`` recipe (see :mod:`videollm.kfp.sizing`).
"""

from kfp import dsl

from components import convert, evaluate, package, plan_shards, select, train
from pipelines.extract_only import extract_shards
from pipelines.pod_spec import with_gpus, with_hf_cache, with_platform, with_resources
from videollm.cluster import (
    HF_CACHE_PVC,
    HF_TOKEN_SECRET,
    PIPELINE_IMAGE,
    PLATFORM_CONFIG,
    PLATFORM_SECRET,
    TRAIN_RETRIES,
    TRAIN_RETRY_BACKOFF,
    TRAIN_RETRY_FACTOR,
    TRAIN_RETRY_WINDOW,
    TRAIN_SERVICE_ACCOUNT,
)
from videollm.kfp.sizing import (
    EVAL_CPU,
    EVAL_GPUS,
    EVAL_MEMORY,
    EXTRACT_CPU,
    EXTRACT_MEMORY,
    TASK_CPU,
    TASK_MEMORY,
    TRAIN_CPU,
    TRAIN_MEMORY,
    TRAIN_TIMEOUT_HOURS,
    TRAIN_TTL_HOURS,
)


@dsl.pipeline(
    name="videollm-finetune",
    description="Fine-tune, evaluate, register and package a video LLM.",
)
def finetune(
    videos_uri: str,
    annotations_uri: str,
    annotation_format: str = "videochatgpt",
    encoder: str = "openai/clip-vit-large-patch14",
    llm: str = "lmsys/vicuna-7b-v1.5",
    recipe: str = "videochatgpt_7b",
    num_frames: int = 100,
    pooling: str = "spatiotemporal",
    pooling_options: dict = {},  # noqa: B006 (KFP reads the default; never mutated)
    num_shards: int = 4,
    extract_node_selector: dict = {},  # noqa: B006 (KFP reads the default; never mutated)
    val_fraction: float = 0.1,
    num_workers: int = 1,
    gpus_per_worker: int = 8,
    select_metric: str = "val/exact_match",
    registered_model_name: str = "videollm",
    work_uri: str = "",
    experiment: str = "videollm",
    train_overrides: list = [],  # noqa: B006 (KFP reads the default; never mutated)
    deepspeed: str = "",
    launcher: str = "auto",
    image: str = PIPELINE_IMAGE,
    train_service_account: str = TRAIN_SERVICE_ACCOUNT,
    platform_secret: str = PLATFORM_SECRET,
    platform_config: str = PLATFORM_CONFIG,
    train_node_selector: dict = {},  # noqa: B006
    train_tolerations: list = [],  # noqa: B006
    image_pull_secrets: list = [],  # noqa: B006
    train_timeout_hours: float = TRAIN_TIMEOUT_HOURS,
    train_ttl_hours: float = TRAIN_TTL_HOURS,
    delete_job_on_success: bool = True,
    package_bento: bool = True,
    train_cpu: str = TRAIN_CPU,
    train_memory: str = TRAIN_MEMORY,
    extract_cpu: str = EXTRACT_CPU,
    extract_memory: str = EXTRACT_MEMORY,
    eval_gpus: str = EVAL_GPUS,
    eval_cpu: str = EVAL_CPU,
    eval_memory: str = EVAL_MEMORY,
    task_cpu: str = TASK_CPU,
    task_memory: str = TASK_MEMORY,
    hf_cache_pvc: str = HF_CACHE_PVC,
    hf_token_secret: str = HF_TOKEN_SECRET,
    istio_sidecar: bool = False,
    kueue_queue: str = "",
    trainjob_runtime: str = "videollm-torch",
) -> None:
    """The whole fine-tuning flow.

    KFP takes only literals in pod labels and annotations, and cannot mount a PVC with an
    empty name: for the task pods, ``istio_sidecar``, ``kueue_queue`` and an empty
    ``hf_cache_pvc`` or ``hf_token_secret`` take effect through ``videollm pipeline
    submit``, which writes them into the package it uploads (the training pods get them in
    every case).

    Args:
        videos_uri: Folder or ``s3://`` prefix of the videos.
        annotations_uri: Annotation file or folder.
        annotation_format: ``videochatgpt``, ``videoinstruct``, ``breakfast`` or ``jsonl``.
        encoder: Vision encoder (HF id, path or s3:// mirror).
        llm: Base LLM (HF id, path or s3:// mirror).
        recipe: Training preset (``demo``, ``videochatgpt_7b``, ``breakfast``) or YAML path.
        num_frames: Frames sampled per video.
        pooling: How patch tokens become video tokens: a registered pooling
            (``spatiotemporal``, ``adaptive3d``, ``per_frame`` or a plugin's; ``videollm
            extract --help`` lists them).
        pooling_options: The pooling's options, e.g. ``{"tokens_per_frame": 4}`` for
            ``per_frame`` or ``{"pool_size": [8, 12, 12]}`` for ``adaptive3d``.
        num_shards: Parallel extract tasks.
        extract_node_selector: Node labels for the extract tasks, e.g. a GPU type.
        val_fraction: Fraction of videos held out for validation.
        num_workers: Training nodes (PyTorchJob master + workers).
        gpus_per_worker: GPUs per training node (0: CPU).
        select_metric: Metric the champion is chosen on (higher is better).
        registered_model_name: Registered model in MLflow.
        work_uri: Where the data goes: ``<work_uri>/features|records/<key>`` (shared by runs
            with the same inputs) and ``<work_uri>/<run id>/checkpoint|eval|bento|train-logs``.
            Empty: ``s3://<the platform's bucket>/runs``.
        experiment: MLflow experiment.
        train_overrides: Extra ``key=value`` training overrides.
        deepspeed: ``""``, ``zero2`` or ``zero3``.
        launcher: Where training runs: ``auto`` (``pytorchjob`` inside a cluster, else
            ``local``), ``local`` (torchrun on this machine), ``pytorchjob`` (a Kubeflow
            PyTorchJob, training operator v1) or ``trainjob`` (a Kubeflow Trainer v2 TrainJob).
        image: Image of the training pods.
        train_service_account: Service account of the training pods (not the one of the
            train task, which creates the job and runs as KFP's own account).
        platform_secret: Secret with S3/MLflow credentials.
        platform_config: ConfigMap with S3/MLflow endpoints.
        train_node_selector: Node labels for the training pods.
        train_tolerations: Tolerations for the training pods.
        image_pull_secrets: Registry secrets for the training pods.
        train_timeout_hours: The job's deadline (``runPolicy.activeDeadlineSeconds``); the
            train task waits 10 minutes longer before it deletes the job itself.
        train_ttl_hours: How long the operator keeps a finished job (``ttlSecondsAfterFinished``).
        delete_job_on_success: Delete the PyTorchJob when it succeeds.
        package_bento: Build the champion's Bento at the end.
        train_cpu: CPU request and limit of each training pod (``""``: unset).
        train_memory: Memory request and limit of each training pod (``""``: unset).
        extract_cpu: CPU request and limit of each extract task (1 GPU each); default 8.
        extract_memory: Memory request and limit of each extract task; default 32Gi.
        eval_gpus: GPUs of the evaluate task: ``"1"`` (bf16) or ``"0"`` (CPU, fp32); a
            string, as KFP reads a GPU count from a parameter only then; default 1.
        eval_cpu: CPU request and limit of the evaluate task; default 8.
        eval_memory: Memory request and limit of the evaluate task; default 48Gi.
        task_cpu: CPU request and limit of the other tasks; default 1.
        task_memory: Memory request and limit of the other tasks; default 4Gi.
        hf_cache_pvc: Hugging Face cache PVC of the extract, train and evaluate pods.
        hf_token_secret: Optional Secret with the Hub token (key ``HF_TOKEN``).
        istio_sidecar: Let Istio inject its sidecar into the task and training pods.
        kueue_queue: Kueue LocalQueue of the PyTorchJob and the extract pods (empty: none).
        trainjob_runtime: The ``TrainingRuntime`` (looked up first, in the job's namespace) or
            ``ClusterTrainingRuntime`` a TrainJob runs on (``launcher=trainjob`` only).
    """
    platform = {"platform_config": platform_config, "platform_secret": platform_secret}
    plan = plan_shards(
        videos_uri=videos_uri,
        annotations_uri=annotations_uri,
        annotation_format=annotation_format,
        num_shards=num_shards,
        require_annotations=True,
        pooling=pooling,
        pooling_options=pooling_options,
        work_uri=work_uri,
        run_id=dsl.PIPELINE_JOB_ID_PLACEHOLDER,
        experiment=experiment,
        **platform,
    )
    with_resources(plan, task_cpu, task_memory)
    with_platform(plan, platform_secret, platform_config, cache=False)
    run_id = dsl.PIPELINE_JOB_ID_PLACEHOLDER
    shards = extract_shards(
        plan,
        videos_uri=videos_uri,
        work_uri=work_uri,
        encoder=encoder,
        num_frames=num_frames,
        pooling=pooling,
        pooling_options=pooling_options,
        num_shards=num_shards,
        node_selector=extract_node_selector,
        experiment=experiment,
        platform_secret=platform_secret,
        platform_config=platform_config,
        cpu=extract_cpu,
        memory=extract_memory,
        hf_cache_pvc=hf_cache_pvc,
        hf_token_secret=hf_token_secret,
    )

    records = convert(
        annotations_uri=annotations_uri,
        annotation_format=annotation_format,
        work_uri=work_uri,
        num_frames=num_frames,
        val_fraction=val_fraction,
        experiment=experiment,
        **platform,
    ).after(plan)
    with_resources(records, task_cpu, task_memory)
    with_platform(records, platform_secret, platform_config, cache=True)

    trained = train(
        features_uris=dsl.Collected(shards.outputs["Output"]),
        records_uri=records.outputs["Output"],
        work_uri=work_uri,
        run_id=run_id,
        llm=llm,
        recipe=recipe,
        train_overrides=train_overrides,
        num_workers=num_workers,
        gpus_per_worker=gpus_per_worker,
        deepspeed=deepspeed,
        launcher=launcher,
        image=image,
        service_account=train_service_account,
        node_selector=train_node_selector,
        tolerations=train_tolerations,
        image_pull_secrets=image_pull_secrets,
        cpu=train_cpu,
        memory=train_memory,
        timeout_hours=train_timeout_hours,
        ttl_hours=train_ttl_hours,
        delete_on_success=delete_job_on_success,
        istio_sidecar=istio_sidecar,
        kueue_queue=kueue_queue,
        hf_cache_pvc=hf_cache_pvc,
        hf_token_secret=hf_token_secret,
        trainjob_runtime=trainjob_runtime,
        experiment=experiment,
        **platform,
    )
    # A retry re-attaches to the run's job if it still runs (the job is named and labelled
    # after the run) and replaces it if it failed; see videollm.cluster for why the
    # retry window is this long.
    trained.set_retry(
        num_retries=TRAIN_RETRIES,
        backoff_duration=TRAIN_RETRY_BACKOFF,
        backoff_factor=TRAIN_RETRY_FACTOR,
        backoff_max_duration=TRAIN_RETRY_WINDOW,
    )
    with_resources(trained, task_cpu, task_memory)
    with_platform(trained, platform_secret, platform_config, cache=False)

    evaluated = evaluate(
        checkpoint_uri=trained.outputs["Output"],
        records_uri=records.outputs["Output"],
        features_uris=dsl.Collected(shards.outputs["Output"]),
        work_uri=work_uri,
        run_id=run_id,
        gpus=eval_gpus,
        experiment=experiment,
        **platform,
    )
    with_gpus(evaluated, eval_gpus)
    with_resources(evaluated, eval_cpu, eval_memory)
    with_hf_cache(evaluated, hf_cache_pvc, hf_token_secret)
    with_platform(evaluated, platform_secret, platform_config, cache=False)

    champion = select(
        experiment=experiment,
        select_metric=select_metric,
        registered_model_name=registered_model_name,
        evaluated=evaluated.outputs["Output"],
        **platform,
    )
    with_resources(champion, task_cpu, task_memory)
    with_platform(champion, platform_secret, platform_config, cache=False)

    with dsl.If(package_bento == True):  # noqa: E712 (a KFP condition, not a Python bool)
        bento = package(
            model_uri=champion.outputs["Output"],
            work_uri=work_uri,
            run_id=run_id,
            experiment=experiment,
            **platform,
        )
        with_resources(bento, task_cpu, task_memory)
        with_platform(bento, platform_secret, platform_config, cache=False)
