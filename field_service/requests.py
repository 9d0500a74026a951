"""Service requests: a resident, their family or the operator asks for help of a kind
(meal, medicine, cleaning, accompany to hospital, repair, other). A request is a work
order that starts `requested`, waits for the operator to send someone (the dispatch
timeout: 30 min), then follows the dispatch path, with its own deadline to be done
at the door by kind.
"""

from __future__ import annotations

from enum import StrEnum


class RequestKind(StrEnum):
    MEAL = "meal"  # 助餐
    MEDICINE = "medicine"  # 送药
    CLEANING = "cleaning"  # 保洁
    ACCOMPANY_HOSPITAL = "accompany_hospital"  # 陪同就医
    REPAIR = "repair"  # 维修
    OTHER = "other"  # 其他


# At the door within (from the request): a meal before it is cold is the same day, a
# repair can wait two days. Defaults; an organisation's policy may change them.
REQUEST_DEADLINE_S: dict[RequestKind, float] = {
    RequestKind.MEAL: 2 * 3600.0,
    RequestKind.MEDICINE: 4 * 3600.0,
    RequestKind.CLEANING: 48 * 3600.0,
    RequestKind.ACCOMPANY_HOSPITAL: 24 * 3600.0,
    RequestKind.REPAIR: 48 * 3600.0,
    RequestKind.OTHER: 24 * 3600.0,
}
DISPATCH_TIMEOUT_S = 30 * 60.0  # the centre sends someone within half an hour
REQUEST_ORDER_KIND = "service_request"
