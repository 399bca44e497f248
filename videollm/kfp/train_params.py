"""The train component's and the finetune pipeline's train parameters, derived from
:class:`~videollm.kfp.train_task.TrainTaskArgs`, and a check that the two files agree with it.

KFP embeds a lightweight component's *source* in its container command, so ``components/train.py``
must spell its parameters out; a pipeline's signature is read by KFP too. Neither can be
generated at import time, so this module renders what they must say (``python -m
videollm.kfp.train_params`` prints the component's signature and ``Args:`` lines) and
:func:`drift` lists every difference: a field missing or extra, another annotation, default
or description. ``tests/pipelines/test_train_params.py`` fails on any.
"""

from __future__ import annotations

import inspect
import re
import sys
import textwrap
import typing
from collections.abc import Callable
from dataclasses import MISSING, dataclass, fields
from typing import Any

from videollm.cluster import (
    HF_CACHE_PVC,
    HF_TOKEN_SECRET,
    PIPELINE_IMAGE,
    PLATFORM_CONFIG,
    PLATFORM_SECRET,
    TRAIN_SERVICE_ACCOUNT,
)
from videollm.kfp.sizing import TRAIN_CPU, TRAIN_MEMORY
from videollm.kfp.train_task import COMPONENT_DERIVED, TrainTaskArgs, component_name

#: The train component's parameters that are not fields: its inputs from other tasks, the
#: pipeline-wide settings it needs itself, and its outputs.
COMPONENT_OWN: frozenset[str] = frozenset(
    {"features_uris", "work_uri", "run_id", "experiment"}
    | {"checkpoint", "metrics", "job", "train_log"}
)
#: Pipeline parameters named other than their field: the pipeline has other tasks, so settings
#: of the training pods say ``train_``; the names are the pipeline's interface and stay.
PIPELINE_NAMES: dict[str, str] = {
    "overrides": "train_overrides",
    "service_account": "train_service_account",
    "node_selector": "train_node_selector",
    "tolerations": "train_tolerations",
    "cpu": "train_cpu",
    "memory": "train_memory",
    "timeout_hours": "train_timeout_hours",
    "ttl_hours": "train_ttl_hours",
    "delete_on_success": "delete_job_on_success",
}
#: Fields the pipeline does not take, beyond :data:`COMPONENT_DERIVED`: they come from tasks.
PIPELINE_DERIVED: dict[str, str] = {"records_uri": "the convert task's output"}
#: The pipeline's defaults that differ from the fields': the fields default to a run on this
#: machine, the pipeline to the ``videochatgpt_7b`` recipe on the cluster.
PIPELINE_DEFAULTS: dict[str, Any] = {
    "llm": "lmsys/vicuna-7b-v1.5",
    "recipe": "videochatgpt_7b",
    "gpus_per_worker": 8,
    "image": PIPELINE_IMAGE,
    "service_account": TRAIN_SERVICE_ACCOUNT,
    "platform_secret": PLATFORM_SECRET,
    "platform_config": PLATFORM_CONFIG,
    "cpu": TRAIN_CPU,
    "memory": TRAIN_MEMORY,
    "hf_cache_pvc": HF_CACHE_PVC,
    "hf_token_secret": HF_TOKEN_SECRET,
}
#: Pipeline parameters that other tasks use too, so the pipeline documents them for all.
PIPELINE_WIDE: frozenset[str] = frozenset(
    {"platform_secret", "platform_config", "hf_cache_pvc", "hf_token_secret", "istio_sidecar"}
    | {"kueue_queue"}
)


@dataclass(frozen=True)
class Param:
    """One parameter as a signature and docstring must show it.

    Attributes:
        name: Its name in the component or pipeline.
        field: The :class:`TrainTaskArgs` field it sets.
        annotation: The type KFP reads (``list`` and ``dict`` bare, as KFP wants them).
        default: Its default (pipelines only); ``inspect.Parameter.empty`` when required.
        doc: Its description; ``None`` where the pipeline documents it for all its tasks.
    """

    name: str
    field: str
    annotation: type
    default: Any = inspect.Parameter.empty
    doc: str | None = None


