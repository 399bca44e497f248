"""``convert``: annotations → chat records with a train/val split."""

from kfp import dsl
from kfp.dsl import Dataset, Metrics, Output

from videollm.images import PIPELINE_IMAGE


@dsl.component(base_image=PIPELINE_IMAGE, install_kfp_package=False)
def convert(
    annotations_uri: str,
    annotation_format: str,
    work_uri: str,
    num_frames: int,
    val_fraction: float,
    experiment: str,
    platform_config: str,
    platform_secret: str,
    records: Output[Dataset],
    metrics: Output[Metrics],
) -> str:
    """Convert the annotations into ``<work_uri>/records/<key>``.

    Args:
        annotations_uri: Annotation file or folder.
        annotation_format: Its format.
        work_uri: Folder or prefix for all runs' data. The records go under a key made from
            all the inputs below, so runs with the same ones share them.
        num_frames: Frames per video (Breakfast answers index frames).
        val_fraction: Fraction of videos held out for validation.
        experiment: MLflow experiment.
        platform_config: The platform ConfigMap (checked for, inside a cluster).
        platform_secret: The platform Secret (checked for, inside a cluster).
        records: Manifest of the records (their URI).
        metrics: Record counts per split.

    Returns:
        The records prefix.
    """
    from videollm.kfp.task_io import init_task, log_metrics, write_outputs
    from videollm.kfp.tasks import convert_annotations
    from videollm.kfp.work_dirs import records_dir

    init_task(experiment, platform_config, platform_secret)
    out = records_dir(work_uri, annotations_uri, annotation_format, num_frames, val_fraction)
    result = convert_annotations(annotations_uri, annotation_format, out, num_frames, val_fraction)
    write_outputs(result, records.path)
    log_metrics(metrics, result)
    return result.uri
