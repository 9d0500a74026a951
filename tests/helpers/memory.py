"""How many bytes an object graph holds, for the tests that bound a structure's memory."""

from __future__ import annotations

import gc
import sys
from collections.abc import Set


def deep_size(
    root: object, skip_ids: Set[int] = frozenset(), skip_types: tuple[type, ...] = (type,)
) -> int:
    """`sys.getsizeof` summed over everything `root` reaches (slots included), each object
    once; objects in `skip_ids` or of `skip_types` (shared, not the structure's) are not
    counted nor followed."""
    seen, todo, total = set(skip_ids), [root], 0
    while todo:
        obj = todo.pop()
        if id(obj) in seen or isinstance(obj, skip_types):
            continue
        seen.add(id(obj))
        total += sys.getsizeof(obj)
        todo.extend(gc.get_referents(obj))
        slots: tuple[str, ...] = getattr(type(obj), "__slots__", ())
        todo.extend(getattr(obj, s) for s in slots if hasattr(obj, s))
    return total
