"""The one config system: dataclasses, loaded from YAML, with ``key=value`` overrides.

Every entry point takes a dataclass whose fields *are* its settings. The same dataclass is
filled from a recipe YAML (``--config recipe.yaml``) and then from command-line overrides such as
``optim.lr=2e-4`` or ``model.train_mode=lora``. Values in overrides are parsed as YAML scalars,
so ``3``, ``2e-4``, ``true`` and ``[q_proj,v_proj]`` all mean what they look like.
"""

from __future__ import annotations

import dataclasses
import math
import types
import typing
from pathlib import Path
from typing import Any, TypeVar

import yaml

from videollm.errors import ConfigError

T = TypeVar("T")


def _field_types(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def _coerce(value: Any, hint: Any, key: str) -> Any:
    """Convert a YAML value to the annotated type, or raise ConfigError naming ``key``."""
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        errors = []
        for arg in args:
            if arg is type(None):
                continue
            try:
                return _coerce(value, arg, key)
            except ConfigError as err:
                errors.append(str(err))
        raise ConfigError(errors[0] if errors else f"{key}: invalid value {value!r}")
    if dataclasses.is_dataclass(hint):
        if not isinstance(value, dict):
            raise ConfigError(f"{key}: expected a mapping, got {value!r}")
        return from_dict(hint, value, prefix=f"{key}.")
    if origin is typing.Literal:
        if value not in args:
            raise ConfigError(f"{key}: must be one of {list(args)}, got {value!r}")
        return value
    if origin in (list, tuple):
        if not isinstance(value, list | tuple):
            raise ConfigError(f"{key}: expected a list, got {value!r}")
        inner = args[0] if args else Any
        items = [_coerce(v, inner, f"{key}[{i}]") for i, v in enumerate(value)]
        return tuple(items) if origin is tuple else items
    if origin is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"{key}: expected a mapping, got {value!r}")
        return dict(value)
    if hint is Any:
        return value
    if hint is float and isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    if hint is float and isinstance(value, str):
        try:
            return float(value)  # YAML reads "2e-4" as a string; accept it as a float.
        except ValueError:
            pass
    if hint is int and isinstance(value, bool):
        raise ConfigError(f"{key}: expected an integer, got {value!r}")
    if isinstance(hint, type) and not isinstance(value, hint):
        raise ConfigError(f"{key}: expected {hint.__name__}, got {value!r}")
    return value


def check_int(value: object, low: int, key: str) -> None:
    """Raise :class:`ConfigError` naming ``key`` unless ``value`` is an integer ``>= low``.

    Args:
        value: The setting's value.
        key: Its name, for the message.
        low: Smallest allowed value.
    """
    if isinstance(value, bool) or not isinstance(value, int):
        raise ConfigError(f"{key}: expected an integer, got {value!r}")
    if value < low:
        raise ConfigError(f"{key}: must be >= {low}, got {value}")


def check_number(
    value: object,
    key: str,
    low: float | None = None,
    high: float | None = None,
    above: float | None = None,
) -> None:
    """Raise :class:`ConfigError` naming ``key`` unless ``value`` is a finite number in range.

    Args:
        value: The setting's value.
        key: Its dotted name, for the message.
        low: Smallest allowed value (inclusive), if any.
        high: Largest allowed value (inclusive), if any.
        above: A value it must be strictly greater than, if any.
    """
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ConfigError(f"{key}: expected a finite number, got {value!r}")
    if low is not None and value < low:
        raise ConfigError(f"{key}: must be >= {low}, got {value!r}")
    if high is not None and value > high:
        raise ConfigError(f"{key}: must be <= {high}, got {value!r}")
    if above is not None and value <= above:
        raise ConfigError(f"{key}: must be > {above}, got {value!r}")


def from_dict(cls: type[T], data: dict[str, Any], prefix: str = "") -> T:
    """Build dataclass ``cls`` from a (possibly nested) mapping, rejecting unknown keys."""
    hints = _field_types(cls)
    names = {f.name for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    unknown = sorted(set(data) - names)
    if unknown:
        raise ConfigError(
            f"unknown config key {prefix}{unknown[0]!s}; valid keys: "
            + ", ".join(prefix + n for n in sorted(names))
        )
    kwargs = {k: _coerce(v, hints[k], prefix + k) for k, v in data.items()}
    try:
        return cls(**kwargs)
    except ConfigError as err:
        # A nested dataclass checks its own fields by their bare names; name them in full.
        if prefix and not str(err).startswith(prefix):
            raise ConfigError(prefix + str(err)) from err
        raise


def to_dict(cfg: Any) -> dict[str, Any]:
    """Plain nested dict of a config dataclass (for YAML, JSON and MLflow params)."""
    return dataclasses.asdict(cfg)


def parse_overrides(overrides: list[str]) -> dict[str, Any]:
    """Turn ``["a.b=1", "c=x"]`` into ``{"a": {"b": 1}, "c": "x"}``."""
    tree: dict[str, Any] = {}
    for item in overrides:
        key, sep, raw = item.partition("=")
        if not sep or not key:
            raise ConfigError(f"override {item!r} is not of the form key=value")
        value = yaml.safe_load(raw) if raw != "" else ""
        node = tree
        parts = key.strip().split(".")
        for part in parts[:-1]:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise ConfigError(f"override {item!r} conflicts with another override")
        node[parts[-1]] = value
    return tree


def _merge(base: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _merge(out[key], value)
        else:
            out[key] = value
    return out


def load_config(
    cls: type[T],
    path: str | Path | None = None,
    overrides: list[str] | None = None,
    flags: dict[str, Any] | None = None,
) -> T:
    """Load ``cls`` from defaults ← YAML file ← ``flags`` ← ``key=value`` overrides.

    Args:
        cls: The config dataclass.
        path: Optional recipe YAML file.
        overrides: ``key=value`` strings; dotted keys reach nested dataclasses.
        flags: Optional nested mapping of values given as CLI flags; they beat the YAML file.

    Returns:
        The filled dataclass.

    Raises:
        ConfigError: On an unreadable file, unknown key or wrongly typed value.
    """
    data: dict[str, Any] = {}
    if path is not None:
        try:
            loaded = yaml.safe_load(Path(path).read_text()) or {}
        except (OSError, yaml.YAMLError) as err:
            raise ConfigError(f"cannot read config {path}: {err}") from err
        if not isinstance(loaded, dict):
            raise ConfigError(f"config {path} must be a mapping at the top level")
        data = _merge(data, loaded)
    data = _merge(data, flags or {})
    data = _merge(data, parse_overrides(overrides or []))
    return from_dict(cls, data)
