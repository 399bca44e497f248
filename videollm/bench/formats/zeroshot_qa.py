"""Zero-shot open-ended video QA: MSVD-QA, MSRVTT-QA, TGIF-QA (FrameQA) and ActivityNet-QA.

Field layout per MILVLG/activitynet-qa ``dataset/README.md`` and Video-ChatGPT's
``video_chatgpt/eval/run_inference_activitynet_qa.py`` (mbzuai-oryx/Video-ChatGPT), which
Video-LLaVA (``videollava/eval/video/run_inference_video_qa.py``) and PLLaVA
(``tasks/eval/videoqabench/__init__.py``) reuse for all four datasets:

* a questions file (``test_q.json``): a JSON list of ``{"video_name", "question_id",
  "question"}``;
* an answers file (``test_a.json``): a JSON list of ``{"answer", "type", "question_id"}`` in
  the same order. Video-ChatGPT pairs the two lists by position; we also require the
  ``question_id`` of each pair to agree, so a shuffled or truncated file fails loudly.

Some forks ship one merged file instead, each item holding question and answer: BT-Adapter's
``bt_adapter/eval/run_inference_msvd_qa.py`` reads ``video_name`` or ``video`` and
``question_id`` or ``id``; the original MSRVTT-QA ``test_qa.json`` has ``video_id`` (a number)
and ``id``. Without ``answers`` such a file is read as merged; a questions-only file then
fails with a ConfigError asking for the answers file.

Video file names (the stem is our video id, see :func:`video_ref_to_id`):

* ActivityNet-QA: ``video_name`` is the bare YouTube id and the videos are ``v_<id>.mp4``
  (PLLaVA prepends ``v_``); a name that already is ``v_`` + an 11-character id is kept.
* MSRVTT-QA: ``video<N>.mp4``; ``video_name`` is ``video7010`` or the number ``7010``.
* MSVD-QA: the clip name, ``-4wsuPCjDBc_5_15.avi``. The original MSVD-QA numbers its videos
  and needs ``youtube_mapping.txt``, which this reader does not take: numeric names fail.
* TGIF-QA: the GIF name, ``tumblr_<...>`` (Video-ChatGPT's copy is converted to ``.mp4``).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

from videollm.bench.formats._json import (
    check_unique_ids,
    fail,
    first_key,
    read_items,
    require_file,
    require_object,
    text_field,
)
from videollm.data.records import JsonItem, video_ref_to_id
from videollm.errors import ConfigError, RecordFormatError

logger = logging.getLogger(__name__)

#: Keys a merged file may name its video by, in order of preference.
VIDEO_KEYS = ("video_name", "video", "video_id", "gif_name")
#: Keys a merged file may name its question id by.
ID_KEYS = ("question_id", "id")

_YOUTUBE_ID_LEN = 11

VideoOf = Callable[[str, Any], str]
"""``(name as text, raw JSON value) -> video id``; raises ValueError for a name it refuses."""


def _activitynet_video(name: str, raw: Any) -> str:
    stem = video_ref_to_id(name)
    if stem.startswith("v_") and len(stem) == _YOUTUBE_ID_LEN + 2:
        return stem  # already the file name's form
    return f"v_{stem}"


def _msrvtt_video(name: str, raw: Any) -> str:
    stem = video_ref_to_id(name)
    return f"video{stem}" if stem.isdigit() else stem


def _msvd_video(name: str, raw: Any) -> str:
    if not isinstance(raw, str) or name.isdigit():
        raise ValueError(
            f"{raw!r} is an MSVD-QA video number, which needs youtube_mapping.txt; use the "
            "Video-ChatGPT test_q.json, whose video_name is the clip name (-4wsuPCjDBc_5_15)"
        )
    return video_ref_to_id(name)


def _tgif_video(name: str, raw: Any) -> str:
    # .gif is not a video extension of ours, so drop it here: features are named by the stem.
    stem = name[: -len(".gif")] if name.lower().endswith(".gif") else name
    return video_ref_to_id(stem)


VIDEO_NAMING: dict[str, VideoOf] = {
    "activitynet_qa": _activitynet_video,
    "msrvtt_qa": _msrvtt_video,
    "msvd_qa": _msvd_video,
    "tgif_qa": _tgif_video,
}


def _video(task: str, obj: dict[str, Any], key: str, path: Path, item: JsonItem) -> str:
    name = text_field(obj, key, path, item, numbers=True)
    try:
        return VIDEO_NAMING[task](name, obj[key])
    except ValueError as err:
        raise fail(path, item, str(err), key) from err


def _item(name: str, task: str, qid: str, video: str, question: str, answer: str) -> dict[str, Any]:
    return {
        "id": qid,
        "benchmark": name,
        "task": task,
        "video": video,
        "question": question,
        "answer": answer,
    }


def _load_split(
    task: str, questions: Path, answers: Path, name: str
) -> list[tuple[dict[str, Any], Path, JsonItem]]:
    q_items, a_items = read_items(questions), read_items(answers)
    if len(q_items) != len(a_items):
        raise RecordFormatError(
            str(answers),
            f"holds {len(a_items)} answers but {questions} holds {len(q_items)} questions; "
            "the two files must list the same questions in the same order",
        )
    out = []
    for q_item, a_item in zip(q_items, a_items, strict=True):
        q, a = require_object(questions, q_item), require_object(answers, a_item)
        qid = text_field(q, "question_id", questions, q_item, numbers=True)
        aid = text_field(a, "question_id", answers, a_item, numbers=True)
        if aid != qid:
            raise fail(
                answers,
                a_item,
                f"is {aid!r} but the question at {questions} line {q_item.line} is {qid!r}; "
                "the files must be in the same order",
                "question_id",
            )
        row = _item(
            name,
            task,
            qid,
            _video(task, q, "video_name", questions, q_item),
            text_field(q, "question", questions, q_item),
            text_field(a, "answer", answers, a_item, numbers=True),
        )
        out.append((row, questions, q_item))
    return out


def _load_merged(task: str, path: Path, name: str) -> list[tuple[dict[str, Any], Path, JsonItem]]:
    items = read_items(path)
    objs = [require_object(path, it) for it in items]
    if not any("answer" in obj for obj in objs):
        raise ConfigError(
            f"annotations: {path} holds questions without answers; give the answers file "
            "(test_a.json) as answers"
        )
    out = []
    for pos, (item, obj) in enumerate(zip(items, objs, strict=True)):
        video_key = first_key(obj, VIDEO_KEYS) or "video_name"
        id_key = first_key(obj, ID_KEYS)
        qid = text_field(obj, id_key, path, item, numbers=True) if id_key else str(pos)
        row = _item(
            name,
            task,
            qid,
            _video(task, obj, video_key, path, item),
            text_field(obj, "question", path, item),
            text_field(obj, "answer", path, item, numbers=True),
        )
        out.append((row, path, item))
    return out


def load_zeroshot_qa(
    task: str, annotations: str | Path, name: str, answers: str | Path | None = None
) -> list[dict[str, Any]]:
    """Read one zero-shot QA benchmark (see the module docstring for the layouts).

    Args:
        task: ``msvd_qa``, ``msrvtt_qa``, ``tgif_qa`` or ``activitynet_qa``.
        annotations: The questions file, or a merged question-and-answer file.
        name: The benchmark's name, copied into every item.
        answers: The answers file, when the questions file has no answers.

    Returns:
        Items ``{"id", "benchmark", "task", "video", "question", "answer"}`` in file order.

    Raises:
        ConfigError: A path is missing or a folder, or the answers are needed and not given.
        RecordFormatError: Malformed input, naming the file, line and field.
    """
    questions = require_file(annotations, "annotations")
    if answers is not None:
        rows = _load_split(task, questions, require_file(answers, "answers"), name)
    else:
        rows = _load_merged(task, questions, name)
    check_unique_ids(((r["id"], p, it) for r, p, it in rows), "question_id")
    logger.debug("%s: %d questions from %s", name, len(rows), questions)
    return [r for r, _, _ in rows]
