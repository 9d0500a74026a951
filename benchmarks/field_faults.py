"""How long one tick of the device-fault watch takes for a district's emergency devices.

Run `python -m benchmarks.field_faults [homes] [weeks]`: SQLite in a temporary
directory, each home with an SOS button and a fall radar tested weekly for `weeks`
weeks (on staggered days), then three ticks three days after the last round: the first
opens the overdue episodes and hands them on (to a sink that only counts), the next
two find nothing new.
"""

from __future__ import annotations

import asyncio
import sys
import tempfile
import time
from collections.abc import Sequence

from eldercare.db import create_engine, session_factory
from eldercare.domain import Transition
from eldercare.registry_index import RegistryIndex
from eldercare.registry_model import RegistryDocument
from field_service.device_faults import DeviceFaultWatch
from field_service.models import DeviceTestRow, init_field_store

T0 = 1_770_000_000.0
WEEK = 7 * 86400.0


class CountingSink:
    def __init__(self) -> None:
        self.transitions = 0

    async def handle_transitions(self, transitions: Sequence[Transition]) -> None:
        self.transitions += len(transitions)


async def run(homes: int, weeks: int) -> list[tuple[str, float, int]]:
    engine = create_engine(f"sqlite+aiosqlite:///{tempfile.mkdtemp()}/faults.db")
    await init_field_store(engine)
    sessions = session_factory(engine)
    doc = RegistryDocument.model_validate(
        {
            "sites": [
                {"id": f"h{i}", "kind": "home", "name": f"h{i}", "organisation": "市/区",
                 "devices": [{"id": f"h{i}-sos", "kind": "sos_button"},
                             {"id": f"h{i}-radar", "kind": "fall_radar"}]}
                for i in range(homes)
            ]
        }
    )  # fmt: skip
    index = RegistryIndex(doc)
    async with sessions() as session:
        for i in range(homes):
            for device in (f"h{i}-sos", f"h{i}-radar"):
                for week in range(weeks):
                    at = T0 + week * WEEK + (i % 7) * 86400.0
                    session.add(DeviceTestRow(site_id=f"h{i}", device_id=device, at=at,
                                              passed=True, source="device"))  # fmt: skip
        await session.commit()
    sink = CountingSink()
    watch = DeviceFaultWatch(sessions, lambda: index, sink, lambda: None)
    now = T0 + weeks * WEEK + 3 * 86400.0
    out = []
    for label in ("first tick (opens episodes)", "steady tick", "steady tick"):
        start = time.perf_counter()
        await watch.tick(now)
        out.append((label, time.perf_counter() - start, sink.transitions))
        now += 30.0
    await engine.dispose()
    return out


def main(argv: Sequence[str] = ()) -> None:
    homes = int(argv[0]) if argv else 1500
    weeks = int(argv[1]) if len(argv) > 1 else 8
    print(f"{homes} homes, {2 * homes} devices, {2 * homes * weeks} tests")
    for label, seconds, transitions in asyncio.run(run(homes, weeks)):
        print(f"{label}: {seconds:.3f} s ({transitions} transitions handed on so far)")


if __name__ == "__main__":
    main(sys.argv[1:])
