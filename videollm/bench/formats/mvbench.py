"""MVBench: 20 multiple-choice video tasks, one JSON file per task.

Field layout per OpenGVLab/Ask-Anything ``video_chat2/mvbench.ipynb`` (``MVBench_dataset``;
PLLaVA's ``tasks/eval/mvbench/__init__.py`` reads the same files): each ``json/<task>.json``
is a list of ``{"video", "question", "candidates", "answer"}``, ``answer`` being the text of
one candidate; tasks cut from longer videos (action sequence/prediction, object interaction,
action localization, episodic reasoning) add ``start`` and ``end`` in seconds. The evaluator
samples those tasks' frames between them (its ``bound``), so their items keep them and are
answered from that part of the video; other tasks' items are answered from the whole video,
as there (a task missing from the table keeps its bounds when it has them).

``video`` is a file name relative to the task's source folder under the benchmark's
``video/`` root, given by the evaluator's table, not by the JSON (``fine_grained_pose.json``
→ ``nturgbd/``). Two source datasets use the same file names (Perception Test and CLEVRER
both have ``video_<N>.mp4``), so the id is taken from the path under ``video/``:
``clevrer/video_validation/video_10000.mp4`` → ``clevrer_video_validation_video_10000``, the id
feature extraction gives that file with ``video/`` as its root. ``video_folders`` replaces the
table for another layout (lmms-eval's copy has, e.g., ``star/Charades_segment``); ``{}`` takes
ids from ``video`` alone. A task missing from the table keeps its bare ``video``.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from videollm.bench.choice import LETTERS
from videollm.bench.formats._json import (
    fail,
    optional_number,
    read_items,
    require_object,
    text_field,
)
from videollm.data.records import JsonItem, video_ref_to_id
from videollm.errors import ConfigError, RecordFormatError

logger = logging.getLogger(__name__)

#: Task (JSON file stem) → its videos' folder under MVBench's ``video/`` root, as the published
#: evaluator (Ask-Anything ``video_chat2/mvbench.ipynb``) lists them.
MVBENCH_VIDEO_FOLDERS: dict[str, str] = {
    "action_sequence": "star/Charades_v1_480",
    "action_prediction": "star/Charades_v1_480",
    "action_antonym": "ssv2_video",
    "fine_grained_action": "Moments_in_Time_Raw/videos",
    "unexpected_action": "FunQA_test/test",
    "object_existence": "clevrer/video_validation",
    "object_interaction": "star/Charades_v1_480",
    "object_shuffle": "perception/videos",
    "moving_direction": "clevrer/video_validation",
    "action_localization": "sta/sta_video",
    "scene_transition": "scene_qa/video",
    "action_count": "perception/videos",
    "moving_count": "clevrer/video_validation",
    "moving_attribute": "clevrer/video_validation",
    "state_change": "perception/videos",
    "fine_grained_pose": "nturgbd",
    "character_order": "perception/videos",
    "egocentric_navigation": "vlnqa",
    "episodic_reasoning": "tvqa/frames_fps3_hq",
    "counterfactual_inference": "clevrer/video_validation",
}


#: Tasks whose frames the published evaluator samples between ``start`` and ``end``.
MVBENCH_BOUNDED = frozenset(
    {"action_sequence", "action_prediction", "object_interaction", "action_localization",
     "episodic_reasoning"}
)  # fmt: skip


def task_files(annotations: str | Path) -> list[Path]:
    """The task files: ``annotations`` itself, or the ``*.json`` files of a folder, sorted.

    Raises:
        ConfigError: The path does not exist.
        RecordFormatError: A folder without any ``.json`` file.
    """
    path = Path(annotations)
    if path.is_file():
        return [path]
    if not path.is_dir():
        raise ConfigError(f"annotations: {path} does not exist")
    files = sorted(p for p in path.glob("*.json") if p.is_file())
    if not files:
        raise RecordFormatError(str(path), "the folder holds no .json task file")
    return files


def _scalar(value: Any, path: Path, item: JsonItem, field: str) -> str:
    # Counting tasks may write candidates as numbers; the evaluator compares them as values.
    if isinstance(value, int | float) and not isinstance(value, bool):
        return str(value)
    if not isinstance(value, str):
        raise fail(path, item, f"must be text, got {type(value).__name__} {value!r}", field)
    if not value.strip():
        raise fail(path, item, "is empty", field)
    return value.strip()


def _options(obj: dict[str, Any], path: Path, item: JsonItem) -> list[str]:
    if "candidates" not in obj:
        raise fail(path, item, "is missing", "candidates")
    raw = obj["candidates"]
    if not isinstance(raw, list):
        raise fail(path, item, f"must be a list, got {type(raw).__name__}", "candidates")
    if not 2 <= len(raw) <= len(LETTERS):
        reason = f"must hold 2 to {len(LETTERS)} options, got {len(raw)}"
        raise fail(path, item, reason, "candidates")
    return [_scalar(c, path, item, f"candidates[{i}]") for i, c in enumerate(raw)]


def _answer_index(obj: dict[str, Any], options: list[str], path: Path, item: JsonItem) -> int:
    if "answer" not in obj:
        raise fail(path, item, "is missing", "answer")
    answer = _scalar(obj["answer"], path, item, "answer")
    if answer not in options:
        raise fail(path, item, f"{answer!r} is not one of the candidates {options}", "answer")
    if options.count(answer) > 1:
        logger.warning("%s line %s: answer %r is listed twice; the first is taken",
                       path, item.line, answer)  # fmt: skip
    return options.index(answer)


def _load_task(path: Path, name: str, folder: str | None) -> list[dict[str, Any]]:
    task = path.stem
    out = []
    for pos, item in enumerate(read_items(path)):
        obj = require_object(path, item)
        ref = text_field(obj, "video", path, item)
        options = _options(obj, path, item)
        index = _answer_index(obj, options, path, item)
        row: dict[str, Any] = {
            "id": f"{task}/{pos}",
            "benchmark": name,
            "task": task,
            "video": video_ref_to_id(f"{folder.strip('/')}/{ref}" if folder else ref),
            "question": text_field(obj, "question", path, item),
            "answer": options[index],
            "options": options,
            "answer_index": index,
        }
        bounded = task in MVBENCH_BOUNDED or task not in MVBENCH_VIDEO_FOLDERS
        for key in ("start", "end") if bounded else ():
            if key in obj:
                row[key] = optional_number(obj, key, path, item)
        _check_span(row, path, item)
        out.append(row)
    return out


def _check_span(row: dict[str, Any], path: Path, item: JsonItem) -> None:
    start, end = row.get("start"), row.get("end")
    if start is None or end is None:
        return
    if not (math.isfinite(start) and math.isfinite(end) and 0 <= start <= end):
        raise fail(path, item, f"{start!r} to {end!r} is not a span of seconds "
                   "(0 <= start <= end)", "end")  # fmt: skip


def load_mvbench(
    annotations: str | Path, name: str, video_folders: Mapping[str, str] | None = None
) -> list[dict[str, Any]]:
    """Read MVBench task files (see the module docstring).

    Args:
        annotations: One task file, or a folder of them (MVBench's ``json/``); the task is the
            file's stem.
        name: The benchmark's name, copied into every item.
        video_folders: Task → its videos' folder under the videos root; ``None`` uses
            :data:`MVBENCH_VIDEO_FOLDERS`, ``{}`` none.

    Returns:
        Items ``{"id": "<task>/<position>", "benchmark", "task", "video", "question",
        "answer", "options", "answer_index"}`` (plus ``start``/``end`` where given), task by
        task in file-name order.

    Raises:
        ConfigError: ``annotations`` does not exist.
        RecordFormatError: Malformed input, naming the file, line and field.
    """
    folders = MVBENCH_VIDEO_FOLDERS if video_folders is None else video_folders
    rows: list[dict[str, Any]] = []
    for path in task_files(annotations):
        folder = folders.get(path.stem)
        if folder is None and folders:
            logger.info("%s: task %r has no video folder; ids come from its 'video' alone",
                        name, path.stem)  # fmt: skip
        rows += _load_task(path, name, folder)
    # Ids are unique by construction: one file per task stem, positions within it.
    return rows
