"""What became of one notification: the outcome the log records and the pages show.

A send that a channel accepted is `sent`. Providers that report more refine it: an
SMS receipt says `delivered` or `failed`; a voice call is `calling` until its status
is known and then `answered`, `not_answered` or `busy` (or `failed`). The platform
itself may hold a message back: `throttled` (a rate limit, a night rule) or
`digested` (folded into one digest for a group bot in a storm).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Outcome = Literal[
    "sent",
    "delivered",
    "calling",
    "answered",
    "not_answered",
    "busy",
    "failed",
    "throttled",
    "digested",
]
OUTCOMES: tuple[Outcome, ...] = (
    "sent",
    "delivered",
    "calling",
    "answered",
    "not_answered",
    "busy",
    "failed",
    "throttled",
    "digested",
)
# A call that ended without a person listening: escalation moves on at once.
UNANSWERED_CALL: frozenset[str] = frozenset({"not_answered", "busy", "failed"})
# Outcomes a provider may still change (a receipt is awaited).
AWAITING_RECEIPT: frozenset[str] = frozenset({"calling"})


@dataclass(frozen=True, slots=True)
class Receipt:
    """What a channel said when it took a message: the outcome so far and the
    provider's id for it (a call id, an SMS serial number), to ask about it later."""

    outcome: Outcome
    ref: str | None = None
