"""The digest text a group bot gets in a storm: counts by kind, the narrowest area."""

from __future__ import annotations

from alerts.digest import digest_message
from alerts.records import AlertRecord
from eldercare.domain import AlertCondition, AlertKind, AlertStatus, Severity
from eldercare.registry_index import RegistryIndex
from eldercare.registry_model import RegistryDocument


def _index() -> RegistryIndex:
    def site(sid: str, org: str) -> dict[str, object]:
        return {"id": sid, "kind": "home", "name": f"{sid}家", "organisation": org}

    return RegistryIndex(
        RegistryDocument.model_validate(
            {
                "sites": [
                    site("a", "滨州市/滨城区/市中街道/黄河社区"),
                    site("b", "滨州市/滨城区/市西街道/新立社区"),
                    site("c", "滨州市/沾化区/富源街道/新城社区"),
                ]
            }
        )
    )


def _alert(alert_id: int, site: str, kind: AlertKind) -> AlertRecord:
    return AlertRecord(
        id=alert_id,
        site=site,
        resident=None,
        room=None,
        device=None,
        kind=kind,
        severity=Severity.CRITICAL,
        condition=AlertCondition.ACTIVE,
        status=AlertStatus.OPEN,
        raised_at=0.0,
        created_at=0.0,
        last_update=0.0,
    )


def test_counts_by_kind_in_the_narrowest_common_area() -> None:
    kinds = [AlertKind.FALL] * 2 + [AlertKind.SOS]
    alerts = [_alert(i, "a" if i % 2 else "b", k) for i, k in enumerate(kinds)]
    title, body = digest_message(alerts, 0, _index(), "zh-CN", "https://x/console")
    assert title == "【汇总】3 条新警报"
    assert (
        body
        == "【汇总】滨城区 3 条新警报：跌倒 2 条，一键呼叫 1 条。请打开控制台：https://x/console"
    )
    _, en = digest_message(alerts, 1, _index(), "en", "https://x/console")
    assert en.startswith("[Digest] 4 new alerts in 滨城区: 2 × Fall, 1 × SOS call, 1 other")
    across = [_alert(1, "a", AlertKind.FALL), _alert(2, "c", AlertKind.FALL)]
    assert "滨州市 2 条新警报" in digest_message(across, 0, _index(), "zh-CN", "l")[1]
