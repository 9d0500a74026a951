"""One shared, read-only empty mapping for rule state that is nearly always empty.

A worker keeps some twenty such mappings a site (doors seen open, beds emptied, devices
flagged...), by the thousand sites, most never written: an empty dict each is 64 bytes.
A field declared `Entries[K, V]` with `default_factory=no_entries` starts as `NO_ENTRIES`
and is given a mapping of its own on its first write (`writable(state, "field")`); a
snapshot's empty mapping restores to `NO_ENTRIES` again. It reads, compares and dumps as
`{}`, so snapshots are unchanged. Writing into it raises: a write site that does not go
through `writable` fails loudly rather than sharing its entries with every site.
"""

from __future__ import annotations

from typing import Annotated, Any, NoReturn, TypeVar

from pydantic import AfterValidator

K = TypeVar("K")
V = TypeVar("V")


class _NoEntries(dict[Any, Any]):
    __slots__ = ()

    def _refuse(self, *args: Any, **kwargs: Any) -> NoReturn:
        raise TypeError("NO_ENTRIES is shared and read-only: write through writable()")

    __setitem__ = _refuse
    setdefault = _refuse
    update = _refuse
    __ior__ = _refuse


NO_ENTRIES: dict[Any, Any] = _NoEntries()


def no_entries() -> dict[Any, Any]:
    """The default of an `Entries` field."""
    return NO_ENTRIES


def _shared_if_empty(value: dict[K, V]) -> dict[K, V]:
    return value if value else NO_ENTRIES


# A mapping in rule state that is `NO_ENTRIES` while empty from a snapshot or a default.
Entries = Annotated[dict[K, V], AfterValidator(_shared_if_empty)]


def writable(owner: object, name: str) -> dict[Any, Any]:
    """`owner.name`, given a mapping of its own first if it is still `NO_ENTRIES`."""
    mapping: dict[Any, Any] = getattr(owner, name)
    if mapping is NO_ENTRIES:
        mapping = {}
        setattr(owner, name, mapping)
    return mapping
