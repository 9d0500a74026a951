"""Rule settings: one pydantic model per rule, with defaults drawn from fielded systems.

Overrides are merged explicitly, key by key, global → site (`Site.detectors`) →
resident (`Resident.detectors`). A typo or a wrong value fails with an error that
names where it came from (site, resident, rule, key) instead of doing nothing.

Local times are "HH:MM" in the site's own time zone.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import datetime
from typing import Annotated, Any, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from eldercare.errors import EldercareError

LocalTime = Annotated[
    str, Field(pattern=r"^([01]\d|2[0-3]):[0-5]\d$", description="local time HH:MM")
]


LocalDateTime = Annotated[
    str,
    Field(
        pattern=r"^\d{4}-(0[1-9]|1[0-2])-(0[1-9]|[12]\d|3[01])T([01]\d|2[0-3]):[0-5]\d$",
        description="local date and time YYYY-MM-DDTHH:MM",
    ),
]


def minutes_of_day(hhmm: str) -> int:
    hours, minutes = hhmm.split(":")
    return int(hours) * 60 + int(minutes)


class RuleSettings(BaseModel):
    """Common to every rule."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    enabled: bool = Field(True, description="run this rule at all")


class NightWindowSettings(RuleSettings):
    night_start: LocalTime = Field("22:00", description="start of the night window, local")
    night_end: LocalTime = Field("06:00", description="end of the night window, local")


class SosSettings(RuleSettings):
    repeat_window_s: float = Field(
        120.0, gt=0, le=3600, description="presses within this of the last one update the alert"
    )


class FallSettings(RuleSettings):
    maybe_fall_confirm_s: float = Field(
        60.0, gt=0, le=600, description="a maybe_fall becomes a fall without movement in this"
    )
    maybe_fall_retracted_confirm_s: float = Field(
        180.0,
        gt=0,
        le=1800,
        description="a maybe_fall the radar took back (`none`) before it was raised becomes "
        "a fall without movement in this (in the room, or indoors in a one-resident home)",
    )
    clear_after_none_s: float = Field(
        600.0,
        gt=0,
        le=86400,
        description="a raised fall clears after the radar reports `none` this long, "
        "or at once on movement in another room after `none`",
    )


class BedExitSettings(NightWindowSettings):
    minutes: float = Field(30.0, gt=0, le=600, description="out of bed longer than this at night")
    unconfirmed_minutes: float = Field(
        60.0,
        gt=0,
        le=600,
        description="the bed mats empty and nothing else moving (mats lose a sleeper lying "
        "across them): judged against this instead",
    )


class BathroomSettings(NightWindowSettings):
    night_minutes: float = Field(15.0, gt=0, le=600, description="limit at night")
    day_minutes: float = Field(45.0, gt=0, le=600, description="limit by day")
    door_debounce_s: float = Field(
        15.0,
        ge=0,
        le=600,
        description="a bathroom door opened again within this is the same passage",
    )
    flush_after_exit_s: float = Field(
        60.0,
        ge=0,
        le=600,
        description="a flush this soon after leaving is the cistern refilling, not a new visit",
    )
    door_transit_s: float = Field(
        30.0,
        ge=0,
        le=600,
        description="a door-only bathroom's door opened this soon after leaving another "
        "bathroom by its door may be the way out (nested doors, a shared lobby), not a new "
        "visit: that stay is held to day_minutes even at night",
    )
    unheralded_s: float = Field(
        600.0,
        ge=0,
        le=3600,
        description="a stay begun by one bathroom sensor with nothing moving elsewhere in "
        "the home this long before is held to day_minutes even at night, until a second "
        "sensor of the room fires (a sensor firing on its own is not a person walking in)",
    )
    unheralded_max_minutes: float = Field(
        90.0,
        gt=0,
        le=600,
        description="such a stay is timed from its sensor's last firing (the same sensor "
        "firing again renews the same doubtful evidence; a lie shows as silence), but raised "
        "at the latest this long after its start if the sensor goes on firing",
    )


