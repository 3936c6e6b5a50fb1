"""A tiny name -> object registry. Methods, backends and scenarios use it.

An unknown name raises :class:`~carla_agent.errors.UnknownNameError` listing the
known names, so a typo on the command line is fixed in one try.
"""

from __future__ import annotations

from typing import Callable, Dict, Generic, Iterator, List, TypeVar

from carla_agent.errors import UnknownNameError

T = TypeVar("T")


class Registry(Generic[T]):
    """Maps names to objects (classes, factories, specs).

    Args:
        kind: what is registered, used in error messages ("backend", "method").
    """

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._items: Dict[str, T] = {}

    def register(self, name: str, item: T | None = None):
        """Register ``item`` under ``name``; usable as a decorator when item is None."""
        if item is not None:
            self._add(name, item)
            return item

        def deco(obj: T) -> T:
            self._add(name, obj)
            return obj

        return deco

    def _add(self, name: str, item: T) -> None:
        if name in self._items and self._items[name] is not item:
            raise ValueError(f"{self.kind} {name!r} is registered twice")
        self._items[name] = item

    def get(self, name: str) -> T:
        try:
            return self._items[name]
        except KeyError:
            known = ", ".join(sorted(self._items)) or "(none)"
            raise UnknownNameError(
                f"unknown {self.kind} {name!r}; known {self.kind}s: {known}"
            ) from None

    def names(self) -> List[str]:
        return sorted(self._items)

    def items(self):
        return sorted(self._items.items())

    def __contains__(self, name: object) -> bool:
        return name in self._items

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())

    def __len__(self) -> int:
        return len(self._items)


def lazy(module: str, attr: str) -> Callable[..., object]:
    """A factory that imports ``module.attr`` only when called.

    Lets a registry list e.g. the CARLA backend without importing ``carla``.
    """

    def factory(*args, **kwargs):
        import importlib

        return getattr(importlib.import_module(module), attr)(*args, **kwargs)

    factory.__name__ = f"lazy_{attr}"
    factory.__qualname__ = f"{module}.{attr}"
    return factory
