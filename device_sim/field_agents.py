"""Simulated people of the field service, talking to the gateway's API like the pages do.

- a **responder** accepts a dispatch after a short while (or now and then declines:
  "busy with another resident"), sets off, travels for a plausible time from the
  distance between their base and the home (about 15 km/h through town, plus getting
  out of the door), arrives, spends a few minutes and closes the order; they visit the
  residents they owe a visit, some of them late (skipped this round);
- a **family** member asks for a service now and then (a meal, medicine, a repair);
- an **operator** stand-in dispatches open critical alerts and waiting service requests
  to the first proposed responder after a minute or two, and re-dispatches declined or
  unaccepted orders, so the loop runs with nobody at the console.

Every action is scheduled on the caller's clock (`now()`), taken by `tick()`, and written
to the ground truth (one JSON line per planned and per taken step), so an evaluation can
compare what the platform recorded with what the people did.
"""

from __future__ import annotations

import json
import math
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

SPEED_KMH = 15.0
ROAD_FACTOR = 1.3  # streets are not straight lines
ALERT_KINDS_DISPATCHED = ("sos", "fall", "wearable_fall")
REQUEST_KINDS = ("meal", "medicine", "cleaning", "accompany_hospital", "repair", "other")


def distance_km(a: tuple[float, float], b: tuple[float, float]) -> float:
    lat1, lon1, lat2, lon2 = map(math.radians, (*a, *b))
    h = (
        math.sin((lat2 - lat1) / 2) ** 2
        + math.cos(lat1) * math.cos(lat2) * math.sin((lon2 - lon1) / 2) ** 2
    )
    return 2 * 6371.0 * math.asin(math.sqrt(h))


def travel_s(base: tuple[float, float], dest: tuple[float, float], rng: random.Random) -> float:
    """Out of the door (1–3 min), then the road at town speed."""
    road_km = distance_km(base, dest) * ROAD_FACTOR
    return rng.uniform(60, 180) + road_km / SPEED_KMH * 3600


class Truth:
    """Ground truth of the field agents: JSON lines, appended as they happen."""

    def __init__(self, path: Path | None) -> None:
        self.path = path
        self.records: list[dict[str, Any]] = []

    def add(self, **record: Any) -> None:
        self.records.append(record)
        if self.path is not None:
            with self.path.open("a", encoding="utf-8") as out:
                out.write(json.dumps(record, ensure_ascii=False) + "\n")


@dataclass
class Planned:
    at: float
    action: str  # accept | decline | on_the_way | arrive | done | visit
    target: str  # order id, or "site/resident" for a visit
    body: dict[str, Any] = field(default_factory=dict)


async def _json(resp: httpx.Response) -> Any:
    resp.raise_for_status()
    return resp.json()


