"""The work order's states and the steps between them: pure rules, no I/O.

    requested ──dispatch (redispatch step)──▶ dispatched   (service requests start here)
    dispatched ──accept──▶ accepted ──on_the_way──▶ on_the_way ──arrive──▶ arrived ──done──▶ done
        │  ╲                  │                        │
        │   ╲decline──▶ declined ──redispatch──▶ dispatched (another responder)
        └─redispatch (the operator takes it back before it is accepted)

A responder may skip "on the way" (a nurse on the same floor arrives at once), and
may cancel only through the operator. `done` carries an outcome (alerts.terms) and a note.
"""

from __future__ import annotations

from enum import StrEnum

from eldercare.errors import EldercareError


class OrderState(StrEnum):
    REQUESTED = "requested"  # a service request waiting for the operator to send someone
    DISPATCHED = "dispatched"
    ACCEPTED = "accepted"
    DECLINED = "declined"
    ON_THE_WAY = "on_the_way"
    ARRIVED = "arrived"
    DONE = "done"
    CANCELLED = "cancelled"


class Step(StrEnum):
    """What a person does to an order; each is also the order event's name."""

    ACCEPT = "accept"
    DECLINE = "decline"
    ON_THE_WAY = "on_the_way"
    ARRIVE = "arrive"
    DONE = "done"
    REDISPATCH = "redispatch"
    CANCEL = "cancel"


# Steps the assigned responder takes; the operator takes the others.
RESPONDER_STEPS: frozenset[Step] = frozenset(
    {Step.ACCEPT, Step.DECLINE, Step.ON_THE_WAY, Step.ARRIVE, Step.DONE}
)

_NEXT: dict[tuple[OrderState, Step], OrderState] = {
    (OrderState.REQUESTED, Step.REDISPATCH): OrderState.DISPATCHED,
    (OrderState.DISPATCHED, Step.ACCEPT): OrderState.ACCEPTED,
    (OrderState.DISPATCHED, Step.DECLINE): OrderState.DECLINED,
    (OrderState.DISPATCHED, Step.REDISPATCH): OrderState.DISPATCHED,
    (OrderState.DECLINED, Step.REDISPATCH): OrderState.DISPATCHED,
    (OrderState.ACCEPTED, Step.ON_THE_WAY): OrderState.ON_THE_WAY,
    (OrderState.ACCEPTED, Step.ARRIVE): OrderState.ARRIVED,
    (OrderState.ON_THE_WAY, Step.ARRIVE): OrderState.ARRIVED,
    (OrderState.ARRIVED, Step.DONE): OrderState.DONE,
}
for _state in (
    OrderState.REQUESTED,
    OrderState.DISPATCHED,
    OrderState.DECLINED,
    OrderState.ACCEPTED,
    OrderState.ON_THE_WAY,
    OrderState.ARRIVED,
):
    _NEXT[(_state, Step.CANCEL)] = OrderState.CANCELLED

OPEN_STATES: frozenset[OrderState] = frozenset(
    {
        OrderState.REQUESTED,
        OrderState.DISPATCHED,
        OrderState.DECLINED,
        OrderState.ACCEPTED,
        OrderState.ON_THE_WAY,
        OrderState.ARRIVED,
    }
)
# Before these, the responder has not reached the door: the arrival promise still runs.
NOT_ARRIVED: frozenset[OrderState] = frozenset(
    {
        OrderState.REQUESTED,
        OrderState.DISPATCHED,
        OrderState.DECLINED,
        OrderState.ACCEPTED,
        OrderState.ON_THE_WAY,
    }
)


class StepRefused(EldercareError, ValueError):
    """The step is not allowed in the order's current state."""


def next_state(state: OrderState, step: Step) -> OrderState:
    try:
        return _NEXT[(state, step)]
    except KeyError:
        raise StepRefused(f"cannot {step.value} an order that is {state.value}") from None
