"""``select``: register the best run and move the champion alias."""

from kfp import dsl
from kfp.dsl import Markdown, Metrics, Model, Output

from videollm.images import PIPELINE_IMAGE


@dsl.component(base_image=PIPELINE_IMAGE, install_kfp_package=False)
def select(
    experiment: str,
    platform_config: str,
    platform_secret: str,
    select_metric: str,
    registered_model_name: str,
    evaluated: str,
    champion: Output[Model],
    metrics: Output[Metrics],
    report: Output[Markdown],
) -> str:
    """Promote the best run of the experiment to ``models:/NAME@champion`` if it is better.

    Args:
        experiment: MLflow experiment whose runs compete.
        platform_config: The platform ConfigMap (checked for, inside a cluster).
        platform_secret: The platform Secret (checked for, inside a cluster).
        select_metric: Metric to maximise, e.g. ``val/exact_match``.
        registered_model_name: Registered model in the MLflow registry.
        evaluated: The evaluation prefix (orders this task after ``evaluate``).
        champion: Manifest of the champion (registry URI and version).
        metrics: The best run's value of ``select_metric``.
        report: The ranking of the top runs.

    Returns:
        The champion's registry URI.
    """
    from videollm.kfp.task_io import init_task, log_metrics, write_outputs
    from videollm.kfp.tasks import select_model

    init_task(experiment, platform_config, platform_secret)
    result = select_model(experiment, select_metric, registered_model_name)
    write_outputs(result, champion.path, report.path)
    log_metrics(metrics, result)
    return result.uri
