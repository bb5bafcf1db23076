"""Name -> builder registries, one per extension point (methods, back-ends, losses, ...).

Each entry pairs a builder with an optional typed config dataclass, so a YAML section such as
``method: {name: unipet, prompt_length: 30}`` is validated against the entry's own fields.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

T = TypeVar("T")


class RegistryError(KeyError):
    """An unknown name was asked of a registry; the message lists the valid names."""

    def __str__(self) -> str:  # KeyError quotes its message; show it plainly
        return str(self.args[0])


@dataclass(frozen=True)
class Entry(Generic[T]):
    name: str
    builder: Callable[..., T]
    config_cls: type | None
    doc: str


class Registry(Generic[T]):
    """A named table of builders.

    >>> METHODS = Registry("method")
    >>> @METHODS.register("frozen", config_cls=FrozenConfig)
    ... def build_frozen(cfg, backbone): ...
    """

    def __init__(self, kind: str, plural: str = "") -> None:
        self.kind = kind
        self.plural = plural or f"{kind}s"  # for messages: "valid corpora", "valid backbone families"
        self._entries: dict[str, Entry[T]] = {}

    def register(
        self, name: str, config_cls: type | None = None
    ) -> Callable[[Callable[..., T]], Callable[..., T]]:
        def deco(builder: Callable[..., T]) -> Callable[..., T]:
            if name in self._entries:
                raise ValueError(f"{self.kind} {name!r} is registered twice")
            doc = (builder.__doc__ or "").strip().split("\n")[0]
            self._entries[name] = Entry(name, builder, config_cls, doc)
            return builder

        return deco

    def entry(self, name: str) -> Entry[T]:
        if name not in self._entries:
            raise RegistryError(
                f"unknown {self.kind} {name!r}; valid {self.plural}: {', '.join(self.names())}"
            )
        return self._entries[name]

    def get(self, name: str) -> Callable[..., T]:
        return self.entry(name).builder

    def config_cls(self, name: str) -> type | None:
        return self.entry(name).config_cls

    def names(self) -> list[str]:
        return sorted(self._entries)

    def __contains__(self, name: object) -> bool:
        return name in self._entries

    def build(self, name: str, *args: Any, **kwargs: Any) -> T:
        return self.get(name)(*args, **kwargs)
