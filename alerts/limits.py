"""Sending limits as data (`policies/limits.yaml`), and the throttle that keeps them.

Providers limit what one destination may receive: a WeCom or DingTalk group bot
20 messages a minute (DingTalk then blocks the bot for 10 minutes), a phone number
a few voice calls an hour. The throttle keeps the platform inside them, per
destination (one channel hash), so that one family's messages never wait behind
another's. A destination that may take a digest (a group bot) gets, while more is
due than it may take, one message summing everything due instead of dropping or
queueing past the limit; its sends are paced (one per window/count seconds) so a
storm never spends the whole minute's budget in its first second.

The throttle's memory is the process's: a restart forgets what was sent (at worst
one window's worth of messages more).
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from datetime import datetime, time, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import yaml
from pydantic import BaseModel, ConfigDict, Field

from alerts.policy import LIMITS_FILE, POLICY_DIR


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Rate(_Strict):
    count: int = Field(ge=1)
    per_s: float = Field(gt=0)


class Window(_Strict):
    start: time
    end: time

    def contains(self, local: datetime) -> bool:
        t = local.time()
        if self.start <= self.end:
            return self.start <= t < self.end
        return t >= self.start or t < self.end

    def end_after(self, local: datetime) -> datetime:
        """The first end of the window after `local` (which is inside it)."""
        end = local.replace(hour=self.end.hour, minute=self.end.minute, second=0, microsecond=0)
        return end if end > local else end + timedelta(days=1)

    def night_of(self, local: datetime) -> str:
        """The date the window started on (a night spans midnight)."""
        start = local.replace(hour=self.start.hour, minute=self.start.minute, second=0)
        same_day = local >= start or self.start <= self.end
        return (local.date() if same_day else local.date() - timedelta(days=1)).isoformat()


class QuietHours(Window):
    roles: list[str] = Field(
        default_factory=lambda: ["family"],
        description="whose non-safety messages wait (the duty centre works all night)",
    )


class NightRule(Window):
    count: int = Field(ge=0, description="messages allowed per destination in the window")


class ChannelLimit(_Strict):
    rates: list[Rate] = Field(default_factory=list)
    digest: bool = Field(False, description="a storm is summed into one digest (group bots)")
    blocked_for_s: float = Field(0, ge=0, description="the provider's block after a refusal")
    night: NightRule | None = None
    max_hold_s: float = Field(
        120, ge=0, description="longest a message may wait for its slot; later: throttled"
    )

    def pace_s(self) -> float:
        """Spacing of a digest channel's sends: the tightest rate spread evenly."""
        return max((r.per_s / r.count for r in self.rates), default=0.0)


class Limits(_Strict):
    channels: dict[str, ChannelLimit] = Field(default_factory=dict)
    quiet_hours: QuietHours | None = None

    def for_url(self, url: str) -> ChannelLimit | None:
        scheme = url.partition("://")[0].strip().lower()
        return self.channels.get(scheme)

    def overridden_by(self, other: Limits) -> Limits:
        quiet = other.quiet_hours if "quiet_hours" in other.model_fields_set else self.quiet_hours
        return Limits(channels={**self.channels, **other.channels}, quiet_hours=quiet)


def load_limits(policies_dir: Path | None = None) -> Limits:
    """The shipped limits, overridden per kind by `<policies_dir>/limits.yaml`."""
    limits = Limits.model_validate(yaml.safe_load((POLICY_DIR / LIMITS_FILE).read_text()) or {})
    if policies_dir is not None and (policies_dir / LIMITS_FILE).is_file():
        override = Limits.model_validate(
            yaml.safe_load((policies_dir / LIMITS_FILE).read_text()) or {}
        )
        limits = limits.overridden_by(override)
    return limits


@dataclass
class _Destination:
    sent: deque[float] = field(default_factory=deque)
    blocked_until: float = 0.0
    night_counts: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Slot:
    at: float  # earliest time the destination may take a message
    refused: bool  # the slot is further away than the limit lets a message wait


class Throttle:
    """Per-destination send history against the limits; times are the pipeline's clock."""

    def __init__(self, limits: Limits) -> None:
        self.limits = limits
        self._dest: dict[str, _Destination] = {}

    def slot(self, dest: str, limit: ChannelLimit, now: float, timezone: str) -> Slot:
        d = self._dest.setdefault(dest, _Destination())
        longest = max((r.per_s for r in limit.rates), default=0.0)
        while d.sent and d.sent[0] <= now - longest:
            d.sent.popleft()
        at = max(now, d.blocked_until)
        for rate in limit.rates:
            recent = [t for t in d.sent if t > now - rate.per_s]
            if len(recent) >= rate.count:
                at = max(at, recent[-rate.count] + rate.per_s)
        if limit.digest and d.sent:
            at = max(at, d.sent[-1] + limit.pace_s())
        if limit.night is not None:
            local = datetime.fromtimestamp(at, ZoneInfo(timezone))
            if limit.night.contains(local):
                used = d.night_counts.get(limit.night.night_of(local), 0)
                if used >= limit.night.count:
                    at = limit.night.end_after(local).timestamp()
        return Slot(at, refused=at - now > limit.max_hold_s)

    def note_sent(self, dest: str, limit: ChannelLimit, at: float, timezone: str) -> None:
        d = self._dest.setdefault(dest, _Destination())
        d.sent.append(at)
        if limit.night is not None:
            local = datetime.fromtimestamp(at, ZoneInfo(timezone))
            if limit.night.contains(local):
                night = limit.night.night_of(local)
                d.night_counts[night] = d.night_counts.get(night, 0) + 1

    def note_refused(self, dest: str, limit: ChannelLimit, at: float) -> None:
        """The provider refused a send: it may block the destination for a while."""
        if limit.blocked_for_s:
            d = self._dest.setdefault(dest, _Destination())
            d.blocked_until = max(d.blocked_until, at + limit.blocked_for_s)

    def quiet_until(self, now: float, timezone: str, role: str) -> float | None:
        """End of the quiet hours if `now` is inside them and they apply to `role`
        (non-safety messages wait)."""
        quiet = self.limits.quiet_hours
        if quiet is None or role not in quiet.roles:
            return None
        local = datetime.fromtimestamp(now, ZoneInfo(timezone))
        return quiet.end_after(local).timestamp() if quiet.contains(local) else None
