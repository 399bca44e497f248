"""``extract``: features of one shard of the videos."""

from kfp import dsl
from kfp.dsl import Dataset, Markdown, Metrics, Output

from videollm.images import PIPELINE_IMAGE


@dsl.component(base_image=PIPELINE_IMAGE, install_kfp_package=False)
def extract(
    videos_uri: str,
    work_uri: str,
    run_id: str,
    encoder: str,
    num_frames: int,
    shard: int,
    num_shards: int,
    experiment: str,
    features: Output[Dataset],
    metrics: Output[Metrics],
    report: Output[Markdown],
) -> str:
    """Extract one shard's video features into ``<work>/features/shard-NNN``.

    Args:
        videos_uri: Folder or ``s3://`` prefix of the videos.
        work_uri: Folder or prefix for all runs' data.
        run_id: The pipeline run's id; this run's data goes under ``<work_uri>/<run_id>``.
        encoder: Vision encoder (HF id or path).
        num_frames: Frames sampled per video.
        shard: This task's shard index.
        num_shards: Number of shards.
        experiment: MLflow experiment.
        features: Manifest of the shard's features (their URI).
        metrics: Videos done, skipped and failed; videos/s.
        report: Extraction failures, one row per video.

    Returns:
        The features prefix all shards write under.
    """
    from videollm.pipeline.tasks import (
        extract_shard,
        init_task,
        log_metrics,
        work_dir,
        write_outputs,
    )
    from videollm.storage import join

    init_task(experiment)
    work = work_dir(work_uri, run_id)
    result = extract_shard(
        videos_uri, join(work, "features"), encoder, num_frames, shard, num_shards
    )
    write_outputs(result, features.path, report.path)
    log_metrics(metrics, result)
    return result.uri
