"""``benchmark``: score the champion and a challenger on a benchmark suite, side by side.

    videollm pipeline run --local --pipeline benchmark --param suite_uri=suite.yaml \\
        --param challenger_uri=models:/videollm/7
    videollm pipeline submit --pipeline benchmark --host https://kfp.example.com --param ...

plan (check the suite and both models, pin an alias to its version) → extract (one task per
distinct feature settings, on a GPU; features kept under ``<work_uri>/benchmark-features/<key>``)
→ score the champion and the challenger at once (each one MLflow run; its metrics also land on
its training run, so ``select`` can rank by ``bench/<suite>/score``) → compare (Markdown
report and KFP Metrics).
"""

from kfp import dsl, kubernetes

from components import compare_benchmarks, extract_benchmark, plan_benchmark, score_benchmark
from pipelines.pod_spec import with_gpus, with_hf_cache, with_platform, with_resources
from videollm.cluster import (
    EXTRACT_GPUS,
    HF_CACHE_PVC,
    HF_TOKEN_SECRET,
    JUDGE_KEY,
    JUDGE_SECRET,
    PLATFORM_CONFIG,
    PLATFORM_SECRET,
)
from videollm.kfp.bench_tasks import CHALLENGER, CHAMPION
from videollm.kfp.sizing import (
    EVAL_CPU,
    EVAL_GPUS,
    EVAL_MEMORY,
    EXTRACT_CPU,
    EXTRACT_MEMORY,
    TASK_CPU,
    TASK_MEMORY,
)


@dsl.pipeline(
    name="videollm-benchmark",
    description="Score the champion and a challenger on a benchmark suite and compare them.",
)
def benchmark(
    suite_uri: str,
    challenger_uri: str,
    champion_uri: str = "models:/videollm@champion",
    suite_overrides: list = [],  # noqa: B006 (KFP reads the default; never mutated)
    work_uri: str = "",
    experiment: str = "videollm",
    judge_secret: str = JUDGE_SECRET,
    platform_secret: str = PLATFORM_SECRET,
    platform_config: str = PLATFORM_CONFIG,
    extract_cpu: str = EXTRACT_CPU,
    extract_memory: str = EXTRACT_MEMORY,
    eval_gpus: str = EVAL_GPUS,
    eval_cpu: str = EVAL_CPU,
    eval_memory: str = EVAL_MEMORY,
    task_cpu: str = TASK_CPU,
    task_memory: str = TASK_MEMORY,
    hf_cache_pvc: str = HF_CACHE_PVC,
    hf_token_secret: str = HF_TOKEN_SECRET,
    istio_sidecar: bool = False,
    kueue_queue: str = "",
) -> None:
    """Benchmark two models.

    KFP takes only literals in pod labels and annotations, and cannot mount a PVC with an
    empty name: ``istio_sidecar``, ``kueue_queue`` and an empty ``hf_cache_pvc`` or
    ``hf_token_secret`` reach the task pods through ``videollm pipeline submit``.

    Args:
        suite_uri: The suite YAML, a path or ``s3://`` object; relative paths in it are
            relative to it (see the README's Benchmarks).
        challenger_uri: The model scored against the champion: ``models:/NAME/VERSION``,
            ``models:/NAME@ALIAS`` or a checkpoint URI.
        champion_uri: The model to beat (default the registry's champion).
        suite_overrides: ``key=value`` overrides of the suite, e.g.
            ``["judge.url=http://vllm:8000/v1", "judge.model=Qwen/Qwen2.5-7B-Instruct"]``.
        work_uri: Where the data goes: ``<work_uri>/benchmark-features/<key>`` (shared by
            runs and models that extract alike) and ``<work_uri>/<run id>/benchmark``.
            Empty: ``s3://<the platform's bucket>/runs``.
        experiment: MLflow experiment of the benchmark runs.
        judge_secret: Optional Secret whose ``OPENAI_API_KEY`` is the judge's key.
        platform_secret: Secret with S3/MLflow credentials.
        platform_config: ConfigMap with S3/MLflow endpoints.
        extract_cpu: CPU request and limit of each extract task (1 GPU each).
        extract_memory: Memory request and limit of each extract task.
        eval_gpus: GPUs of each scoring task: ``"1"`` (bf16) or ``"0"`` (CPU, fp32).
        eval_cpu: CPU request and limit of each scoring task.
        eval_memory: Memory request and limit of each scoring task.
        task_cpu: CPU request and limit of the plan and compare tasks.
        task_memory: Memory request and limit of the plan and compare tasks.
        hf_cache_pvc: Hugging Face cache PVC of the extract and scoring pods.
        hf_token_secret: Optional Secret with the Hub token (key ``HF_TOKEN``).
        istio_sidecar: Let Istio inject its sidecar into the task pods.
        kueue_queue: Kueue LocalQueue label for the extract pods (empty: none).
    """
    platform = {"platform_config": platform_config, "platform_secret": platform_secret}
    run_id = dsl.PIPELINE_JOB_ID_PLACEHOLDER
    plan = plan_benchmark(
        suite_uri=suite_uri,
        suite_overrides=suite_overrides,
        champion_uri=champion_uri,
        challenger_uri=challenger_uri,
        gpus=eval_gpus,
        experiment=experiment,
        **platform,
    )
    with_resources(plan, task_cpu, task_memory)
    with_platform(plan, platform_secret, platform_config, cache=False)

    with dsl.ParallelFor(plan.outputs["Output"]) as settings:
        features = extract_benchmark(
            suite_uri=suite_uri,
            suite_overrides=suite_overrides,
            settings=settings,
            work_uri=work_uri,
            experiment=experiment,
            **platform,
        )
        features.set_display_name("extract benchmark videos")
        with_gpus(features, EXTRACT_GPUS)
        with_resources(features, extract_cpu, extract_memory)
        with_hf_cache(features, hf_cache_pvc, hf_token_secret)
        # Not cached: the suite file behind suite_uri may change; extraction itself skips
        # the videos whose features are already there.
        with_platform(features, platform_secret, platform_config, cache=False)

    scored = {}
    for label in (CHAMPION, CHALLENGER):
        # The models as the plan pinned them: an alias moved meanwhile changes nothing.
        task = score_benchmark(
            suite_uri=suite_uri,
            suite_overrides=suite_overrides,
            model_uri=plan.outputs[f"{label}_model"],
            label=label,
            features_roots=dsl.Collected(features.outputs["Output"]),
            work_uri=work_uri,
            run_id=run_id,
            gpus=eval_gpus,
            experiment=experiment,
            **platform,
        )
        task.set_display_name(f"score {label}")
        with_gpus(task, eval_gpus)
        with_resources(task, eval_cpu, eval_memory)
        with_hf_cache(task, hf_cache_pvc, hf_token_secret)
        kubernetes.use_secret_as_env(task, judge_secret, {JUDGE_KEY: JUDGE_KEY}, optional=True)
        with_platform(task, platform_secret, platform_config, cache=False)
        scored[label] = task

    report = compare_benchmarks(
        champion_results=scored[CHAMPION].outputs["Output"],
        challenger_results=scored[CHALLENGER].outputs["Output"],
        work_uri=work_uri,
        run_id=run_id,
        **platform,
    )
    with_resources(report, task_cpu, task_memory)
    with_platform(report, platform_secret, platform_config, cache=False)