class InactivitySettings(NightWindowSettings):
    default_hours: float = Field(3.0, gt=0, le=24, description="limit before learning")
    min_hours: float = Field(1.0, gt=0, le=24, description="learned limit is at least this")
    max_hours: float = Field(8.0, gt=0, le=48, description="learned limit is at most this")
    learn_days: int = Field(7, ge=1, le=60, description="days of data before the learned limit")
    min_samples: int = Field(
        10,
        ge=1,
        le=90,
        description="an hour needs this many day-hours of gaps (with its neighbours) to be "
        "learned; else the default applies",
    )
    room_min_samples: int = Field(
        20,
        ge=1,
        le=180,
        description="the limit is her normal for the room of the last movement and the hour "
        "once that has this many day-hours of gaps, else for the hour in any room (more "
        "than min_samples: the longest of fewer gaps is biased short)",
    )
    margin: float = Field(
        2.0, ge=1.0, le=5.0, description="learned limit = longest usual gap of the hour × this"
    )
    presume_asleep: bool = Field(
        True,
        description="without a bed sensor, a quiet that began in a bedroom or bathroom at "
        "night, or before getting up, counts as asleep in bed (not_up covers the morning)",
    )
    seated_hours: float = Field(
        8.0,
        gt=0,
        le=24,
        description="while a seat mat (chair, armchair, couch) is pressed the quiet is "
        "judged against at least this (an evening in the armchair is not a long lie)",
    )

    @model_validator(mode="after")
    def _bounds(self) -> InactivitySettings:
        if self.min_hours > self.max_hours:
            raise ValueError("min_hours must not exceed max_hours")
        return self


class NightDoorExitSettings(NightWindowSettings):
    minutes: float = Field(
        10.0, gt=0, le=240, description="outer door opened, no indoor movement for this long"
    )
    learn_bedtime: bool = Field(
        True,
        description="in a home, the night starts at the household's usual bedtime when later "
        "than night_start (not for residents flagged dementia)",
    )
    bedtime_nights: int = Field(
        7,
        ge=1,
        le=28,
        description="nights learned before the usual bedtime is used (before: the earliest "
        "bedtime seen so far, if any)",
    )
    latest_start: LocalTime = Field(
        "02:00", description="a learned start of the night is at most this (after midnight)"
    )


class AbsenceSettings(RuleSettings):
    """How the detectors decide that the resident left home (shared by several rules)."""

    away_after_minutes: float = Field(
        10.0, gt=0, le=240, description="outer door, then no indoor movement this long = away"
    )
    door_passage_s: float = Field(
        60.0,
        gt=0,
        le=600,
        description="outer-door events this close together are one passage (open, close, "
        "open again for the shopping)",
    )
    lone_device_days: int = Field(
        2,
        ge=0,
        le=1000,
        description="a device that fired on its own in an empty home (nothing else indoors, "
        "then the door) on this many days is, alone, not someone home (0: never learned)",
    )
    corroborate_s: float = Field(
        300.0,
        gt=0,
        le=3600,
        description="such a device is someone home after all with the outer door or another "
        "device within this long before it",
    )


class NotReturnedSettings(NightWindowSettings):
    max_hours: float = Field(
        12.0,
        gt=0,
        le=96,
        description="away longer than this (before learning, or her longest absence so far × "
        "duration_factor if longer; the learned limit is at least this)",
    )
    by_night: bool = Field(
        True,
        description="also raise if still away by night: at the learned usual latest return "
        "+ margin_minutes (before learning: night_start, or her latest evening return so far "
        "+ margin_minutes if later; never earlier than night_start, never later than "
        "latest_night_deadline)",
    )
    margin_minutes: float = Field(
        60.0, ge=0, le=240, description="learned usual latest return + this = night deadline"
    )
    latest_night_deadline: LocalTime = Field(
        "03:00",
        description="the learned night deadline is at most this (local, after midnight "
        "if before night_end); a safe ceiling, later than ordinary late evenings out",
    )
    learn_days: int = Field(7, ge=1, le=60, description="days of data before learning")
    min_evenings: int = Field(
        3, ge=1, le=28, description="evenings out with a known return needed to learn"
    )
    evening_start: LocalTime = Field(
        "21:00",
        description="an evening out is an absence that ends after this and before night_end "
        "next morning (out at this time or later; night_start if that is earlier in the "
        "evening): only those teach the usual latest return",
    )
    max_hours_cap: float = Field(
        24.0,
        gt=0,
        le=96,
        description="the learned absence limit is at most this (or max_hours, if higher)",
    )
    duration_factor: float = Field(
        1.5,
        ge=1,
        le=4,
        description="learned absence limit = usual long absence (upper quartile of each "
        "day's longest) × this",
    )
    min_absences: int = Field(
        5, ge=1, le=28, description="days with an absence needed to learn the absence limit"
    )
    planned_absence_until: LocalDateTime | None = Field(
        None,
        description='a declared absence ("at my daughter\'s until Sunday 18:00"), local '
        "YYYY-MM-DDTHH:MM: no not_returned alert before this + margin_minutes; not learned from",
    )

    @model_validator(mode="after")
    def _check(self) -> NotReturnedSettings:
        if self.planned_absence_until is not None:
            try:
                datetime.fromisoformat(self.planned_absence_until)
            except ValueError as exc:
                raise ValueError(f"planned_absence_until: {exc}") from None
        return self


