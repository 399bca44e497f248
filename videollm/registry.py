"""Registries: one place where each kind of extension (a pooling, a projector, a launcher …)
is named, and where the CLI's choices, config validation and pipeline parameters come from.

A built-in extension is one module in the registry's package that registers itself::

    # videollm/features/poolings/my_pooling.py
    from videollm.features.pooling import POOLINGS, Pooling

    @POOLINGS.register("my_pooling", summary="what it does, for --help and the README")
    class MyPooling(Pooling): ...

The registry imports every module of its package the first time it is asked for a name, so
nothing else needs editing. Code outside videollm (a plugin, a test) registers the same way;
for it to be found in another process (a pipeline task, ``torchrun`` ranks), name its module
in ``VIDEOLLM_PLUGINS`` (comma-separated) or expose it as a ``videollm.plugins`` entry point.
"""

from __future__ import annotations

import dataclasses
import importlib
import logging
import os
import pkgutil
from collections.abc import Callable, Iterator, Mapping
from importlib.metadata import entry_points
from typing import Any, Generic, TypeVar

from videollm.config_loader import from_dict
from videollm.errors import ConfigError

logger = logging.getLogger(__name__)

T = TypeVar("T")

#: Environment variable listing extra modules to import before any lookup.
PLUGINS_ENV = "VIDEOLLM_PLUGINS"
#: Entry-point group of installed plugin modules.
PLUGIN_GROUP = "videollm.plugins"

_plugins_loaded = False


def load_plugins() -> None:
    """Import the modules named in ``VIDEOLLM_PLUGINS`` and the ``videollm.plugins`` entry
    points (once per process), so their extensions are registered.

    Raises:
        ConfigError: A named module cannot be imported.
    """
    global _plugins_loaded
    if _plugins_loaded:
        return
    _plugins_loaded = True
    names = [n.strip() for n in os.environ.get(PLUGINS_ENV, "").split(",") if n.strip()]
    for name in names:
        try:
            importlib.import_module(name)
        except ImportError as err:
            _plugins_loaded = False
            message = f"{PLUGINS_ENV}: cannot import plugin module {name!r}: {err}"
            raise ConfigError(message) from err
    for ep in entry_points(group=PLUGIN_GROUP):
        ep.load()
    logger.debug("plugins loaded: %s", names)


class Registry(Generic[T]):
    """Named extensions of one kind.

    Args:
        kind: What is registered, for messages (``pooling``).
        setting: The setting that picks one, named in errors (``extract.pooling``).
        package: The package whose modules hold the built-ins; all are imported on first use.
    """

    def __init__(self, kind: str, setting: str, package: str | None = None) -> None:
        self.kind = kind
        self.setting = setting
        self.package = package
        self._items: dict[str, T] = {}
        self._summaries: dict[str, str] = {}
        self._discovered = False

    def register(self, name: str, summary: str = "") -> Callable[[T], T]:
        """Decorator that registers its target under ``name``.

        Raises:
            ValueError: ``name`` is already taken by another object.
        """

        def add(item: T) -> T:
            known = self._items.get(name)
            same = known is not None and _qualname(known) == _qualname(item)
            if known is not None and not same:
                raise ValueError(f"{self.kind} {name!r} is already registered ({_qualname(known)})")
            self._items[name] = item
            self._summaries[name] = summary or _first_line(item)
            return item

        return add

    def _discover(self) -> None:
        if self._discovered:
            return
        self._discovered = True
        if self.package:
            package = importlib.import_module(self.package)
            for module in pkgutil.iter_modules(package.__path__):
                if not module.name.startswith("_"):
                    importlib.import_module(f"{self.package}.{module.name}")
        load_plugins()

    def get(self, name: str) -> T:
        """The extension called ``name``.

        Raises:
            ConfigError: No such name; the message lists the known ones.
        """
        self._discover()
        if name not in self._items:
            raise ConfigError(
                f"{self.setting}: unknown {self.kind} {name!r}; choose from {', '.join(self)}"
            )
        return self._items[name]

    def names(self) -> list[str]:
        """Every registered name, in the order they were registered."""
        self._discover()
        return list(self._items)

    def summaries(self) -> dict[str, str]:
        """One line per name, for ``--help`` and the README's tables."""
        self._discover()
        return dict(self._summaries)

    def options(self, name: str, options: Mapping[str, Any], setting: str) -> Any:
        """Validate ``options`` for extension ``name`` against its ``Options`` dataclass.

        Args:
            name: The registered extension (a class with an ``Options`` dataclass attribute).
            options: The user's settings for it.
            setting: Where the options are set, named in errors (``extract.pooling_options``).

        Returns:
            An instance of the extension's ``Options``, defaults filled in.

        Raises:
            ConfigError: ``name`` is not registered, or an option is unknown or invalid; the
                message names ``<setting>.<key>`` and the extension.
        """
        cls = self.get(name)
        if options and not dataclasses.fields(cls.Options):
            key = sorted(options)[0]
            raise ConfigError(f"{setting}.{key}: {self.kind} {name} takes no options")
        try:
            return from_dict(cls.Options, dict(options), prefix=f"{setting}.")
        except ConfigError as err:
            message = str(err)
            # Keep the setting first, so an enclosing config does not prefix it again.
            if not message.startswith(f"{setting}."):
                message = f"{setting}: {message}"
            raise ConfigError(f"{message} ({self.kind} {name})") from err

    def choices(self) -> Choices:
        """The names as argparse ``choices``, looked up only when a value is checked or
        ``--help`` is shown, so building a CLI imports no extension (poolings import torch)."""
        return Choices(self)

    def __contains__(self, name: object) -> bool:
        self._discover()
        return name in self._items

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())


class Choices:
    """A registry's names, discovered on first use (see :meth:`Registry.choices`)."""

    def __init__(self, registry: Registry) -> None:
        self.registry = registry

    def __contains__(self, name: object) -> bool:
        return name in self.registry

    def __iter__(self) -> Iterator[str]:
        return iter(self.registry)


def _qualname(item: object) -> str:
    return f"{getattr(item, '__module__', '?')}.{getattr(item, '__qualname__', repr(item))}"


def _first_line(item: object) -> str:
    doc = (getattr(item, "__doc__", None) or "").strip()
    return doc.splitlines()[0] if doc else ""
