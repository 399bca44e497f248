"""Dataset adapters: each turns one annotation format into validated chat records.

An adapter is one module here that registers ``load_<name>(input_path, cfg) -> list[dict]``
(``cfg`` a :class:`videollm.data.convert.ConvertConfig`) under its format's name::

    from videollm.data.adapters import ADAPTERS

    @ADAPTERS.register("my_format", summary="what it reads, for --help and the README")
    def load_my_format(input_path, cfg): ...

``ConvertConfig.format``, ``videollm convert --format`` and the pipelines' ``annotation_format``
accept the registered names. An adapter that reads one file calls :func:`require_file` first.
"""

from __future__ import annotations

from videollm.data.adapters._registry import ADAPTERS, Adapter, require_file

# Imported here, not only found by the registry, so that the functions stay importable from the
# package and the default format comes first in the choices.
from videollm.data.adapters.videochatgpt import load_videochatgpt  # isort: skip
from videollm.data.adapters.videoinstruct import load_videoinstruct  # isort: skip
from videollm.data.adapters.breakfast import load_breakfast  # isort: skip
from videollm.data.adapters.generic_jsonl import load_generic_jsonl  # isort: skip

__all__ = [
    "ADAPTERS",
    "Adapter",
    "load_breakfast",
    "load_generic_jsonl",
    "load_videochatgpt",
    "load_videoinstruct",
    "require_file",
]
