"""Bounds on YAML text before it is built into objects: nesting depth and alias expansion.

PyYAML's safe loader shares the object an alias points at, so a "billion laughs"
file (anchors of nine aliases of anchors of nine aliases...) loads in
microseconds; the bomb goes off later, in whatever walks the data (validation,
`model_dump`, JSON for the store). Deep nesting, on the other hand, blows
PyYAML's recursive composer's stack after a long time. Both are measured here
on PyYAML's event stream, which is produced by a non-recursive parser in one
pass and constant memory per level, and refused before anything is built.
"""

from __future__ import annotations

from dataclasses import dataclass

import yaml

from eldercare.errors import EldercareError

MAX_DEPTH = 64
# A registry for thousands of homes has a few hundred thousand nodes; an alias may
# legitimately repeat a block (shared overrides), but not multiply the file.
MAX_EXPANDED_NODES = 2_000_000
MAX_EXPANSION_FACTOR = 10


class YamlLimitError(EldercareError, ValueError):
    """Text refused before loading; `line`/`column` (1-based) point at where it was seen."""

    def __init__(self, message: str, line: int | None = None, column: int | None = None) -> None:
        super().__init__(message)
        self.message, self.line, self.column = message, line, column


def check_yaml_limits(
    text: str,
    *,
    max_depth: int = MAX_DEPTH,
    max_expanded_nodes: int = MAX_EXPANDED_NODES,
    max_expansion_factor: int = MAX_EXPANSION_FACTOR,
    loader: type[yaml.SafeLoader] | type[yaml.CSafeLoader] | None = None,
) -> None:
    """Raise YamlLimitError if `text` nests deeper than `max_depth` or would expand (with
    every alias replaced by a copy of its anchor) to more than the bound: `max_expanded_nodes`,
    or `max_expansion_factor` times the nodes actually written. Syntax errors are left
    for the real load to report (it gives the better message). Events come from libyaml
    when PyYAML has it (the structure is the same whatever loader reads the text)."""
    if loader is None and yaml.__with_libyaml__:
        try:
            _check_events(
                text, yaml.CSafeLoader, max_depth, max_expanded_nodes, max_expansion_factor
            )
            return
        except yaml.YAMLError:
            # libyaml refuses some texts the Python parser reads (libyaml caps nesting at
            # 1,000 levels, and the real load's recursive composer takes minutes on such a
            # text): judge those by the Python parser's events, which stop at `max_depth`.
            pass
    try:
        _check_events(
            text, loader or yaml.SafeLoader, max_depth, max_expanded_nodes, max_expansion_factor
        )
    except yaml.YAMLError:
        return


def _check_events(
    text: str,
    events: type[yaml.SafeLoader] | type[yaml.CSafeLoader],
    max_depth: int,
    max_expanded_nodes: int,
    max_expansion_factor: int,
) -> None:
    stack: list[_Open] = []  # the collections being read, outermost first
    anchors: dict[str, int] = {}  # anchor → expanded node count of what it names
    written = 0
    expanded = 0  # finished top-level nodes, expanded
    for event in yaml.parse(text, Loader=events):
        if isinstance(event, yaml.CollectionStartEvent):
            if len(stack) >= max_depth:
                raise _limit(f"nested deeper than {max_depth} levels", event)
            stack.append(_Open(event.anchor))
            written += 1
            continue
        if isinstance(event, yaml.CollectionEndEvent):
            done = stack.pop()
            size, anchor = done.size, done.anchor
        elif isinstance(event, yaml.ScalarEvent):
            size, anchor = 1, event.anchor
            written += 1
        elif isinstance(event, yaml.AliasEvent):
            size, anchor = anchors.get(event.anchor or "", 1), None
            written += 1
        else:
            continue
        if anchor is not None:
            anchors[anchor] = size
        if stack:
            stack[-1].size += size
            total = stack[-1].size
        else:
            expanded += size
            total = expanded
        bound = max(written, min(max_expanded_nodes, max(100_000, max_expansion_factor * written)))
        if total > bound:
            raise _limit(f"aliases expand to more than {bound} nodes (a YAML bomb?)", event)


@dataclass(slots=True)
class _Open:
    anchor: str | None
    size: int = 1


def _limit(message: str, event: yaml.Event) -> YamlLimitError:
    mark = event.start_mark
    if mark is None:
        return YamlLimitError(message)
    return YamlLimitError(message, mark.line + 1, mark.column + 1)
