"""The train settings are declared once (``TrainTaskArgs``): the train component's parameters and
the finetune pipeline's train parameters must agree with it, in names, types, defaults and
descriptions, and the check must catch a change made in one place only."""

from __future__ import annotations

import dataclasses
import inspect
from pathlib import Path

import pytest
import yaml

from components import train
from pipelines.finetune import finetune
from videollm.kfp import train_params
from videollm.kfp.runner import spec_tasks
from videollm.kfp.train_params import (
    PIPELINE_DEFAULTS,
    PIPELINE_NAMES,
    component_params,
    drift,
    pipeline_params,
    render_component,
)
from videollm.kfp.train_task import COMPONENT_DERIVED, TrainTaskArgs, component_name

COMPILED = Path(__file__).parents[2] / "pipelines" / "finetune.yaml"


def _copy(func, doc=None, **changed):
    """A stand-in for ``func`` with its signature and docstring; ``changed`` replaces a
    parameter by another or by a list of them."""

    def stand_in(*args, **kwargs):
        raise AssertionError("only inspected")

    signature = inspect.signature(func)
    params = []
    for name, p in signature.parameters.items():
        new = changed.get(name, p)
        params += new if isinstance(new, list) else [new]
    stand_in.__signature__ = signature.replace(parameters=params)
    stand_in.__doc__ = func.__doc__ if doc is None else doc
    return stand_in


def test_the_component_and_the_pipeline_agree_with_train_task_args():
    problems = drift(train.python_func, finetune.pipeline_func)
    assert problems == [], "\n".join(
        [*problems, "", "components/train.py should read:", render_component()]
    )


def test_every_field_reaches_the_component_or_is_derived_with_a_reason():
    names = {f.name for f in dataclasses.fields(TrainTaskArgs)}
    covered = {p.field for p in component_params()} | set(COMPONENT_DERIVED)
    assert covered == names and all(COMPONENT_DERIVED.values())
    assert set(PIPELINE_NAMES) | set(PIPELINE_DEFAULTS) <= names


def test_the_pipeline_hands_each_train_parameter_to_its_component_parameter():
    spec = next(d for d in yaml.safe_load_all(COMPILED.read_text()) if d)
    inputs = spec_tasks(spec)["train"]["inputs"]["parameters"]
    declared = spec["root"]["inputDefinitions"]["parameters"]
    for p in pipeline_params():
        assert inputs[component_name(p.field)] == {"componentInputParameter": p.name}, p.name
        assert declared[p.name]["defaultValue"] == p.default, p.name
    assert "taskOutputParameter" in inputs["records_uri"]


def test_a_field_added_to_the_dataclass_only_is_caught(monkeypatch):
    @dataclasses.dataclass
    class Extended(TrainTaskArgs):
        priority: str = ""

    Extended.__doc__ = TrainTaskArgs.__doc__ + "    priority: PriorityClass of the pods.\n"
    monkeypatch.setattr(train_params, "TrainTaskArgs", Extended)
    problems = drift(train.python_func, finetune.pipeline_func)
    assert problems == [
        "component: no parameter priority (field priority)",
        "pipeline: no parameter priority (field priority)",
    ]
    assert "    priority: str," in render_component()


def test_a_description_changed_in_one_place_is_caught(monkeypatch):
    changed = TrainTaskArgs.__doc__.replace("Base LLM (HF id, path or s3:// mirror).", "Base LLM.")
    assert changed != TrainTaskArgs.__doc__
    monkeypatch.setattr(TrainTaskArgs, "__doc__", changed)
    problems = drift(train.python_func, finetune.pipeline_func)
    assert [p.split(" is documented")[0] for p in problems] == ["component: llm", "pipeline: llm"]
    monkeypatch.undo()

    doc = train.python_func.__doc__.replace("GPUs per training node (0: CPU).", "GPUs.")
    [problem] = drift(_copy(train.python_func, doc=doc), finetune.pipeline_func)
    assert problem.startswith("component: gpus_per_worker is documented as 'GPUs.'")


def test_a_changed_type_default_or_extra_parameter_is_caught():
    pipeline = finetune.pipeline_func
    gpus = inspect.signature(pipeline).parameters["gpus_per_worker"]
    assert drift(train.python_func, _copy(pipeline, gpus_per_worker=gpus.replace(default=4))) == [
        "pipeline: gpus_per_worker defaults to 4, not 8"
    ]
    component = train.python_func
    cpu = inspect.signature(component).parameters["cpu"]
    [wrong_type] = drift(_copy(component, cpu=cpu.replace(annotation=int)), pipeline)
    assert wrong_type.startswith("component: cpu is <class 'int'>, field says <class 'str'>")

    # A field removed from the dataclass but left in the component would be silently ignored.
    first = inspect.signature(component).parameters["features_uris"]
    extra = [first, first.replace(name="priority")]
    assert drift(_copy(component, features_uris=extra), pipeline) == [
        "component: parameter priority is neither a field nor one of its own"
    ]


def test_from_component_takes_the_components_parameters_by_their_names():
    params = {p.name: f"value of {p.name}" for p in component_params()}
    params |= {"work_uri": "ignored", "checkpoint": object()}
    args = TrainTaskArgs.from_component(params, features_uri="f", checkpoint_uri="c")
    assert args.overrides == "value of train_overrides" and args.llm == "value of llm"
    assert (args.features_uri, args.checkpoint_uri, args.job_name, args.namespace) == (
        "f",
        "c",
        "",
        "",
    )
    del params["hf_token_secret"]
    with pytest.raises(KeyError, match="hf_token_secret"):
        TrainTaskArgs.from_component(params, features_uri="f", checkpoint_uri="c")
