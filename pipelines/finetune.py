"""``finetune``: videos + annotations → features → records → checkpoint → eval → champion → Bento.

    videollm pipeline compile                                   # pipelines/finetune.yaml
    videollm pipeline run --local --param videos_uri=... --param annotations_uri=...
    videollm pipeline submit --host https://kfp.example.com --param ...

The parameter names are the interface; the CLI sets them with ``--param name=value``.
"""

from kfp import dsl

from components import convert, evaluate, package, plan_shards, select, train
from pipelines.extract_only import extract_shards
from pipelines.platform import with_platform
from videollm.pipeline.platform import (
    PIPELINE_IMAGE,
    PLATFORM_CONFIG,
    PLATFORM_SECRET,
    SERVICE_ACCOUNT,
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
    service_account: str = SERVICE_ACCOUNT,
    platform_secret: str = PLATFORM_SECRET,
    platform_config: str = PLATFORM_CONFIG,
    train_node_selector: dict = {},  # noqa: B006
    train_tolerations: list = [],  # noqa: B006
    image_pull_secrets: list = [],  # noqa: B006
    train_timeout_s: int = 86400,
    delete_job_on_success: bool = True,
    package_bento: bool = True,
) -> None:
    """The whole fine-tuning flow.

    Args:
        videos_uri: Folder or ``s3://`` prefix of the videos.
        annotations_uri: Annotation file or folder.
        annotation_format: ``videochatgpt``, ``videoinstruct``, ``breakfast`` or ``jsonl``.
        encoder: Vision encoder (HF id or path).
        llm: Base LLM (HF id or path).
        recipe: Training preset or YAML path.
        num_frames: Frames sampled per video.
        num_shards: Parallel extract tasks.
        extract_node_selector: Node labels for the extract tasks, e.g. a GPU type.
        val_fraction: Fraction of videos held out for validation.
        num_workers: Training nodes (PyTorchJob master + workers).
        gpus_per_worker: GPUs per training node (0: CPU).
        select_metric: Metric the champion is chosen on (higher is better).
        registered_model_name: Registered model in MLflow.
        work_uri: Where the data goes: ``<work_uri>/features|records/<key>`` (shared by runs
            with the same inputs) and ``<work_uri>/<run id>/checkpoint|eval|bento``. Empty:
            ``s3://<the platform's bucket>/runs``.
        experiment: MLflow experiment.
        train_overrides: Extra ``key=value`` training overrides.
        deepspeed: ``""``, ``zero2`` or ``zero3``.
        launcher: ``auto``, ``local`` (torchrun) or ``pytorchjob``.
        image: Image of the PyTorchJob pods.
        service_account: Service account of the PyTorchJob pods.
        platform_secret: Secret with S3/MLflow credentials.
        platform_config: ConfigMap with S3/MLflow endpoints.
        train_node_selector: Node labels for the training pods.
        train_tolerations: Tolerations for the training pods.
        image_pull_secrets: Registry secrets for the training pods.
        train_timeout_s: How long to wait for training.
        delete_job_on_success: Delete the PyTorchJob when it succeeds.
        package_bento: Build the champion's Bento at the end.
    """
    plan = plan_shards(
        videos_uri=videos_uri,
        annotations_uri=annotations_uri,
        annotation_format=annotation_format,
        num_shards=num_shards,
        require_annotations=True,
        work_uri=work_uri,
        run_id=dsl.PIPELINE_JOB_ID_PLACEHOLDER,
        experiment=experiment,
    )
    with_platform(plan, platform_secret, platform_config, cache=False)
    run_id = dsl.PIPELINE_JOB_ID_PLACEHOLDER
    shards = extract_shards(
        plan,
        videos_uri,
        work_uri,
        encoder,
        num_frames,
        num_shards,
        extract_node_selector,
        experiment,
        platform_secret,
        platform_config,
    )

    records = convert(
        annotations_uri=annotations_uri,
        annotation_format=annotation_format,
        work_uri=work_uri,
        num_frames=num_frames,
        val_fraction=val_fraction,
        experiment=experiment,
    ).after(plan)
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
        service_account=service_account,
        platform_secret=platform_secret,
        platform_config=platform_config,
        node_selector=train_node_selector,
        tolerations=train_tolerations,
        image_pull_secrets=image_pull_secrets,
        timeout_s=train_timeout_s,
        delete_on_success=delete_job_on_success,
        experiment=experiment,
    )
    with_platform(trained, platform_secret, platform_config, cache=False)

    evaluated = evaluate(
        checkpoint_uri=trained.outputs["Output"],
        records_uri=records.outputs["Output"],
        features_uris=dsl.Collected(shards.outputs["Output"]),
        work_uri=work_uri,
        run_id=run_id,
        experiment=experiment,
    )
    with_platform(evaluated, platform_secret, platform_config, cache=False)

    champion = select(
        experiment=experiment,
        select_metric=select_metric,
        registered_model_name=registered_model_name,
        evaluated=evaluated.outputs["Output"],
    )
    with_platform(champion, platform_secret, platform_config, cache=False)

    with dsl.If(package_bento == True):  # noqa: E712 (a KFP condition, not a Python bool)
        bento = package(
            model_uri=champion.outputs["Output"],
            work_uri=work_uri,
            run_id=run_id,
            experiment=experiment,
        )
        with_platform(bento, platform_secret, platform_config, cache=False)
