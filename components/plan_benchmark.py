"""``plan_benchmark``: check the suite and both models, pin them, plan the extraction."""

from kfp import dsl

from videollm.images import PIPELINE_IMAGE


@dsl.component(base_image=PIPELINE_IMAGE, install_kfp_package=False)
def plan_benchmark(
    suite_uri: str,
    suite_overrides: list,
    champion_uri: str,
    challenger_uri: str,
    gpus: str,
    experiment: str,
    platform_config: str,
    platform_secret: str,
    champion_model: dsl.OutputPath(str),
    challenger_model: dsl.OutputPath(str),
) -> list:
    """Fail fast on a bad suite, model or GPU count; otherwise plan the extract tasks.

    Args:
        suite_uri: The suite YAML (local path or ``s3://``); relative paths in it are
            relative to it.
        suite_overrides: ``key=value`` overrides of the suite, e.g. ``judge.url=...``.
        champion_uri: The model to beat: ``models:/NAME@ALIAS``, ``models:/NAME/VERSION`` or
            a checkpoint URI.
        challenger_uri: The model scored against it, in the same forms.
        gpus: The scoring tasks' ``eval_gpus`` (``"0"`` or ``"1"``), checked here.
        experiment: MLflow experiment.
        platform_config: The platform ConfigMap (checked for, inside a cluster).
        platform_secret: The platform Secret (checked for, inside a cluster).
        champion_model: The champion pinned (an alias as ``models:/NAME/VERSION``), which
            its scoring task scores.
        challenger_model: The challenger pinned.

    Returns:
        One dict of extraction settings per extract task (models that extract alike share
        one). (The loop's items: ``kfp.local`` loops only over a task's ``Output``.)
    """
    from pathlib import Path

    from videollm.kfp.bench_tasks import CHALLENGER, CHAMPION, plan_benchmark
    from videollm.kfp.task_io import init_task

    init_task(experiment, platform_config, platform_secret)
    models = {CHAMPION: champion_uri, CHALLENGER: challenger_uri}
    plan = plan_benchmark(suite_uri, suite_overrides, models, gpus)
    Path(champion_model).write_text(plan.models[CHAMPION])
    Path(challenger_model).write_text(plan.models[CHALLENGER])
    return plan.settings
