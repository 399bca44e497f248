"""VCGBench, Video-ChatGPT's video-based generative performance benchmark (500 ActivityNet videos).

Field layout per mbzuai-oryx/Video-ChatGPT ``video_chatgpt/eval/run_inference_benchmark_general.py``
and ``run_inference_benchmark_consistency.py`` (the same keys in PLLaVA's
``tasks/eval/vcgbench/__init__.py`` and yukw777/video-vlm-eval's
``video_vlm_eval/dataset/video_chatgpt.py``):

* ``generic_qa.json`` (scored for correctness, detail and context) and ``temporal_qa.json``:
  a JSON list of ``{"video_name", "Q", "A"}``;
* ``consistency_qa.json``: a JSON list of ``{"video_name", "Q1", "Q2", "A"}``, two phrasings of
  one question with one reference answer.

``video_name`` is the stem of the video file in the benchmark's ``Test_Videos`` folder
(``v_<youtube id>.mp4``/``.mkv``), so it is the video id as it stands. Items carry no id of
their own; ours is ``<video>_<position>``, stable as long as the file is.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from videollm.bench.formats._json import read_items, require_file, require_object, text_field
from videollm.data.records import video_ref_to_id

#: Format name → (question keys, the answer key). Two question keys make a consistency pair.
LAYOUTS: dict[str, tuple[tuple[str, ...], str]] = {
    "vcgbench_generic": (("Q",), "A"),
    "vcgbench_temporal": (("Q",), "A"),
    "vcgbench_consistency": (("Q1", "Q2"), "A"),
}


def load_vcgbench(task: str, annotations: str | Path, name: str) -> list[dict[str, Any]]:
    """Read one VCGBench file.

    Args:
        task: A key of :data:`LAYOUTS`.
        annotations: ``generic_qa.json``, ``temporal_qa.json`` or ``consistency_qa.json``.
        name: The benchmark's name, copied into every item.

    Returns:
        Items ``{"id", "benchmark", "task", "video", "question", "answer"}`` in file order;
        consistency items also have ``question2``.

    Raises:
        ConfigError: ``annotations`` is missing or a folder.
        RecordFormatError: Malformed input, naming the file, line and field.
    """
    path = require_file(annotations, "annotations")
    question_keys, answer_key = LAYOUTS[task]
    out = []
    for pos, item in enumerate(read_items(path)):
        obj = require_object(path, item)
        video = video_ref_to_id(text_field(obj, "video_name", path, item))
        questions = [text_field(obj, key, path, item) for key in question_keys]
        row: dict[str, Any] = {
            "id": f"{video}_{pos}",
            "benchmark": name,
            "task": task,
            "video": video,
            "question": questions[0],
            "answer": text_field(obj, answer_key, path, item),
        }
        if len(questions) > 1:
            row["question2"] = questions[1]
        out.append(row)
    return out
