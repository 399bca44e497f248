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
    pooling: str,
    pooling_options: dict,
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
            from the videos, encoder, frames and pooling, so runs with the same ones share them.
        encoder: Vision encoder (HF id, path or s3:// mirror).
        num_frames: Frames sampled per video.
        pooling: A registered pooling (``spatiotemporal``, ``adaptive3d``, ``per_frame`` …).
        pooling_options: The pooling's options (``{"tokens_per_frame": 4}``).
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
    from videollm.kfp.task_io import init_task, log_metrics, write_outputs
    from videollm.kfp.tasks import extract_shard
    from videollm.kfp.work_dirs import features_dir

    init_task(experiment, platform_config, platform_secret)
    out = features_dir(work_uri, videos_uri, encoder, num_frames, pooling, pooling_options)
    result = extract_shard(
        videos_uri, out, encoder, num_frames, shard, num_shards, pooling, pooling_options
    )
    write_outputs(result, features.path, report.path)
    log_metrics(metrics, result)
    return result.uri
