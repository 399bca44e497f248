"""Container image names and the tag: the one place components, pipelines, the chart and
``make images`` read them from.

``python -m videollm.images`` prints ``NAME=REFERENCE`` lines for the Makefile. A test checks
that the Helm chart's default values and the committed pipelines agree with these.

``VIDEOLLM_IMAGE_REGISTRY`` (read at import) replaces the registry, so pipelines compiled or
submitted with it set (``videollm pipeline compile|submit --registry``) run the images that
``make push REGISTRY=...`` pushed.
"""

from __future__ import annotations

import os

from videollm import __version__

DEFAULT_REGISTRY = "ghcr.io/videollm"
REGISTRY = os.environ.get("VIDEOLLM_IMAGE_REGISTRY") or DEFAULT_REGISTRY
TAG = __version__  # images are tagged with the package version they hold

#: Image name (without registry) for each image folder under ``images/``. ``base-cpu`` is the
#: base without CUDA that ``make images-cpu`` builds the pipeline and serve images on.
NAMES = {
    "base": "videollm-base",
    "base-cpu": "videollm-base-cpu",
    "pipeline": "videollm-pipeline",
    "serve": "videollm-serve",
}
#: Tag of the pipeline and serve images built on ``base-cpu``.
CPU_TAG = f"{TAG}-cpu"


def image(kind: str, registry: str = REGISTRY, tag: str = TAG) -> str:
    """The full reference of one of our images, e.g. ``image("pipeline")``."""
    if kind not in NAMES:
        raise KeyError(f"unknown image {kind!r}; known: {', '.join(NAMES)}")
    return f"{registry}/{NAMES[kind]}:{tag}"


PIPELINE_IMAGE = image("pipeline")
SERVE_IMAGE = image("serve")

if __name__ == "__main__":
    import sys

    registry = sys.argv[1] if len(sys.argv) > 1 else REGISTRY
    for kind in NAMES:
        sys.stdout.write(f"{kind}={image(kind, registry)}\n")
    for kind in ("pipeline", "serve"):
        sys.stdout.write(f"{kind}-cpu={image(kind, registry, CPU_TAG)}\n")
