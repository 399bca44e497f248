"""The decoders the decoding tests run against, each as a pytest parameter.

torchcodec loads the system's FFmpeg libraries; where none loads (a laptop without them) its
cases are skipped with the reason. Under CI (``CI=true``, where ``make install`` installs the
libraries) they run regardless, so a broken install fails instead of skipping quietly.
"""

from __future__ import annotations

import os

import pytest

from videollm.video.decode import decoder_problem


def decoder_params(*names: str) -> list[object]:
    """``pytest.param`` per decoder name, skipped where that decoder cannot load (not in CI)."""
    params = []
    for name in names:
        problem = decoder_problem(name)
        skip = problem is not None and os.environ.get("CI") != "true"
        reason = f"{name} does not load here: {problem}"
        params.append(pytest.param(name, marks=pytest.mark.skipif(skip, reason=reason)))
    return params


#: Every decoder ``read_video`` knows.
EVERY_DECODER = decoder_params("torchcodec", "decord", "pyav")
