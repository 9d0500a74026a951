"""The contracts between the stages of the pipeline.

ingest ──readings──▶ detector runtime ──transitions──▶ alert pipeline

Each stage receives a batch and returns only when the batch is durably handed
on, so ingest can acknowledge the MQTT messages behind it (at least once).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from eldercare.domain import Reading, Transition


class ReadingSink(Protocol):
    async def handle_readings(self, readings: Sequence[Reading]) -> None:
        """Take a batch of resolved readings (site, room, resident filled in)."""
        ...


class TransitionSink(Protocol):
    async def handle_transitions(self, transitions: Sequence[Transition]) -> None:
        """Take a batch of detector transitions; return once they are stored."""
        ...


class Component(Protocol):
    """A long-running part hosted by `eldercare run`."""

    name: str

    async def start(self) -> None: ...

    async def stop(self) -> None: ...


class NullReadingSink:
    async def handle_readings(self, readings: Sequence[Reading]) -> None:
        return None


class NullTransitionSink:
    async def handle_transitions(self, transitions: Sequence[Transition]) -> None:
        return None