class ResponderAgent:
    def __init__(
        self,
        client: httpx.AsyncClient,
        username: str,
        base: tuple[float, float],
        rng: random.Random,
        truth: Truth,
        *,
        decline_share: float = 0.1,
        late_visit_share: float = 0.2,
    ) -> None:
        self.client = client
        self.username = username
        self.base = base
        self.rng = rng
        self.truth = truth
        self.decline_share = decline_share
        self.late_visit_share = late_visit_share
        self.plan: list[Planned] = []
        self.known: set[tuple[str, int]] = set()  # (order, attempt) already planned
        self.visits_planned: set[str] = set()

    def _plan_order(self, order: dict[str, Any], now: float, sites: dict[str, Any]) -> None:
        oid = order["id"]
        accept_at = now + self.rng.uniform(15, 90)
        if self.rng.random() < self.decline_share:
            self.plan.append(Planned(accept_at, "decline", oid, {"reason": "正在另一户处置"}))
            self.truth.add(who=self.username, order=oid, planned="decline", at=accept_at)
            return
        site = sites.get(order["site_id"]) or {}
        dest = (site.get("latitude") or self.base[0], site.get("longitude") or self.base[1])
        leave_at = accept_at + self.rng.uniform(10, 60)
        arrive_at = leave_at + travel_s(self.base, dest, self.rng)
        done_at = arrive_at + self.rng.uniform(300, 900)
        outcome = self.rng.choice(["assisted_on_site", "resident_fine", "assisted_on_site"])
        self.plan += [
            Planned(accept_at, "accept", oid),
            Planned(leave_at, "on_the_way", oid),
            Planned(arrive_at, "arrive", oid),
            Planned(done_at, "done", oid, {"outcome": outcome, "note": "模拟上门"}),
        ]
        self.truth.add(
            who=self.username, order=oid, planned="arrive", at=arrive_at,
            km=round(distance_km(self.base, dest), 2), outcome=outcome,
        )  # fmt: skip

    async def tick(self, now: float, sites: dict[str, Any]) -> None:
        orders = await _json(await self.client.get("/api/field/orders", params={"open": True}))
        for o in orders:
            key = (o["id"], o["attempt"])
            if o["state"] == "dispatched" and key not in self.known:
                self.known.add(key)
                self._plan_order(o, now, sites)
        await self._plan_visits(now)
        due = sorted((p for p in self.plan if p.at <= now), key=lambda p: p.at)
        self.plan = [p for p in self.plan if p.at > now]
        for p in due:
            await self._take(p, now)

    async def _plan_visits(self, now: float) -> None:
        owed = await _json(await self.client.get("/api/field/visits/owed"))
        for o in owed:
            key = f"{o['site_id']}/{o['resident_id']}/{o['period_end']}"
            if o["status"] == "visited" or key in self.visits_planned:
                continue
            self.visits_planned.add(key)
            if self.rng.random() < self.late_visit_share:
                self.truth.add(who=self.username, visit=key, planned="skipped", at=now)
                continue
            at = now + self.rng.uniform(60, 1800)
            mode = self.rng.choice(["in_person", "in_person", "phone", "video"])
            body = {"site_id": o["site_id"], "resident_id": o["resident_id"], "mode": mode,
                    "outcome": "resident_fine"}  # fmt: skip
            self.plan.append(Planned(at, "visit", key, body))
            self.truth.add(who=self.username, visit=key, planned="visit", at=at, mode=mode)

    async def _take(self, p: Planned, now: float) -> None:
        if p.action == "visit":
            # A colleague of the same area may have been there meanwhile.
            owed = await _json(await self.client.get("/api/field/visits/owed"))
            if any(
                o["site_id"] == p.body["site_id"]
                and o["resident_id"] == p.body["resident_id"]
                and o["status"] == "visited"
                for o in owed
            ):
                self.truth.add(who=self.username, target=p.target, took="none", at=now, status=0)
                return
            resp = await self.client.post("/api/field/visits", json=p.body)
        else:
            resp = await self.client.post(f"/api/field/orders/{p.target}/{p.action}", json=p.body)
        # A 409 is the operator having moved the order on (cancelled, re-dispatched): fine.
        self.truth.add(
            who=self.username, target=p.target, took=p.action, at=now, status=resp.status_code
        )


class FamilyAgent:
    def __init__(
        self,
        client: httpx.AsyncClient,
        site_id: str,
        resident_id: str,
        rng: random.Random,
        truth: Truth,
        every_s: float = 1200.0,
    ) -> None:
        self.client, self.site_id, self.resident_id = client, site_id, resident_id
        self.rng, self.truth, self.every_s = rng, truth, every_s
        self.next_at: float | None = None

    async def tick(self, now: float) -> None:
        if self.next_at is None:
            self.next_at = now + self.rng.uniform(0.2, 1.0) * self.every_s
        if now < self.next_at:
            return
        self.next_at = now + self.rng.uniform(0.5, 1.5) * self.every_s
        kind = self.rng.choice(REQUEST_KINDS)
        resp = await self.client.post(
            "/api/field/requests",
            json={"site_id": self.site_id, "resident_id": self.resident_id, "kind": kind},
        )
        order = resp.json().get("order_id") if resp.status_code == 201 else None
        self.truth.add(who="family", request=kind, order=order, at=now, status=resp.status_code)


