"""``extract_only``: preprocess a big corpus once, on many GPUs in parallel.

videollm pipeline run --local --pipeline extract_only --param videos_uri=... --param ...
"""

from kfp import dsl, kubernetes

from components import extract, plan_shards
from pipelines.pod_spec import with_gpus, with_hf_cache, with_platform, with_resources
from videollm.cluster import (
    EXTRACT_GPUS,
    HF_CACHE_PVC,
    HF_TOKEN_SECRET,
    PLATFORM_CONFIG,
    PLATFORM_SECRET,
)
from videollm.kfp.sizing import EXTRACT_CPU, EXTRACT_MEMORY, TASK_CPU, TASK_MEMORY


def extract_shards(
    plan: dsl.PipelineTask,
    *,
    videos_uri: str,
    work_uri: str,
    encoder: str,
    num_frames: int,
    pooling: str,
    pooling_options: dict,
    num_shards: int,
    node_selector: dict,
    experiment: str,
    platform_secret: str,
    platform_config: str,
    cpu: str,
    memory: str,
    hf_cache_pvc: str,
    hf_token_secret: str,
) -> dsl.PipelineTask:
    """The ParallelFor of extract tasks, one per shard, each on a GPU."""
    with dsl.ParallelFor(plan.output) as shard:
        task = extract(
            videos_uri=videos_uri,
            work_uri=work_uri,
            encoder=encoder,
            num_frames=num_frames,
            pooling=pooling,
            pooling_options=pooling_options,
            shard=shard,
            num_shards=num_shards,
            experiment=experiment,
            platform_config=platform_config,
            platform_secret=platform_secret,
        )
        task.set_display_name("extract shard")
        with_gpus(task, EXTRACT_GPUS)
        with_resources(task, cpu, memory)
        kubernetes.add_node_selector_json(task, node_selector)
        with_hf_cache(task, hf_cache_pvc, hf_token_secret)
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
    pooling: str = "spatiotemporal",
    pooling_options: dict = {},  # noqa: B006 (KFP reads the default; never mutated)
    num_shards: int = 4,
    extract_node_selector: dict = {},  # noqa: B006 (KFP reads the default; never mutated)
    experiment: str = "videollm",
    platform_secret: str = PLATFORM_SECRET,
    platform_config: str = PLATFORM_CONFIG,
    extract_cpu: str = EXTRACT_CPU,
    extract_memory: str = EXTRACT_MEMORY,
    task_cpu: str = TASK_CPU,
    task_memory: str = TASK_MEMORY,
    hf_cache_pvc: str = HF_CACHE_PVC,
    hf_token_secret: str = HF_TOKEN_SECRET,
    istio_sidecar: bool = False,
    kueue_queue: str = "",
) -> None:
    """Extract features only.

    KFP takes only literals in pod labels and annotations, and cannot mount a PVC with an
    empty name: ``istio_sidecar``, ``kueue_queue`` and an empty ``hf_cache_pvc`` or
    ``hf_token_secret`` reach the task pods through ``videollm pipeline submit``, which
    writes them into the package it uploads.

    Args:
        videos_uri: Folder or ``s3://`` prefix of the videos.
        work_uri: Where the features go (``<work_uri>/features/<key>``; ``finetune`` with the
            same videos, encoder and frames reuses them). Empty: ``s3://<the platform's
            bucket>/runs``.
        encoder: Vision encoder (HF id, path or s3:// mirror).
        num_frames: Frames sampled per video.
        pooling: How patch tokens become video tokens: a registered pooling
            (``spatiotemporal``, ``adaptive3d``, ``per_frame`` or a plugin's; ``videollm
            extract --help`` lists them).
        pooling_options: The pooling's options, e.g. ``{"tokens_per_frame": 4}`` for
            ``per_frame`` or ``{"pool_size": [8, 12, 12]}`` for ``adaptive3d``.
        num_shards: Parallel extract tasks.
        extract_node_selector: Node labels for the extract tasks, e.g. a GPU type.
        experiment: MLflow experiment.
        platform_secret: Secret with S3/MLflow credentials.
        platform_config: ConfigMap with S3/MLflow endpoints.
        extract_cpu: CPU request and limit of each extract task (1 GPU each).
        extract_memory: Memory request and limit of each extract task.
        task_cpu: CPU request and limit of ``plan_shards``.
        task_memory: Memory request and limit of ``plan_shards``.
        hf_cache_pvc: Hugging Face cache PVC of the extract tasks, at ``HF_HOME``.
        hf_token_secret: Optional Secret with the Hub token (key ``HF_TOKEN``).
        istio_sidecar: Let Istio inject its sidecar into the task pods.
        kueue_queue: Kueue LocalQueue label for the extract pods (empty: none).
    """
    plan = plan_shards(
        videos_uri=videos_uri,
        annotations_uri="",
        annotation_format="jsonl",
        num_shards=num_shards,
        require_annotations=False,
        pooling=pooling,
        pooling_options=pooling_options,
        work_uri=work_uri,
        run_id=dsl.PIPELINE_JOB_ID_PLACEHOLDER,
        experiment=experiment,
        platform_config=platform_config,
        platform_secret=platform_secret,
    )
    with_resources(plan, task_cpu, task_memory)
    with_platform(plan, platform_secret, platform_config, cache=False)
    extract_shards(
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
