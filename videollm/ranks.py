"""Which process of a distributed (``torchrun``) job this is."""

from __future__ import annotations

import os


def is_main_process() -> bool:
    """Whether this is global rank 0 (or not distributed): the one process that does bookkeeping.

    Read from ``RANK``, which ``torchrun`` sets before the process starts, so it can be asked
    before (or without) ``torch.distributed`` being initialised.
    """
    return os.environ.get("RANK", "0") == "0"