def section_docs(doc: str | None, section: str) -> dict[str, str]:
    """The entries of a Google-style docstring section (``Args``, ``Attributes``) by name,
    each description on one line."""
    lines = inspect.cleandoc(doc or "").splitlines()
    if f"{section}:" not in lines:
        return {}
    out: dict[str, str] = {}
    name = ""
    for line in lines[lines.index(f"{section}:") + 1 :]:
        if line and not line.startswith(" "):
            break  # the next section
        entry = re.match(r"^ {4}(\w+)(?: \([^)]*\))?: ?(.*)$", line)
        if entry:
            name = entry[1]
            out[name] = entry[2].strip()
        elif name and line.strip():
            out[name] += " " + line.strip()
    return out


def _kfp_type(hint: Any) -> type:
    origin = typing.get_origin(hint)
    return origin if origin in (list, dict) else hint


def _field_params(names: Callable[[str], str], skip: set[str]) -> list[Param]:
    docs = section_docs(TrainTaskArgs.__doc__, "Attributes")
    hints = typing.get_type_hints(TrainTaskArgs)
    out = []
    for f in fields(TrainTaskArgs):
        if f.name in skip:
            continue
        default = f.default_factory() if f.default_factory is not MISSING else f.default
        default = inspect.Parameter.empty if default is MISSING else default
        out.append(
            Param(names(f.name), f.name, _kfp_type(hints[f.name]), default, docs.get(f.name))
        )
    return out


def component_params() -> list[Param]:
    """The train component's parameters that set :class:`TrainTaskArgs` fields, in order."""
    return [
        Param(p.name, p.field, p.annotation, doc=p.doc)
        for p in _field_params(component_name, set(COMPONENT_DERIVED))
    ]


def pipeline_params() -> list[Param]:
    """The finetune pipeline's train parameters, with their defaults."""
    skip = set(COMPONENT_DERIVED) | set(PIPELINE_DERIVED)
    out = []
    for p in _field_params(lambda name: PIPELINE_NAMES.get(name, name), skip):
        default = PIPELINE_DEFAULTS.get(p.field, p.default)
        doc = None if p.name in PIPELINE_WIDE else p.doc
        out.append(Param(p.name, p.field, p.annotation, default, doc))
    return out


def render_component() -> str:
    """The component's field parameters as signature lines and as ``Args:`` lines."""
    signature = [f"    {p.name}: {p.annotation.__name__}," for p in component_params()]
    args = [
        textwrap.fill(
            f"{p.name}: {p.doc}", width=100, initial_indent=" " * 8, subsequent_indent=" " * 12
        )
        for p in component_params()
    ]
    return "\n".join([*signature, "", *args])


def drift(component: Callable[..., Any], pipeline: Callable[..., Any]) -> list[str]:
    """Every way ``component`` (``train``'s Python function) and ``pipeline`` (``finetune``'s)
    differ from :class:`TrainTaskArgs`; empty when they agree."""
    problems = _compare("component", component, component_params(), defaults=False)
    known = COMPONENT_OWN | {p.name for p in component_params()}
    problems += [
        f"component: parameter {name} is neither a field nor one of its own"
        for name in inspect.signature(component).parameters
        if name not in known
    ]
    return problems + _compare("pipeline", pipeline, pipeline_params(), defaults=True)


def _compare(
    where: str, func: Callable[..., Any], expected: list[Param], defaults: bool
) -> list[str]:
    signature = inspect.signature(func).parameters
    docs = section_docs(func.__doc__, "Args")
    problems = []
    for p in expected:
        if p.name not in signature:
            problems.append(f"{where}: no parameter {p.name} (field {p.field})")
            continue
        have = signature[p.name]
        if have.annotation is not p.annotation:
            problems.append(f"{where}: {p.name} is {have.annotation}, field says {p.annotation}")
        if defaults and have.default != p.default:
            problems.append(f"{where}: {p.name} defaults to {have.default!r}, not {p.default!r}")
        if p.doc is not None and docs.get(p.name) != p.doc:
            problems.append(
                f"{where}: {p.name} is documented as {docs.get(p.name)!r}, field says {p.doc!r}"
            )
    return problems


if __name__ == "__main__":  # a developer tool: the text to paste into components/train.py
    sys.stdout.write(render_component() + "\n")
