"""``plan_benchmark``: check the suite and both models, then plan the feature extraction."""

from kfp import dsl

from videollm.images import PIPELINE_IMAGE


@dsl.component(base_image=PIPELINE_IMAGE, install_kfp_package=False)
def plan_benchmark(
    suite_uri: str,
    suite_overrides: list,
    champion_uri: str,
    challenger_uri: str,
    experiment: str,
    platform_config: str,
    platform_secret: str,
) -> list:
    """Fail fast on a bad suite or model; otherwise list the extract tasks to run.

    Args:
        suite_uri: The suite YAML (local path or ``s3://``); relative paths in it are
            relative to it.
        suite_overrides: ``key=value`` overrides of the suite, e.g. ``judge.url=...``.
        champion_uri: The model to beat: ``models:/NAME@ALIAS``, ``models:/NAME/VERSION`` or
            a checkpoint URI.
        challenger_uri: The model scored against it, in the same forms.
        experiment: MLflow experiment.
        platform_config: The platform ConfigMap (checked for, inside a cluster).
        platform_secret: The platform Secret (checked for, inside a cluster).

    Returns:
        One dict of extraction settings per extract task (models that extract alike share
        one).
    """
    from videollm.kfp.bench_tasks import CHALLENGER, CHAMPION, plan_benchmark
    from videollm.kfp.task_io import init_task

    init_task(experiment, platform_config, platform_secret)
    models = {CHAMPION: champion_uri, CHALLENGER: challenger_uri}
    return plan_benchmark(suite_uri, suite_overrides, models)
