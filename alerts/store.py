"""The alert store: one object over the alert tables, made of focused parts that
each own one concern (SQLAlchemy 2 async; SQLite by default, PostgreSQL by URL):

- `store_lifecycle`: detector transitions merged into alerts (the merge rule itself
  is the pure `alert_merge`), inhibition, silencing, automatic resolution;
- `store_actions`: what people do (acknowledge, assign, note, resolve);
- `store_escalation`: escalation state per alert;
- `store_notifications`: the notification log;
- `store_queries`: reads and the change feed;
- `store_base`: the sessions, write lock and change notification they share.
"""

from __future__ import annotations

from alerts.alert_merge import MAX_EVIDENCE
from alerts.store_actions import HumanActions
from alerts.store_base import ALERT_TABLES, SYSTEM, AlertNotFound, AlertStateError, init_store
from alerts.store_escalation import EscalationStates
from alerts.store_lifecycle import AlertLifecycle
from alerts.store_notifications import NotificationLog
from alerts.store_queries import AlertFilter, AlertQueries

__all__ = [
    "ALERT_TABLES",
    "MAX_EVIDENCE",
    "SYSTEM",
    "AlertFilter",
    "AlertNotFound",
    "AlertStateError",
    "AlertStore",
    "init_store",
]


class AlertStore(AlertLifecycle, HumanActions, EscalationStates, NotificationLog, AlertQueries):
    """The whole store, as the pipeline, the service and the gateway use it."""
