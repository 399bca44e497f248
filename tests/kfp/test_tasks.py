"""The pipeline's task functions called directly (tier 1), and ``--param`` parsing."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from videollm.errors import ConfigError, VideoLLMError
from videollm.kfp.runner import get_pipeline, parse_params
from videollm.kfp.task_io import single_uri
from videollm.kfp.tasks import extract_shard, plan_shards
from videollm.kfp.train_task import TrainTaskArgs, dns_name, job_spec
from videollm.kfp.work_dirs import keyed_dir, work_dir


def test_plan_shards_caps_at_the_number_of_videos(colour_data):
    videos = str(colour_data["videos"])
    annotations = str(colour_data["root"] / "annotations.jsonl")
    assert plan_shards(videos, annotations, "jsonl", 3) == [0, 1, 2]
    assert plan_shards(videos, annotations, "jsonl", 1000) == list(range(24))


def test_the_planned_shards_extract_every_video_when_shards_outnumber_videos(
    colour_data, tiny_clip_dir, tmp_path
):
    # Three videos and the default four shards: the plan launches three tasks, and each one
    # must split by three too, or a video hashed to the unlaunched fourth shard is lost.
    videos = tmp_path / "videos"
    videos.mkdir()
    for name in ("a", "b", "c"):
        shutil.copy(next(colour_data["videos"].glob("*.mp4")), videos / f"{name}.mp4")
    annotations = str(colour_data["root"] / "annotations.jsonl")
    planned = plan_shards(str(videos), annotations, "jsonl", 4)
    assert planned == [0, 1, 2]
    done = sum(
        extract_shard(str(videos), str(tmp_path / "f"), str(tiny_clip_dir), 4, shard, 4).metrics[
            "done"
        ]
        for shard in planned
    )
    assert done == 3


@pytest.mark.parametrize(
    ("fmt", "shards", "videos", "annotations", "message"),
    [
        ("nope", 2, "videos", "ann", "annotation_format: 'nope' is not one of"),
        ("jsonl", 0, "videos", "ann", "num_shards: must be at least 1, got 0"),
        ("jsonl", 2, "missing", "ann", "videos_uri: no videos found under"),
        ("jsonl", 2, "videos", "missing.jsonl", "annotations_uri: "),
        ("jsonl", 2, "videos", "", "annotations_uri: required"),
    ],
)
def test_bad_parameters_are_named(colour_data, tmp_path, fmt, shards, videos, annotations, message):
    paths = {
        "videos": str(colour_data["videos"]),
        "ann": str(colour_data["root"] / "annotations.jsonl"),
        "missing": str(tmp_path / "nothing-here"),
        "missing.jsonl": str(tmp_path / "missing.jsonl"),
        "": "",
    }
    with pytest.raises(ConfigError, match=message):
        plan_shards(paths[videos], paths[annotations], fmt, shards)


@pytest.mark.parametrize(
    ("pooling", "options", "message"),
    [
        ("mean_of_nothing", {}, "extract.pooling: unknown pooling 'mean_of_nothing'; choose from"),
        ("per_frame", {"tokens_per_frame": 3.0}, "tokens_per_frame"),
        ("adaptive3d", {"grid": [1, 2, 3]}, "extract.pooling_options"),
    ],
)
def test_a_bad_pooling_fails_the_plan_before_any_extraction(colour_data, pooling, options, message):
    with pytest.raises(ConfigError, match=message):
        plan_shards(
            str(colour_data["videos"]),
            str(colour_data["root"] / "annotations.jsonl"),
            "jsonl",
            2,
            pooling=pooling,
            pooling_options=options,
        )
    # Whole-number floats (how KFP hands dict parameters over) are accepted.
    assert plan_shards(
        str(colour_data["videos"]),
        "",
        "jsonl",
        1,
        require_annotations=False,
        pooling="per_frame",
        pooling_options={"tokens_per_frame": 4.0},
    ) == [0]


def test_extract_only_plans_without_annotations(colour_data):
    assert plan_shards(str(colour_data["videos"]), "", "jsonl", 2, require_annotations=False)


def test_keyed_dirs_are_shared_by_equal_inputs_only():
    key = {"videos_uri": "s3://v", "encoder": "clip", "num_frames": 100}
    first = keyed_dir("s3://w", "features", **key)
    assert first.startswith("s3://w/features/") and first != "s3://w/features/"
    assert keyed_dir("s3://w", "features", **dict(reversed(key.items()))) == first
    assert keyed_dir("s3://w", "features", **(key | {"num_frames": 8})) != first
    assert keyed_dir("s3://w", "records", **key) != first
    assert keyed_dir("s3://w", "features", **key) == first


def test_work_dir_and_shard_outputs(monkeypatch):
    assert work_dir("s3://bucket/runs", "abc") == "s3://bucket/runs/abc"
    monkeypatch.delenv("VIDEOLLM_BUCKET", raising=False)
    with pytest.raises(ConfigError, match="work_uri: required"):
        work_dir("", "abc")
    # On a cluster the platform ConfigMap names the chart's bucket.
    monkeypatch.setenv("VIDEOLLM_BUCKET", "team-bucket")
    assert work_dir("", "abc") == "s3://team-bucket/runs/abc"
    assert keyed_dir("", "features", a=1).startswith("s3://team-bucket/runs/features/")
    assert single_uri(["s3://b/f", "s3://b/f"]) == "s3://b/f"
    with pytest.raises(VideoLLMError, match="share one prefix"):
        single_uri(["s3://b/f", "s3://b/g"])


def test_params_are_typed_by_the_pipeline_and_checked():
    finetune = get_pipeline("finetune")
    params = parse_params(
        finetune,
        ["videos_uri=s3://v", "annotations_uri=s3://a.json", "num_shards=3",
         "train_overrides=[\"train.epochs=1\"]", "package_bento=false", "val_fraction=0.2"],
    )  # fmt: skip
    assert params["num_shards"] == 3 and params["package_bento"] is False
    assert params["train_overrides"] == ["train.epochs=1"] and params["val_fraction"] == 0.2
    with pytest.raises(ConfigError, match="unknown; the parameters are videos_uri"):
        parse_params(finetune, ["videos_uri=x", "annotations_uri=y", "shards=3"])
    with pytest.raises(ConfigError, match=r"num_shards=.three.*Integer"):
        parse_params(finetune, ["videos_uri=x", "annotations_uri=y", "num_shards=three"])
    with pytest.raises(ConfigError, match=r"missing required parameter.*annotations_uri"):
        parse_params(finetune, ["videos_uri=x"])
    with pytest.raises(ConfigError, match="pipeline 'nope' is unknown"):
        get_pipeline("nope")


def test_job_spec_carries_the_command_and_cluster_settings():
    args = TrainTaskArgs(
        records_uri="s3://w/r", features_uri="s3://w/f", checkpoint_uri="s3://w/ckpt",
        llm="lmsys/vicuna-7b-v1.5", recipe="videochatgpt_7b", overrides=["train.epochs=1"],
        num_workers=2, gpus_per_worker=8, deepspeed="zero3", job_name="videollm-Run_42",
        platform_secret="creds", platform_config="platform", namespace="ml",
        tolerations=[{"key": "nvidia.com/gpu", "operator": "Exists"}],
    )  # fmt: skip
    spec = job_spec(args)
    assert spec.name == "videollm-run-42" and spec.namespace == "ml"
    assert spec.args[:3] == ["train", "--config", "videochatgpt_7b"]
    assert spec.args[-2:] == ["train.epochs=1", "train.deepspeed=zero3"]
    assert "--out" in spec.args and spec.args[spec.args.index("--out") + 1] == "s3://w/ckpt"
    assert (spec.num_workers, spec.gpus_per_worker, spec.nproc) == (2, 8, 8)
    assert spec.env_from_secrets == ["creds"] and spec.env_from_config_maps == ["platform"]
    with pytest.raises(VideoLLMError, match="no usable characters"):
        dns_name("___")
    assert dns_name("42-Run") == "job-42-run"  # DNS-1035: a letter first


class _Recorded:
    """A launcher that reports a given outcome and keeps the spec it was given."""

    def __init__(self, result) -> None:
        self.result, self.specs = result, []

    def run(self, spec):
        self.specs.append(spec)
        return self.result


def test_train_task_fails_with_the_jobs_reason_and_keeps_the_masters_log(tmp_path):
    from videollm.kfp.train_task import run_train_task
    from videollm.launcher.base import LaunchResult

    work = tmp_path / "runs" / "run-7"
    args = TrainTaskArgs("r", "f", str(work / "checkpoint"), "m")
    log = "step 1 loss 2.3\nValueError: model.llm: no such model\n"
    reason = "PyTorchJobFailed: 1 Master replica(s) failed."
    failed = _Recorded(LaunchResult(False, reason=reason, logs=log))
    with pytest.raises(VideoLLMError, match="run-7 failed: PyTorchJobFailed: 1 Master") as err:
        run_train_task(args, failed)
    # KFP uploads no artifact of a failed task: the log must be in the run's folder, named.
    [kept] = (work / "train-logs").glob("videollm-run-7-*.log")
    assert kept.read_text() == log and f"the master's log is at {kept}" in str(err.value)

    manifest = {"apiVersion": "kubeflow.org/v1", "kind": "PyTorchJob"}
    ok = _Recorded(LaunchResult(True, manifest=manifest, logs="step 9 loss 0.1\n"))
    done = run_train_task(args, ok)
    assert "kind: PyTorchJob" in done.job_yaml and done.result.uri == args.checkpoint_uri
    assert done.log == "step 9 loss 0.1\n" and ok.specs[0].args[0] == "train"
    assert Path(done.result.manifest["log"]).read_text() == done.log

    # No log read (e.g. no RBAC on pods/log): the error says so instead of naming a file.
    with pytest.raises(VideoLLMError, match="failed: OOM; no log of it was kept"):
        run_train_task(args, _Recorded(LaunchResult(False, reason="OOM")))
    with pytest.raises(ConfigError, match="launcher: unknown launcher 'slurm'; choose from auto"):
        run_train_task(TrainTaskArgs("r", "f", "c", "m", launcher="slurm"))


def test_a_failed_job_still_fails_when_its_log_cannot_be_kept(tmp_path):
    from videollm.kfp.train_task import run_train_task
    from videollm.launcher.base import LaunchResult

    blocker = tmp_path / "run"
    blocker.write_text("a file where the run folder should be")
    args = TrainTaskArgs("r", "f", str(blocker / "checkpoint"), "m")
    failed = _Recorded(LaunchResult(False, reason="Evicted", logs="last line\n"))
    with pytest.raises(VideoLLMError, match="failed: Evicted; no log of it was kept"):
        run_train_task(args, failed)


def test_job_spec_bounds_the_job_and_ties_it_to_the_run():
    from videollm.cluster import ISTIO_INJECT, KUEUE_QUEUE_LABEL, RUN_LABEL

    args = TrainTaskArgs(
        records_uri="r", features_uri="f", checkpoint_uri="s3://w/runs/1f0c-77/checkpoint",
        llm="m", namespace="ml", service_account="videollm-train", cpu="32", memory="192Gi",
        timeout_hours=1.5, ttl_hours=24, kueue_queue="team-a", hf_cache_pvc="hf",
        hf_token_secret="hf-token",
    )  # fmt: skip
    spec = job_spec(args)
    assert (spec.active_deadline_s, spec.ttl_after_finished_s) == (5400, 86400)
    assert spec.labels == {RUN_LABEL: "1f0c-77", KUEUE_QUEUE_LABEL: "team-a"}
    assert spec.pod_annotations == {ISTIO_INJECT: "false"}
    assert spec.service_account == "videollm-train" and spec.name == "videollm-1f0c-77"
    # One value each: the manifest makes the limit equal to the request.
    assert (spec.cpu, spec.memory, spec.cpu_limit, spec.memory_limit) == ("32", "192Gi", None, None)
    assert (spec.hf_cache_pvc, spec.hf_token_secret) == ("hf", "hf-token")

    sidecar = job_spec(TrainTaskArgs("r", "f", "c", "m", istio_sidecar=True, ttl_hours=0))
    assert sidecar.pod_annotations == {} and sidecar.ttl_after_finished_s == 0
    assert KUEUE_QUEUE_LABEL not in sidecar.labels and sidecar.cpu is None


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"timeout_hours": 0}, "train_timeout_hours: must be at least 1 s"),
        ({"timeout_hours": float("nan")}, "train_timeout_hours: expected a number of hours"),
        ({"ttl_hours": -1}, "train_ttl_hours: must be at least 0 s"),
        ({"kueue_queue": "team a"}, "kueue_queue: 'team a' is not a valid Kubernetes label"),
    ],
)
def test_job_spec_refuses_bad_bounds_by_name(change, message):
    with pytest.raises(ConfigError, match=message):
        job_spec(TrainTaskArgs("r", "f", "c", "m", **change))


def test_the_train_task_builds_the_named_launcher_from_its_settings(monkeypatch):
    from videollm.kfp.train_task import run_train_task
    from videollm.launcher.base import LaunchResult
    from videollm.launcher.registry import LAUNCHERS, LaunchSettings

    LAUNCHERS.names()  # the built-ins first, so that the copy below holds them
    # What this test registers is gone after it.
    monkeypatch.setattr(LAUNCHERS, "_items", dict(LAUNCHERS._items))
    monkeypatch.setattr(LAUNCHERS, "_summaries", dict(LAUNCHERS._summaries))
    built: list[LaunchSettings] = []

    @LAUNCHERS.register("recorded-by-test-tasks", summary="records what it was built from")
    def recorded(settings: LaunchSettings) -> _Recorded:
        built.append(settings)
        return _Recorded(LaunchResult(False, reason="stop here"))

    args = TrainTaskArgs(
        "r", "f", "c", "m", launcher="recorded-by-test-tasks", timeout_hours=2,
        delete_on_success=False,
    )  # fmt: skip
    with pytest.raises(VideoLLMError, match="stop here"):
        run_train_task(args)
    assert built == [LaunchSettings(deadline_s=2 * 3600, delete_on_success=False)]