class NotUpSettings(RuleSettings):
    default_deadline: LocalTime = Field(
        "10:00",
        description="deadline before learning (or her latest wake time so far + margin_hours, "
        "if later, at most latest_deadline)",
    )
    margin_hours: float = Field(2.0, ge=0, le=12, description="learned wake time + this")
    day_start: LocalTime = Field(
        "04:00", description="movement outside bedroom and bathroom after this = got up"
    )
    latest_deadline: LocalTime = Field("13:00", description="learned deadline is at most this")
    learn_days: int = Field(7, ge=1, le=60, description="days of wake times before learning")
    night_start: LocalTime = Field(
        "22:00",
        description="home from an absence after this (and before day_start): that morning's "
        "deadline is later by as much, at most latest_deadline (a late night ends late); also "
        "home through the front door after `absence.away_after_minutes` of a quiet home (no "
        "movement, no mat or radar reporting anyone) with movement inside just after, though "
        "the going out was not seen (not with a resident flagged dementia)",
    )


class VitalsSettings(RuleSettings):
    heart_rate_min: float = Field(40.0, gt=0, le=300, description="bpm")
    heart_rate_max: float = Field(120.0, gt=0, le=300, description="bpm")
    breathing_rate_min: float = Field(8.0, gt=0, le=100, description="breaths per minute")
    breathing_rate_max: float = Field(30.0, gt=0, le=100, description="breaths per minute")
    minutes: float = Field(5.0, gt=0, le=120, description="out of range for longer than this")


class DeviceOfflineSettings(RuleSettings):
    factor: float = Field(
        2.0, ge=1.0, le=20, description="silent for factor × the device's report_interval_s"
    )


class SiteOfflineSettings(RuleSettings):
    factor: float = Field(
        2.0, ge=1.0, le=20, description="a device is silent after factor × its report interval"
    )
    silent_devices: int = Field(
        2,
        ge=1,
        le=10_000,
        description="the site is offline once this many devices are overdue with nothing heard"
        " from the site since the first of them was due (or every device still reporting, if"
        " fewer); device_offline holds an overdue device until the site is heard, and does not"
        " raise it if that silence was such an outage",
    )


class LowBatterySettings(RuleSettings):
    below_percent: float = Field(15.0, ge=0, le=100, description="raise below this")
    clear_at_percent: float = Field(20.0, ge=0, le=100, description="clear at or above this")

    @model_validator(mode="after")
    def _hysteresis(self) -> LowBatterySettings:
        if self.clear_at_percent < self.below_percent:
            raise ValueError("clear_at_percent must be at least below_percent")
        return self


class TamperSettings(RuleSettings):
    pass


class HazardAlarmSettings(RuleSettings):
    """Smoke, gas, carbon monoxide and water leak: the detector decides; nothing to tune
    besides switching a rule off (e.g. a gas alarm wired to a separate fire panel)."""


class HeatSettings(RuleSettings):
    limit_c: float = Field(30.0, ge=20, le=45, description="indoor temperature at or above this")
    sustained_minutes: float = Field(
        120.0, gt=0, le=1440, description="...for this long raises a heat-risk alert"
    )
    fast_rise_c: float = Field(
        3.0, gt=0, le=20, description="at or above the limit and risen this much..."
    )
    fast_rise_minutes: float = Field(
        60.0, gt=0, le=360, description="...within this raises at once (rising fast)"
    )
    clear_margin_c: float = Field(
        1.0, ge=0, le=10, description="clears once below the limit by this (no flapping)"
    )


class ColdSettings(NightWindowSettings):
    limit_c: float = Field(16.0, ge=0, le=25, description="indoor temperature at or below this")
    sustained_minutes: float = Field(
        60.0, gt=0, le=720, description="...for this long within the night window raises"
    )
    clear_margin_c: float = Field(
        1.0, ge=0, le=10, description="clears once above the limit by this (no flapping)"
    )
    night_end: LocalTime = Field("07:00", description="end of the night window, local")


class RoutineDeviationSettings(RuleSettings):
    baseline_days: int = Field(14, ge=3, le=120, description="days of baseline before judging")
    z_threshold: float = Field(3.0, gt=0, le=20, description="|z| of today's activity rate")
    min_ratio: float = Field(
        0.5, gt=0, le=1, description="and today's rate below this × usual, or above 1/this"
    )
    min_home_hours: float = Field(8.0, gt=0, le=24, description="days with less time home skip")


# Rule name → settings model. The catalogue adds models of rules built elsewhere.
SETTINGS_MODELS: dict[str, type[RuleSettings]] = {
    "sos": SosSettings,
    "fall": FallSettings,
    "bed_exit_no_return": BedExitSettings,
    "bathroom_too_long": BathroomSettings,
    "inactivity": InactivitySettings,
    "absence": AbsenceSettings,
    "night_door_exit": NightDoorExitSettings,
    "not_returned": NotReturnedSettings,
    "not_up": NotUpSettings,
    "vitals": VitalsSettings,
    "device_offline": DeviceOfflineSettings,
    "site_offline": SiteOfflineSettings,
    "low_battery": LowBatterySettings,
    "tamper": TamperSettings,
    "routine_deviation": RoutineDeviationSettings,
    "smoke": HazardAlarmSettings,
    "gas": HazardAlarmSettings,
    "carbon_monoxide": HazardAlarmSettings,
    "water_leak": HazardAlarmSettings,
    "heat": HeatSettings,
    "cold": ColdSettings,
}

