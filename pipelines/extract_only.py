"""``extract_only``: preprocess a big corpus once, on many GPUs in parallel.

videollm pipeline run --local --pipeline extract_only --param videos_uri=... --param ...
"""

from kfp import dsl, kubernetes

from components import extract, plan_shards
from pipelines.platform import with_platform
from videollm.pipeline.platform import (
    EXTRACT_GPUS,
    GPU_RESOURCE,
    GPU_TOLERATION,
    PLATFORM_CONFIG,
    PLATFORM_SECRET,
)


def extract_shards(
    plan: dsl.PipelineTask,
    videos_uri: str,
    work_uri: str,
    encoder: str,
    num_frames: int,
    num_shards: int,
    node_selector: dict,
    experiment: str,
    platform_secret: str,
    platform_config: str,
) -> dsl.PipelineTask:
    """The ParallelFor of extract tasks, one per shard, each on a GPU."""
    with dsl.ParallelFor(plan.output) as shard:
        task = extract(
            videos_uri=videos_uri,
            work_uri=work_uri,
            encoder=encoder,
            num_frames=num_frames,
            shard=shard,
            num_shards=num_shards,
            experiment=experiment,
        )
        task.set_display_name("extract shard")
        task.set_accelerator_type(GPU_RESOURCE).set_accelerator_limit(EXTRACT_GPUS)
        kubernetes.add_toleration(task, **GPU_TOLERATION)
        kubernetes.add_node_selector_json(task, node_selector)
        with_platform(task, platform_secret, platform_config, cache=True)
    return task


@dsl.pipeline(
    name="videollm-extract-only",
    description="Extract video features in parallel shards into <work_uri>/features/<key>.",
)
def extract_only(
    videos_uri: str,
    work_uri: str = "",
    encoder: str = "openai/clip-vit-large-patch14",
    num_frames: int = 100,
    num_shards: int = 4,
    extract_node_selector: dict = {},  # noqa: B006 (KFP reads the default; never mutated)
    experiment: str = "videollm",
    platform_secret: str = PLATFORM_SECRET,
    platform_config: str = PLATFORM_CONFIG,
) -> None:
    """Extract features only.

    Args:
        videos_uri: Folder or ``s3://`` prefix of the videos.
        work_uri: Where the features go (``<work_uri>/features/<key>``; ``finetune`` with the
            same videos, encoder and frames reuses them). Empty: ``s3://<the platform's
            bucket>/runs``.
        encoder: Vision encoder (HF id or path).
        num_frames: Frames sampled per video.
        num_shards: Parallel extract tasks.
        extract_node_selector: Node labels for the extract tasks, e.g. a GPU type.
        experiment: MLflow experiment.
        platform_secret: Secret with S3/MLflow credentials.
        platform_config: ConfigMap with S3/MLflow endpoints.
    """
    plan = plan_shards(
        videos_uri=videos_uri,
        annotations_uri="",
        annotation_format="jsonl",
        num_shards=num_shards,
        require_annotations=False,
        work_uri=work_uri,
        run_id=dsl.PIPELINE_JOB_ID_PLACEHOLDER,
        experiment=experiment,
    )
    with_platform(plan, platform_secret, platform_config, cache=False)
    extract_shards(
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
