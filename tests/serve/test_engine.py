"""Engine rules called directly, without HTTP: uploads, history, defaults, the duration cap."""

from __future__ import annotations

from pathlib import Path

import pytest

from videollm.demo.videos import ClipSpec, write_video
from videollm.eval.generate import GenerationArgs, generate_answers, prompt_ids
from videollm.serve.engine import BadRequest, Engine
from videollm.serve.launch import ModelSource
from videollm.serve.serve_config import ServeConfig
from videollm.video.decode import image_format


@pytest.fixture(scope="module")
def engine(served_checkpoint) -> Engine:
    cfg = ServeConfig(
        device="cpu",
        max_duration_s=2,
        max_new_tokens=32,
        max_history_chars=300,
        max_history_turns=4,
    )
    return Engine(cfg, ModelSource(served_checkpoint, "ckpt"))


def _turns(*values: object) -> list[dict[str, object]]:
    roles = ("human", "gpt")
    return [{"from": roles[i % 2], "value": v} for i, v in enumerate(values)]


@pytest.mark.parametrize(
    ("head", "kind"),
    [
        (b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR", "PNG"),
        (b"\xff\xd8\xff\xe0\0\x10JFIF\0", "JPEG"),
        (b"GIF89a\x10\0\x10\0", "GIF"),
        (b"RIFF\x24\0\0\0WEBPVP8 ", "WebP"),
        (b"BM\x36\x03\0\0\0\0\0\0\x36\0\0\0", "BMP"),
        (b"II*\0\x08\0\0\0", "TIFF"),
        (b"\0\0\0\x1cftypavif\0\0\0\0", "HEIF/AVIF"),
        # Video containers are not images.
        (b"\0\0\0\x20ftypisom\0\0\x02\0", None),  # mp4
        (b"\0\0\0\x14ftypqt  \0\0\0\0", None),  # mov
        (b"\x1a\x45\xdf\xa3\x9f\x42\x86\x81", None),  # mkv/webm
        (b"RIFF\x24\0\0\0AVI LIST", None),  # avi
        (b"not a video\n", None),
    ],
)
def test_image_signatures(head: bytes, kind: str | None) -> None:
    assert image_format(head) == kind


def test_images_and_real_videos(engine, colour_data, tmp_path) -> None:
    video = next(colour_data["videos"].glob("*.mp4"))
    assert engine._decode(video).total_frames > 1
    gif = tmp_path / "anim.mp4"
    gif.write_bytes(b"GIF89a" + b"\0" * 64)
    with pytest.raises(BadRequest, match="video: the upload is a GIF image, not a video"):
        engine._decode(gif)


def test_max_new_tokens_default_respects_the_cap(engine) -> None:
    assert engine.generation_args(None, 0.0).max_new_tokens == 32  # min(128, cap 32)
    assert engine.generation_args(8, 0.0).max_new_tokens == 8
    engine.check_question("What colour?", engine.generation_args(None, 0.0).max_new_tokens)
    with pytest.raises(BadRequest, match="max_new_tokens"):
        engine.check_question("What colour?", 33)


@pytest.mark.parametrize(
    ("history", "message"),
    [
        ("hi", "history: must be a list"),
        (_turns("hi"), "odd number of turns"),
        (_turns("a", "b", "c", "d", "e", "f"), "history: 6 turns, the limit is 4"),
        (["hi", "ok"], "history[0]: must be an object"),
        ([{"value": "hi"}, {"from": "gpt", "value": "ok"}], "history[0].from: must be one of"),
        ([{"from": "gpt", "value": "hi"}, {"from": "human", "value": "ok"}], "expected 'human'"),
        ([{"from": "human", "value": "hi"}, {"from": "human", "value": "ok"}], "expected 'gpt'"),
        ([{"from": "human"}, {"from": "gpt", "value": "ok"}], "history[0].value: must be"),
        (_turns("hi", 3), "history[1].value: must be a non-empty string"),
        (_turns("hi", "  "), "history[1].value: must be a non-empty string"),
        (_turns("<video>\nhi", "ok"), "history[0].value: must not contain '<video>'"),
        (_turns("a" * 200, "b" * 101), "history: 301 characters in all, the limit is 300"),
    ],
)
def test_bad_history_is_a_bad_request(engine, history, message) -> None:
    with pytest.raises(BadRequest) as err:
        engine.check_history(history)
    assert message in str(err.value)
    assert err.value.status == 400


def test_good_history_gets_the_video_in_its_first_turn(engine, colour_data, monkeypatch) -> None:
    assert engine.check_history(None) == []
    history = _turns("What colour is the video?", "red")
    history[0]["extra"] = "ignored"
    turns = engine.check_history(history)
    assert turns == _turns("What colour is the video?", "red")
    with pytest.raises(BadRequest, match="question: must not contain '<video>'"):
        engine.check_question("<video>\nWhat colour?", 8)

    seen = []

    def recording_prompt_ids(model, conversation):
        seen.append(conversation)
        return prompt_ids(model, conversation)

    monkeypatch.setattr("videollm.serve.engine.prompt_ids", recording_prompt_ids)
    feats = engine.features_of(next(colour_data["videos"].glob("*.mp4")))[0]
    engine.generate(feats, "And now?", turns, engine.generation_args(4, 0.0))
    engine.generate(feats, "What colour?", [], engine.generation_args(4, 0.0))
    with_history, alone = seen
    assert [t["value"] for t in with_history] == [
        "<video>\nWhat colour is the video?",
        "red",
        "And now?",
    ]
    assert [t["value"] for t in alone] == ["<video>\nWhat colour?"]
    assert turns[0]["value"] == "What colour is the video?"  # the caller's list is unchanged


def test_duration_cap_holds_when_the_container_has_no_frame_rate(
    engine, tmp_path, monkeypatch
) -> None:
    import decord

    long = write_video(tmp_path / "long.mp4", ClipSpec("red", num_frames=60), fps=15)  # 4 s
    # decord reports a NaN rate (0/0) for a stream without one; the timestamps still count.
    monkeypatch.setattr(decord.VideoReader, "get_avg_fps", lambda self: float("nan"))
    with pytest.raises(BadRequest, match="video: 4 s long, the limit is 2 s"):
        engine._decode(Path(long))


@pytest.mark.parametrize(
    ("max_new_tokens", "temperature", "field"),
    [
        (8, -1.0, "temperature"),
        (8, float("nan"), "temperature"),
        (8, float("inf"), "temperature"),
        (8, 1e30, "temperature"),
        (0, 0.0, "max_new_tokens"),
        (-5, 0.0, "max_new_tokens"),
    ],
)
def test_bad_generation_args_are_bad_requests(engine, max_new_tokens, temperature, field) -> None:
    with pytest.raises(BadRequest) as err:
        engine.generation_args(max_new_tokens, temperature)
    assert str(err.value).startswith(f"{field}: ")
    assert err.value.status == 400


def test_feature_errors_do_not_show_the_server_path(engine, tmp_path) -> None:
    garbage = tmp_path / "upload.safetensors"
    garbage.write_bytes(b"garbage" * 10)
    with pytest.raises(BadRequest) as err:
        engine.answer_features(garbage, "What colour?", None, engine.generation_args(8, 0.0))
    message = str(err.value)
    assert message.startswith("features: the upload is not a valid safetensors file")
    assert str(tmp_path) not in message


def test_concurrent_requests_get_the_answers_each_would_get_alone(engine, colour_data) -> None:
    """Six videos at once through the batching scheduler: the same greedy answers, token for
    token, as ``generate_answers`` gives each of them alone, with and without history."""
    from concurrent.futures import ThreadPoolExecutor

    videos = sorted(colour_data["videos"].glob("*.mp4"))[:6]
    feats = [engine.features_of(v)[0] for v in videos]
    history = _turns("Describe it.", "It is a plain clip.")
    cases = [(f, "What colour is the video?" if i % 2 else "Colour?", history if i % 3 else [])
             for i, f in enumerate(feats)]  # fmt: skip
    args = GenerationArgs(max_new_tokens=24)
    alone = []
    for f, q, h in cases:
        turns = [*h, {"from": "human", "value": q}]
        turns[0] = {**turns[0], "value": f"<video>\n{turns[0]['value']}"}
        alone += generate_answers(engine.model, [turns], [f], args)
    steps = engine.scheduler.steps
    with ThreadPoolExecutor(len(cases)) as pool:
        batched = list(pool.map(lambda c: engine.generate(c[0], c[1], c[2], args)[0], cases))
    assert batched == alone
    assert engine.scheduler.largest_batch > 1  # they did share forward steps
    assert engine.scheduler.steps > steps


def test_a_request_over_the_token_budget_is_refused(served_checkpoint, colour_data) -> None:
    engine = Engine(
        ServeConfig(device="cpu", max_batch_tokens=40), ModelSource(served_checkpoint, "ckpt")
    )
    feats = engine.features_of(next(colour_data["videos"].glob("*.mp4")))[0]
    with pytest.raises(BadRequest, match=r"max_new_tokens: the prompt \(\d+ tokens .* exceeds"):
        engine.start(feats, "What colour?", [], GenerationArgs(max_new_tokens=32))
