"""``plan_shards``: check the run's parameters, then split the videos into extract shards."""

from kfp import dsl

from videollm.images import PIPELINE_IMAGE


@dsl.component(base_image=PIPELINE_IMAGE, install_kfp_package=False)
def plan_shards(
    videos_uri: str,
    annotations_uri: str,
    annotation_format: str,
    num_shards: int,
    require_annotations: bool,
    pooling: str,
    pooling_options: dict,
    work_uri: str,
    run_id: str,
    experiment: str,
    platform_config: str,
    platform_secret: str,
) -> list:
    """Fail fast on a bad parameter; otherwise plan the parallel extraction.

    Args:
        videos_uri: Folder or ``s3://`` prefix of the videos.
        annotations_uri: Annotation file or folder.
        annotation_format: One of ``videochatgpt``, ``videoinstruct``, ``breakfast``, ``jsonl``.
        num_shards: Parallel extract tasks wanted (capped at the number of videos).
        require_annotations: Whether ``annotations_uri`` must be given.
        pooling: The extract tasks' pooling, checked with its options before any extraction.
        pooling_options: The pooling's options.
        work_uri: Folder or prefix under which this run's data goes.
        run_id: The pipeline run's id; the run's data goes under ``<work_uri>/<run_id>``.
        experiment: MLflow experiment.
        platform_config: The platform ConfigMap (checked for, inside a cluster).
        platform_secret: The platform Secret (checked for, inside a cluster).

    Returns:
        Shard indices, one extract task each.
    """
    from videollm.kfp.task_io import init_task
    from videollm.kfp.tasks import plan_shards
    from videollm.kfp.work_dirs import work_dir

    init_task(experiment, platform_config, platform_secret)
    work_dir(work_uri, run_id)  # fails now, not later, when work_uri is empty
    return plan_shards(
        videos_uri,
        annotations_uri,
        annotation_format,
        num_shards,
        require_annotations,
        pooling=pooling,
        pooling_options=pooling_options,
    )
