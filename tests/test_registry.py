"""The registry: built-ins found in their package, plugins from the environment, clear errors."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from videollm import registry
from videollm.errors import ConfigError
from videollm.registry import Registry


def _package(root: Path, name: str, modules: dict[str, str]) -> str:
    """Write a package ``name`` under ``root`` whose modules register into ``tests_registry``."""
    pkg = root / name
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    for module, body in modules.items():
        (pkg / f"{module}.py").write_text(body)
    return name


@pytest.fixture
def importable(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setattr(registry, "_plugins_loaded", False)
    yield tmp_path
    for name in [m for m in sys.modules if m.startswith(("regpkg", "regplugin"))]:
        del sys.modules[name]


REGISTER = """
from videollm.registry import Registry
import tests_registry_target as target

@target.REG.register("{name}", summary="{summary}")
def {name}():
    return "{name}"
"""


@pytest.fixture
def target(monkeypatch: pytest.MonkeyPatch) -> Registry:
    """A registry the written modules register into (as ``tests_registry_target.REG``)."""
    module = type(sys)("tests_registry_target")
    module.REG = None
    monkeypatch.setitem(sys.modules, "tests_registry_target", module)
    return module


def test_built_ins_are_discovered_from_their_package(importable: Path, target) -> None:
    """Every public module of the package is imported; ``_private`` ones are not."""
    _package(
        importable,
        "regpkg",
        {
            "alpha": REGISTER.format(name="alpha", summary="first"),
            "beta": REGISTER.format(name="beta", summary="second"),
            "_private": "raise RuntimeError('private modules are not imported')",
        },
    )
    target.REG = Registry("widget", "model.widget", package="regpkg")
    assert sorted(target.REG.names()) == ["alpha", "beta"]
    assert target.REG.get("beta")() == "beta"
    assert target.REG.summaries()["alpha"] == "first"
    assert "alpha" in target.REG and "gamma" not in target.REG


def test_an_unknown_name_names_the_setting_and_the_choices(importable: Path, target) -> None:
    _package(importable, "regpkg", {"alpha": REGISTER.format(name="alpha", summary="a")})
    target.REG = Registry("widget", "model.widget", package="regpkg")
    with pytest.raises(
        ConfigError, match=r"model\.widget: unknown widget 'gamma'; choose from alpha"
    ):
        target.REG.get("gamma")


def test_plugins_named_in_the_environment_register_too(
    importable: Path, target, monkeypatch: pytest.MonkeyPatch
) -> None:
    _package(importable, "regpkg", {"alpha": REGISTER.format(name="alpha", summary="a")})
    (importable / "regplugin.py").write_text(REGISTER.format(name="gamma", summary="from a plugin"))
    monkeypatch.setenv(registry.PLUGINS_ENV, " regplugin , ")
    target.REG = Registry("widget", "model.widget", package="regpkg")
    assert target.REG.get("gamma")() == "gamma"
    assert target.REG.summaries()["gamma"] == "from a plugin"


def test_a_missing_plugin_module_is_a_config_error(
    importable: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(registry.PLUGINS_ENV, "no_such_plugin_module")
    reg: Registry[object] = Registry("widget", "model.widget")
    with pytest.raises(ConfigError, match="VIDEOLLM_PLUGINS: cannot import plugin module"):
        reg.names()


def test_a_name_cannot_be_taken_twice() -> None:
    reg: Registry[object] = Registry("widget", "model.widget")

    @reg.register("one")
    def first() -> None: ...

    with pytest.raises(ValueError, match="widget 'one' is already registered"):

        @reg.register("one")
        def second() -> None: ...

    # Registering the same object again (a module imported twice) is harmless.
    assert reg.register("one")(first) is first
    assert reg.summaries()["one"] == ""
