"""The registry of dataset adapters (``ConvertConfig.format``, ``videollm convert --format``).

Kept out of the package's ``__init__`` so that adapter modules can import it while the package
is still being imported.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from videollm.errors import ConfigError
from videollm.registry import Registry

if TYPE_CHECKING:
    from videollm.data.convert import ConvertConfig

#: ``load(input_path, cfg) -> records``: one annotation format read into validated chat records.
Adapter = Callable[[str | Path, "ConvertConfig"], list[dict[str, Any]]]

#: Every dataset format; each module of :mod:`videollm.data.adapters` registers one.
ADAPTERS: Registry[Adapter] = Registry("dataset format", "format", package="videollm.data.adapters")


def require_file(input_path: str | Path, fmt: str) -> Path:
    """``input_path`` as a path, refusing a folder: the format ``fmt`` reads one file.

    Raises:
        ConfigError: ``input_path`` is a folder.
    """
    path = Path(input_path)
    if path.is_dir():
        raise ConfigError(f"input: {path} is a folder; format {fmt!r} reads one annotation file")
    return path
