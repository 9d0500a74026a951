"""Alerts: detector transitions merged into alerts, escalated and notified; what
operators do with them (see alerts/README.md). The names below are the package's
public API; the rest is internal."""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from alerts.events import InfluxAlertEventRecorder
    from alerts.pipeline import AlertPipeline
    from alerts.policy import EscalationPolicy, PolicySet, load_policy
    from alerts.records import AlertChange, AlertRecord, FeedItem, HistoryEntry, NotificationRecord
    from alerts.runtime import build_alerts
    from alerts.sender import AppriseSender
    from alerts.service import AlertService
    from alerts.store import AlertFilter, AlertNotFound, AlertStateError, AlertStore, init_store
    from alerts.store_availability import AlertStoreAvailability

__all__ = [
    "AlertChange",
    "AlertFilter",
    "AlertNotFound",
    "AlertPipeline",
    "AlertRecord",
    "AlertService",
    "AlertStateError",
    "AlertStore",
    "AlertStoreAvailability",
    "AppriseSender",
    "EscalationPolicy",
    "FeedItem",
    "HistoryEntry",
    "InfluxAlertEventRecorder",
    "NotificationRecord",
    "PolicySet",
    "build_alerts",
    "init_store",
    "load_policy",
]

# Loaded on first use: importing one module of the package does not import them all.
_EXPORTED_FROM = {
    "AlertPipeline": "alerts.pipeline",
    "build_alerts": "alerts.runtime",
    "AlertService": "alerts.service",
    "AlertFilter": "alerts.store",
    "AlertNotFound": "alerts.store",
    "AlertStateError": "alerts.store",
    "AlertStore": "alerts.store",
    "init_store": "alerts.store",
    "AlertStoreAvailability": "alerts.store_availability",
    "AlertChange": "alerts.records",
    "AlertRecord": "alerts.records",
    "FeedItem": "alerts.records",
    "HistoryEntry": "alerts.records",
    "NotificationRecord": "alerts.records",
    "EscalationPolicy": "alerts.policy",
    "PolicySet": "alerts.policy",
    "load_policy": "alerts.policy",
    "AppriseSender": "alerts.sender",
    "InfluxAlertEventRecorder": "alerts.events",
}


def __getattr__(name: str) -> Any:
    module = _EXPORTED_FROM.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)
