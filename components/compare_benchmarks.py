"""``compare_benchmarks``: champion and challenger side by side."""

from kfp import dsl
from kfp.dsl import Markdown, Metrics, Output

from videollm.images import PIPELINE_IMAGE


@dsl.component(base_image=PIPELINE_IMAGE, install_kfp_package=False)
def compare_benchmarks(
    champion_results: str,
    challenger_results: str,
    work_uri: str,
    run_id: str,
    platform_config: str,
    platform_secret: str,
    metrics: Output[Metrics],
    report: Output[Markdown],
) -> str:
    """Put the two models' results in one table.

    Args:
        champion_results: The champion's results prefix (from ``score_benchmark``).
        challenger_results: The challenger's results prefix.
        work_uri: Folder or prefix for all runs' data.
        run_id: The pipeline run's id; ``comparison.md`` goes to
            ``<work_uri>/<run_id>/benchmark``.
        platform_config: The platform ConfigMap (checked for, inside a cluster).
        platform_secret: The platform Secret (checked for, inside a cluster).
        metrics: ``champion_<suite>_score``, ``challenger_<suite>_score``, each benchmark's
            headline metric per model, and ``challenger_minus_champion``.
        report: The side-by-side table (a warning when the judges differ).

    Returns:
        The URI of ``comparison.md``.
    """
    from videollm.kfp.bench_tasks import CHALLENGER, CHAMPION, compare_benchmarks
    from videollm.kfp.task_io import init_task, log_metrics, write_report

    init_task("", platform_config, platform_secret)
    results = {CHAMPION: champion_results, CHALLENGER: challenger_results}
    result = compare_benchmarks(results, work_uri, run_id)
    write_report(result, report.path)
    log_metrics(metrics, result)
    return result.uri
