"""``convert``: annotations → chat records with a train/val split."""

from kfp import dsl
from kfp.dsl import Dataset, Metrics, Output

from videollm.images import PIPELINE_IMAGE


@dsl.component(base_image=PIPELINE_IMAGE, install_kfp_package=False)
def convert(
    annotations_uri: str,
    annotation_format: str,
    work_uri: str,
    run_id: str,
    num_frames: int,
    val_fraction: float,
    experiment: str,
    records: Output[Dataset],
    metrics: Output[Metrics],
) -> str:
    """Convert the annotations into ``<work>/records``.

    Args:
        annotations_uri: Annotation file or folder.
        annotation_format: Its format.
        work_uri: Folder or prefix for all runs' data.
        run_id: The pipeline run's id; this run's data goes under ``<work_uri>/<run_id>``.
        num_frames: Frames per video (Breakfast answers index frames).
        val_fraction: Fraction of videos held out for validation.
        experiment: MLflow experiment.
        records: Manifest of the records (their URI).
        metrics: Record counts per split.

    Returns:
        The records prefix.
    """
    from videollm.pipeline.tasks import (
        convert_annotations,
        init_task,
        log_metrics,
        work_dir,
        write_outputs,
    )
    from videollm.storage import join

    init_task(experiment)
    work = work_dir(work_uri, run_id)
    result = convert_annotations(
        annotations_uri, annotation_format, join(work, "records"), num_frames, val_fraction
    )
    write_outputs(result, records.path)
    log_metrics(metrics, result)
    return result.uri
