"""``score_benchmark``: one model's results on the suite."""

from kfp import dsl
from kfp.dsl import Markdown, Metrics, Output

from videollm.images import PIPELINE_IMAGE


@dsl.component(base_image=PIPELINE_IMAGE, install_kfp_package=False)
def score_benchmark(
    suite_uri: str,
    suite_overrides: list,
    model_uri: str,
    label: str,
    features_roots: list,
    work_uri: str,
    run_id: str,
    gpus: str,
    experiment: str,
    platform_config: str,
    platform_secret: str,
    metrics: Output[Metrics],
    report: Output[Markdown],
) -> str:
    """Score the model on every benchmark of the suite, from the extracted features.

    Args:
        suite_uri: The suite YAML (local path or ``s3://``).
        suite_overrides: ``key=value`` overrides of the suite.
        model_uri: The model as ``plan_benchmark`` pinned it (``models:/NAME/VERSION`` or a
            checkpoint URI).
        label: ``champion`` or ``challenger``: its folder and its column in the comparison.
        features_roots: The extract tasks' outputs (one features root; orders this task
            after them).
        work_uri: Folder or prefix for all runs' data; the judge's verdicts are kept across
            runs in ``<work_uri>/benchmark-judge/<suite>-<label>.jsonl`` (unless the suite
            sets ``judge.cache``).
        run_id: The pipeline run's id; results go to ``<work_uri>/<run_id>/benchmark/<label>``.
        gpus: ``"1"``: generate on the task's GPU; ``"0"``: on the CPU in fp32.
        experiment: MLflow experiment (one run ``benchmark-<model>-<suite>``).
        platform_config: The platform ConfigMap (checked for, inside a cluster).
        platform_secret: The platform Secret (checked for, inside a cluster).
        metrics: ``bench/<suite>/score`` and every benchmark's metrics.
        report: The results table (``results.md``).

    Returns:
        The results prefix (``results.json``, ``results.md``, predictions).
    """
    from videollm.kfp.bench_tasks import score_model
    from videollm.kfp.task_io import init_task, log_metrics, write_report

    init_task(experiment, platform_config, platform_secret)
    result = score_model(
        suite_uri, suite_overrides, model_uri, label, features_roots, work_uri, run_id, gpus
    )
    write_report(result, report.path)
    log_metrics(metrics, result)
    return result.uri
