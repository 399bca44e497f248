"""``package``: the champion as a Bento, stored beside the run's data."""

from kfp import dsl
from kfp.dsl import Markdown, Model, Output

from videollm.images import PIPELINE_IMAGE


@dsl.component(base_image=PIPELINE_IMAGE, install_kfp_package=False)
def package(
    model_uri: str,
    work_uri: str,
    run_id: str,
    experiment: str,
    platform_config: str,
    platform_secret: str,
    bento: Output[Model],
    report: Output[Markdown],
) -> str:
    """Build the Bento of ``model_uri`` and upload its archive to ``<work>/bento``.

    Args:
        model_uri: Registry URI, e.g. ``models:/videollm@champion``.
        work_uri: Folder or prefix for all runs' data.
        run_id: The pipeline run's id; this run's data goes under ``<work_uri>/<run_id>``.
        experiment: MLflow experiment.
        platform_config: The platform ConfigMap (checked for, inside a cluster).
        platform_secret: The platform Secret (checked for, inside a cluster).
        bento: Manifest of the Bento (archive URI, tag, MLflow labels).
        report: How to import and serve it.

    Returns:
        The ``.bento`` archive's URI.
    """
    from videollm.kfp.task_io import init_task, write_outputs
    from videollm.kfp.tasks import package_model
    from videollm.kfp.work_dirs import work_dir
    from videollm.storage import join

    init_task(experiment, platform_config, platform_secret)
    work = work_dir(work_uri, run_id)
    result = package_model(model_uri, join(work, "bento"))
    write_outputs(result, bento.path, report.path)
    return result.uri
