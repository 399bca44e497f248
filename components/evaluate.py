"""``evaluate``: metrics and sample predictions on the validation split."""

from kfp import dsl
from kfp.dsl import Markdown, Metrics, Output

from videollm.images import PIPELINE_IMAGE


@dsl.component(base_image=PIPELINE_IMAGE, install_kfp_package=False)
def evaluate(
    checkpoint_uri: str,
    records_uri: str,
    features_uris: list,
    work_uri: str,
    run_id: str,
    gpus: str,
    experiment: str,
    platform_config: str,
    platform_secret: str,
    metrics: Output[Metrics],
    report: Output[Markdown],
) -> str:
    """Evaluate the checkpoint; metrics also land on its MLflow training run.

    Args:
        checkpoint_uri: The checkpoint (from ``train``).
        records_uri: Records prefix; ``val.jsonl`` is evaluated.
        features_uris: The extract shards' feature prefixes.
        work_uri: Folder or prefix for all runs' data.
        run_id: The pipeline run's id; this run's data goes under ``<work_uri>/<run_id>``.
        gpus: ``"1"``: evaluate on the task's GPU in bf16; ``"0"``: on the CPU in fp32.
        experiment: MLflow experiment.
        platform_config: The platform ConfigMap (checked for, inside a cluster).
        platform_secret: The platform Secret (checked for, inside a cluster).
        metrics: Evaluation metrics.
        report: The metrics and ten sample predictions.

    Returns:
        The evaluation prefix.
    """
    from videollm.kfp.task_io import init_task, log_metrics, single_uri, write_report
    from videollm.kfp.tasks import evaluate_checkpoint
    from videollm.kfp.work_dirs import work_dir
    from videollm.storage import join

    init_task(experiment, platform_config, platform_secret)
    work = work_dir(work_uri, run_id)
    result = evaluate_checkpoint(
        checkpoint_uri, records_uri, single_uri(features_uris), join(work, "eval"), gpus
    )
    write_report(result, report.path)
    log_metrics(metrics, result)
    return result.uri