class OperatorAgent:
    """Dispatches what a night-shift operator would, after a human-like pause."""

    def __init__(self, client: httpx.AsyncClient, rng: random.Random, truth: Truth) -> None:
        self.client, self.rng, self.truth = client, rng, truth
        self.waiting: dict[str, float] = {}  # alert id or order id → when to act

    async def _first_responder(self, site_id: str, exclude: str = "") -> str | None:
        people = await _json(
            await self.client.get("/api/field/responders", params={"site_id": site_id})
        )
        names = [p["username"] for p in people if p["username"] != exclude]
        return names[0] if names else None

    def _due(self, key: str, now: float) -> bool:
        at = self.waiting.setdefault(key, now + self.rng.uniform(30, 120))
        return at <= now

    async def tick(self, now: float) -> None:
        alerts = await _json(
            await self.client.get("/api/alerts", params={"handling": ["open", "acknowledged"]})
        )
        orders = await _json(await self.client.get("/api/field/orders", params={"limit": 1000}))
        with_order = {o["alert_id"] for o in orders if o["alert_id"]}
        for a in alerts:
            if a["kind"] not in ALERT_KINDS_DISPATCHED or a["id"] in with_order:
                continue
            if not self._due(a["id"], now):
                continue
            who = await self._first_responder(a["site_id"])
            if who is None:
                continue
            resp = await self.client.post(
                "/api/field/orders", json={"alert_id": a["id"], "responder": who}
            )
            order = resp.json().get("id") if resp.status_code == 201 else None
            self.truth.add(who="operator", dispatch=a["id"], order=order, to=who, at=now)
        open_alerts = {a["id"]: a for a in alerts}
        for o in orders:
            # The helper closed the order: the operator acknowledges and resolves the alert
            # with the outcome found at the door.
            alert = open_alerts.get(o["alert_id"] or "")
            if o["state"] == "done" and alert is not None:
                if alert["handling"] == "open":
                    await self.client.post(f"/api/alerts/{alert['id']}/acknowledge")
                resp = await self.client.post(
                    f"/api/alerts/{alert['id']}/resolve",
                    json={"outcome": o["outcome"], "note": "上门处置完成"},
                )
                self.truth.add(who="operator", resolve=alert["id"], at=now, status=resp.status_code)
                open_alerts.pop(alert["id"])
        for o in orders:
            stuck = o["state"] in ("requested", "declined") or (
                o["state"] == "dispatched" and o["accept_overdue"]
            )
            key = f"{o['id']}/{o['attempt']}/{o['state']}"
            if not stuck or not self._due(key, now):
                continue
            who = await self._first_responder(o["site_id"], exclude=o["responder"])
            if who is None:
                continue
            resp = await self.client.post(
                f"/api/field/orders/{o['id']}/redispatch", json={"responder": who}
            )
            self.truth.add(
                who="operator", redispatch=o["id"], to=who, at=now, status=resp.status_code
            )


async def login(client: httpx.AsyncClient, username: str, password: str) -> None:
    resp = await client.post(
        "/api/auth/login", json={"username": username, "password": password, "token_kind": "bearer"}
    )
    resp.raise_for_status()
    client.headers["Authorization"] = f"Bearer {resp.json()['token']}"


@dataclass
class FieldAgents:
    """Everyone, ticked together; `sites` gives coordinates for travel times."""

    responders: list[ResponderAgent]
    families: list[FamilyAgent]
    operator: OperatorAgent | None
    sites: dict[str, Any]
    now: Callable[[], float]

    async def tick(self) -> None:
        now = self.now()
        if self.operator is not None:
            await self.operator.tick(now)
        for f in self.families:
            await f.tick(now)
        for r in self.responders:
            await r.tick(now, self.sites)


def check_truth(
    records: list[dict[str, Any]], arrivals: dict[str, float | None], now: float, tick_s: float
) -> dict[str, Any]:
    """Compare the planned arrivals of the ground truth with the arrival times the platform
    recorded (`arrivals`: order id → arrived_at). An arrival is as planned when recorded at
    or after the planned time and within one round (`tick_s`) plus a margin; arrivals not
    due yet are left out."""
    planned = {
        r["order"]: float(r["at"])
        for r in records
        if r.get("planned") == "arrive" and r.get("order") and float(r["at"]) <= now - tick_s
    }
    as_planned, missing, off = 0, [], []
    for order, at in planned.items():
        got = arrivals.get(order)
        if got is None:
            missing.append(order)
        elif 0 <= got - at <= tick_s + 5:
            as_planned += 1
        else:
            off.append((order, round(got - at, 1)))
    return {"planned": len(planned), "as_planned": as_planned, "missing": missing, "off": off}
