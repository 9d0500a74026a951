"""Rule settings: defaults, global → site → resident merging, errors that say where."""

from __future__ import annotations

from typing import Any

import pytest

from detectors.catalogue import settings_models, site_context
from detectors.settings import (
    BathroomSettings,
    DetectorSettingsError,
    InactivitySettings,
    resolve_settings,
)
from tests.helpers.detectors import home_site


def test_defaults_follow_the_architecture() -> None:
    s = resolve_settings()
    assert s["bed_exit_no_return"].model_dump() == {
        "enabled": True,
        "night_start": "22:00",
        "night_end": "06:00",
        "minutes": 30.0,
        "unconfirmed_minutes": 60.0,
    }
    bathroom = s["bathroom_too_long"]
    assert isinstance(bathroom, BathroomSettings)
    assert (bathroom.night_minutes, bathroom.day_minutes) == (15.0, 45.0)
    inactivity = s["inactivity"]
    assert isinstance(inactivity, InactivitySettings)
    assert (inactivity.default_hours, inactivity.min_hours, inactivity.max_hours) == (3, 1, 8)
    assert s["night_door_exit"].minutes == 10.0  # type: ignore[attr-defined]
    assert s["not_returned"].max_hours == 12.0  # type: ignore[attr-defined]
    assert s["not_up"].default_deadline == "10:00"  # type: ignore[attr-defined]
    assert s["vitals"].minutes == 5.0  # type: ignore[attr-defined]
    assert s["device_offline"].factor == 2.0  # type: ignore[attr-defined]
    assert s["low_battery"].below_percent == 15.0  # type: ignore[attr-defined]
    assert s["fall"].maybe_fall_confirm_s == 60.0  # type: ignore[attr-defined]
    assert s["routine_deviation"].baseline_days == 14  # type: ignore[attr-defined]


def test_every_setting_is_described() -> None:
    for name, model in settings_models().items():
        for key, field in model.model_fields.items():
            assert field.description, f"{name}.{key} has no description"


def test_layers_merge_key_by_key() -> None:
    s = resolve_settings(
        {"bathroom_too_long": {"night_minutes": 20, "day_minutes": 50}},
        {"bathroom_too_long": {"night_minutes": 25}},
        {"bathroom_too_long": {"day_minutes": 60}},
        site_id="s",
        resident_id="r",
    )
    b = s["bathroom_too_long"]
    assert (b.night_minutes, b.day_minutes) == (25, 60)  # type: ignore[attr-defined]


def test_site_context_resolves_per_resident() -> None:
    site = home_site(
        site_overrides={"inactivity": {"default_hours": 4}},
        resident_overrides={"inactivity": {"max_hours": 6}},
    )
    ctx = site_context(site, {"inactivity": {"default_hours": 2, "min_hours": 2}})
    r = ctx.settings("inactivity", InactivitySettings, "res-1")
    assert (r.default_hours, r.min_hours, r.max_hours) == (4, 2, 6)
    assert ctx.settings("inactivity", InactivitySettings).max_hours == 8


@pytest.mark.parametrize(
    ("site_over", "resident_over", "message"),
    [
        ({"bathroom": {}}, None, "site 'home-1': unknown detector rule 'bathroom'"),
        (
            {"bathroom_too_long": {"night_minute": 5}},
            None,
            "site 'home-1': rule 'bathroom_too_long' has no setting 'night_minute'",
        ),
        (
            None,
            {"bed_exit_no_return": {"minutes": -1}},
            "site 'home-1' resident 'res-1': invalid settings for rule 'bed_exit_no_return': "
            "minutes",
        ),
        (
            None,
            {"inactivity": {"min_hours": 9}},
            "resident 'res-1': invalid settings for rule 'inactivity'",
        ),
        (
            {"not_up": {"default_deadline": "25:00"}},
            None,
            "site 'home-1': invalid settings for rule 'not_up': default_deadline",
        ),
        (
            None,
            {"not_returned": {"planned_absence_until": "2024-02-30T18:00"}},
            "planned_absence_until: day is out of range for month",
        ),
        (
            None,
            {"not_returned": {"planned_absence_until": "Sunday 18:00"}},
            "rule 'not_returned': planned_absence_until",
        ),
    ],
)
def test_invalid_overrides_name_site_resident_rule_and_key(
    site_over: dict[str, Any] | None, resident_over: dict[str, Any] | None, message: str
) -> None:
    site = home_site(site_overrides=site_over, resident_overrides=resident_over)
    with pytest.raises(DetectorSettingsError) as err:
        site_context(site)
    assert message in str(err.value)


def test_wearable_fall_settings_are_overridable_like_the_others() -> None:
    site = home_site(resident_overrides={"wearable_fall": {"impact_g": 2.5}})
    ctx = site_context(site)
    assert ctx.resident_settings["res-1"]["wearable_fall"].impact_g == 2.5  # type: ignore[attr-defined]
    with pytest.raises(DetectorSettingsError, match="wearable_fall"):
        site_context(home_site(site_overrides={"wearable_fall": {"impact": 2}}))


def test_sites_with_equal_overrides_share_one_validated_settings_object() -> None:
    plain = [site_context(home_site(site_id=f"h{i}", device_suffix=str(i))) for i in range(3)]
    assert plain[0].site_settings is plain[1].site_settings is plain[2].site_settings
    assert plain[0].resident_settings["res-1"] is plain[1].resident_settings["res-1"]
    tuned = site_context(home_site(site_overrides={"sos": {"repeat_window_s": 60}}))
    assert tuned.site_settings is not plain[0].site_settings
    assert tuned.site_settings["sos"].repeat_window_s == 60  # type: ignore[attr-defined]
    assert plain[0].site_settings["sos"].repeat_window_s == 120  # type: ignore[attr-defined]
    # Rules nobody overrode are still shared with the plain sites.
    assert tuned.site_settings["inactivity"] is plain[0].site_settings["inactivity"]
    # Equal content in another order or another site is the same settings.
    again = site_context(
        home_site(site_id="x", site_overrides={"sos": {"repeat_window_s": 60, "enabled": True}})
    )
    other = site_context(
        home_site(site_id="y", site_overrides={"sos": {"enabled": True, "repeat_window_s": 60}})
    )
    assert again.site_settings is other.site_settings


def test_a_bad_override_is_refused_every_time_naming_its_own_site() -> None:
    for sid in ("first", "second"):
        with pytest.raises(DetectorSettingsError, match=f"site '{sid}'"):
            site_context(home_site(site_id=sid, site_overrides={"sos": {"repeat_window_s": -1}}))


def test_global_overrides_that_are_not_mappings_are_refused() -> None:
    with pytest.raises(DetectorSettingsError, match="global detector settings: rule 'sos'"):
        resolve_settings({"sos": "off"})  # type: ignore[dict-item]


def test_docs_settings_reference_is_current() -> None:
    from pathlib import Path

    from detectors.settings_doc import render

    page = (Path(__file__).resolve().parents[3] / "docs" / "detectors.md").read_text(
        encoding="utf-8"
    )
    assert render(page) == page, "run: python -m detectors.settings_doc"
