"""``extract_benchmark``: features of the suite's videos, with one model's settings."""

from kfp import dsl
from kfp.dsl import Markdown, Metrics, Output

from videollm.images import PIPELINE_IMAGE


@dsl.component(base_image=PIPELINE_IMAGE, install_kfp_package=False)
def extract_benchmark(
    suite_uri: str,
    suite_overrides: list,
    settings: dict,
    work_uri: str,
    experiment: str,
    platform_config: str,
    platform_secret: str,
    metrics: Output[Metrics],
    report: Output[Markdown],
) -> str:
    """Extract the features of every video the suite asks about (done ones are skipped).

    Args:
        suite_uri: The suite YAML (local path or ``s3://``).
        suite_overrides: ``key=value`` overrides of the suite.
        settings: Extraction settings from ``plan_benchmark`` (encoder, layer, frames,
            pooling).
        work_uri: Folder or prefix for all runs' data; the features go under
            ``<work_uri>/benchmark-features/<key>``, shared by every run and model that
            extracts the same videos alike.
        experiment: MLflow experiment.
        platform_config: The platform ConfigMap (checked for, inside a cluster).
        platform_secret: The platform Secret (checked for, inside a cluster).
        metrics: Videos needed, with features and failed.
        report: The same per videos folder.

    Returns:
        The features root.
    """
    from videollm.kfp.bench_tasks import extract_benchmark
    from videollm.kfp.task_io import init_task, log_metrics, write_report

    init_task(experiment, platform_config, platform_secret)
    result = extract_benchmark(suite_uri, suite_overrides, settings, work_uri)
    write_report(result, report.path)
    log_metrics(metrics, result)
    return result.uri