Overrides = Mapping[str, Mapping[str, Any]]
ResolvedSettings = dict[str, BaseModel]


class DetectorSettingsError(EldercareError, ValueError):
    """An override that does not fit its rule; the message says where it came from."""


def _where(site_id: str | None, resident_id: str | None) -> str:
    if site_id is None:
        return "global detector settings"
    if resident_id is None:
        return f"site {site_id!r}"
    return f"site {site_id!r} resident {resident_id!r}"


def _check_layer(
    layer: Overrides,
    models: Mapping[str, type[BaseModel]],
    site_id: str | None,
    resident_id: str | None,
) -> None:
    where = _where(site_id, resident_id)
    for rule, values in layer.items():
        model = models.get(rule)
        if model is None:
            known = ", ".join(sorted(models))
            raise DetectorSettingsError(f"{where}: unknown detector rule {rule!r} (known: {known})")
        if not isinstance(values, Mapping):
            raise DetectorSettingsError(
                f"{where}: rule {rule!r} overrides must be a mapping of key: value"
            )
        for key in values:
            if key not in model.model_fields:
                known = ", ".join(sorted(model.model_fields))
                raise DetectorSettingsError(
                    f"{where}: rule {rule!r} has no setting {key!r} (known: {known})"
                )


def resolve_settings(
    global_overrides: Overrides | None = None,
    site_overrides: Overrides | None = None,
    resident_overrides: Overrides | None = None,
    *,
    site_id: str | None = None,
    resident_id: str | None = None,
    models: Mapping[str, type[BaseModel]] | None = None,
) -> ResolvedSettings:
    """Every rule's settings after merging the layers, key by key (later layers win).

    Shared, not copied: equal layers (by content) give the same dict, and equal merged
    settings of a rule the same frozen model, so the many sites and residents without
    overrides hold one set between them. Do not mutate the result."""
    models = SETTINGS_MODELS if models is None else models
    layers: list[tuple[Overrides, str | None, str | None]] = [
        (global_overrides or {}, None, None),
        (site_overrides or {}, site_id, None),
        (resident_overrides or {}, site_id, resident_id),
    ]
    model_key = tuple(models.items())
    key = (model_key, *(_canonical(layer) for layer, _, _ in layers))
    found = _RESOLVED.get(key)
    if found is not None:
        return found  # the same content was checked and validated before
    for layer, sid, rid in layers:
        _check_layer(layer, models, sid, rid)
    resolved: ResolvedSettings = {}
    for rule, model in models.items():
        merged: dict[str, Any] = {}
        for layer, _, _ in layers:
            merged.update(layer.get(rule, {}))
        rule_key = (model, _canonical(merged))
        shared = _VALIDATED.get(rule_key)
        if shared is not None:
            resolved[rule] = shared
            continue
        try:
            resolved[rule] = _remember(_VALIDATED, rule_key, model.model_validate(merged))
        except ValidationError as exc:
            # Name the most specific layer that set a failing key.
            bad_keys = {str(err["loc"][0]) for err in exc.errors() if err["loc"]}
            source = "defaults"
            for layer, sid, rid in layers:
                if bad_keys & set(layer.get(rule, {})) or (not bad_keys and rule in layer):
                    source = _where(sid, rid)
            problems = "; ".join(
                f"{'.'.join(str(p) for p in err['loc']) or rule}: {err['msg']}"
                for err in exc.errors()
            )
            raise DetectorSettingsError(
                f"{source}: invalid settings for rule {rule!r}: {problems}"
            ) from exc
    return _remember(_RESOLVED, key, resolved)


# Memo of validated settings by content. Bounded: a registry of many distinct overrides
# starts the memo afresh rather than growing without end.
_MEMO_MAX = 10_000
_RESOLVED: dict[tuple[Any, ...], ResolvedSettings] = {}
_VALIDATED: dict[tuple[type[BaseModel], str], BaseModel] = {}

_T = TypeVar("_T")


def _remember(memo: dict[Any, _T], key: Any, value: _T) -> _T:
    if len(memo) >= _MEMO_MAX:
        memo.clear()
    memo[key] = value
    return value


def _canonical(layer: Mapping[str, Any]) -> str:
    """The content of an override layer as a key: equal content, equal key."""
    return json.dumps(layer, sort_keys=True, default=repr)
