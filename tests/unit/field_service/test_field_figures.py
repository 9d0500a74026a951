"""Field response figures: the arithmetic on a fake clock, and `eldercare alerts sla`
printing them next to the alert figures, from a real SQLite store."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from eldercare.db import create_engine, session_factory
from eldercare.registry_model import Site
from eldercare_app.cli import _register_subcommands, app
from field_service.figures import field_figures
from field_service.lifecycle import Step
from field_service.models import init_field_store
from field_service.orders import OrderStore

T0 = 1_795_000_000.0  # 2026-11-18
HOME = Site.model_validate(
    {
        "id": "hh-1",
        "kind": "home",
        "name": "家",
        "organisation": "滨州市/滨城区",
        "residents": [{"id": "r", "name": "甲"}],
    }
)


async def _seed(store: OrderStore) -> None:
    """Four orders: arrived in 10 and 20 min, one arrived late (40 min, re-dispatched once),
    one still open and past its promise; and a cancelled one that does not count."""

    async def order(requested: float, dispatch_after: float) -> str:
        o = await store.dispatch(
            site=HOME, resident_id="r", alert_id=None, requested_at=requested,
            responder="w", actor="op", at=requested + dispatch_after,
        )  # fmt: skip
        return o.id

    a = await order(T0, 60)
    await store.step(a, Step.ACCEPT, actor="w", at=T0 + 90)
    await store.step(a, Step.ARRIVE, actor="w", at=T0 + 600)
    await store.step(a, Step.DONE, actor="w", at=T0 + 900, outcome="resident_fine")
    b = await order(T0 + 1000, 120)
    await store.step(b, Step.ACCEPT, actor="w", at=T0 + 1000 + 180)
    await store.step(b, Step.ARRIVE, actor="w", at=T0 + 1000 + 1200)
    await store.step(b, Step.DONE, actor="w", at=T0 + 3000, outcome="assisted_on_site")
    c = await order(T0 + 5000, 30)
    await store.step(c, Step.DECLINE, actor="w", at=T0 + 5000 + 60, reason="busy")
    await store.step(c, Step.REDISPATCH, actor="op", at=T0 + 5000 + 300, responder="v")
    await store.step(c, Step.ACCEPT, actor="v", at=T0 + 5000 + 330)
    await store.step(c, Step.ARRIVE, actor="v", at=T0 + 5000 + 2400)
    await order(T0 + 9000, 240)  # never accepted
    e = await order(T0 + 9500, 10)
    await store.step(e, Step.CANCEL, actor="op", at=T0 + 9600)


def test_field_figures_on_a_fake_clock(tmp_path: Path) -> None:
    async def main() -> dict[str, object]:
        engine = create_engine(f"sqlite+aiosqlite:///{tmp_path}/f.db")
        await init_field_store(engine)
        store = OrderStore(session_factory(engine))
        await _seed(store)
        orders = await store.list_orders(limit=100)
        await engine.dispose()
        return field_figures(orders, now=T0 + 9000 + 2000)

    doc = asyncio.run(main())
    assert doc["orders"] == 4
    assert doc["to_dispatch"] == {"p50_s": pytest.approx(90), "p95_s": pytest.approx(222)}
    # Accept times from the first dispatch: 30, 60, 300 s (the re-dispatch wait included).
    assert doc["to_accept"] == {"p50_s": pytest.approx(60), "p95_s": pytest.approx(276)}
    assert doc["to_arrive"] == {"p50_s": pytest.approx(1200), "p95_s": pytest.approx(2280)}
    # Three arrived (two within 30 min), one open past its promise: 2 of 4 within. Open:
    # c (arrived, not closed yet) and the one never accepted, which is overdue.
    assert (doc["arrived"], doc["within_promise"]) == (3, 2)
    assert doc["share_within_promise"] == pytest.approx(0.5)
    assert (doc["open"], doc["overdue"]) == (2, 1)


def test_alerts_sla_prints_the_field_figures(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path}/cli.db"
    monkeypatch.setenv("ELDERCARE_DATABASE_URL", url)
    monkeypatch.setenv("ELDERCARE_RUN_DIR", str(tmp_path / "run"))

    async def seed() -> None:
        engine = create_engine(url)
        await init_field_store(engine)
        await _seed(OrderStore(session_factory(engine)))
        await engine.dispose()

    asyncio.run(seed())
    _register_subcommands()
    runner = CliRunner()
    result = runner.invoke(app, ["alerts", "sla", "--since", "2026-11-18T00:00:00Z", "--json"])
    assert result.exit_code == 0, result.output
    field = json.loads(result.output)["field"]
    assert (field["orders"], field["arrived"], field["within_promise"]) == (4, 3, 2)
    later = runner.invoke(app, ["alerts", "sla", "--since", "2026-11-20T00:00:00Z", "--json"])
    assert json.loads(later.output)["field"]["orders"] == 0
    text = runner.invoke(app, ["alerts", "sla", "--since", "2026-11-18"])
    assert "field: 4 orders" in text.output and "to_arrive" in text.output
