"""``extract``: features of one shard of the videos."""

from kfp import dsl
from kfp.dsl import Dataset, Markdown, Metrics, Output

from videollm.images import PIPELINE_IMAGE


@dsl.component(base_image=PIPELINE_IMAGE, install_kfp_package=False)
def extract(
    videos_uri: str,
    work_uri: str,
    encoder: str,
    num_frames: int,
    shard: int,
    num_shards: int,
    experiment: str,
    platform_config: str,
    platform_secret: str,
    features: Output[Dataset],
    metrics: Output[Metrics],
    report: Output[Markdown],
) -> str:
    """Extract one shard's video features into ``<work_uri>/features/<key>/shard-NNN``.

    Args:
        videos_uri: Folder or ``s3://`` prefix of the videos.
        work_uri: Folder or prefix for all runs' data. The features go under a key made
            from the videos, encoder and frames, so runs with the same ones share them.
        encoder: Vision encoder (HF id, path or s3:// mirror).
        num_frames: Frames sampled per video.
        shard: This task's shard index.
        num_shards: Number of shards.
        experiment: MLflow experiment.
        platform_config: The platform ConfigMap (checked for, inside a cluster).
        platform_secret: The platform Secret (checked for, inside a cluster).
        features: Manifest of the shard's features (their URI).
        metrics: Videos done, skipped and failed; videos/s.
        report: Extraction failures, one row per video.

    Returns:
        The features prefix all shards write under.
    """
    from videollm.kfp.tasks import (
        extract_shard,
        features_dir,
        init_task,
        log_metrics,
        write_outputs,
    )

    init_task(experiment, platform_config, platform_secret)
    out = features_dir(work_uri, videos_uri, encoder, num_frames)
    result = extract_shard(videos_uri, out, encoder, num_frames, shard, num_shards)
    write_outputs(result, features.path, report.path)
    log_metrics(metrics, result)
    return result.uri
