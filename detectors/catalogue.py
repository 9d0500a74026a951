"""The detector catalogue: every rule the platform runs, and how to build it for a site.

One entry per rule: its name (the settings key and the snapshot key), the settings
model its overrides are checked against, a factory taking the site's
`SiteContext`, and which sites it applies to (a fall rule is pointless without a
fall radar). The runtime builds every applicable, enabled entry per site; rules
built elsewhere (the per-device wearable fall detector) are hosted the same way.
A site with any rule that reads the resident picture gets one `ResidentStateModel`
(`resident_state.py`), first in its set so it takes each reading before the rules;
those rules read its view.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel

from detectors.base import Detector
from detectors.bathroom_too_long import BathroomRule
from detectors.bed_exit_no_return import BedExitRule
from detectors.device_offline import DeviceOfflineRule
from detectors.fall import FallRule
from detectors.hazard_alarm import CarbonMonoxideRule, GasRule, SmokeRule, WaterLeakRule
from detectors.inactivity import InactivityRule
from detectors.indoor_temperature import ColdRule, HeatRule
from detectors.low_battery import LowBatteryRule
from detectors.night_door_exit import NightDoorExitRule
from detectors.not_returned import NotReturnedRule
from detectors.not_up import NotUpRule
from detectors.per_device import PerDeviceDetector
from detectors.resident_state import NAME as PICTURE_NAME
from detectors.resident_state import ResidentPicture, ResidentStateModel
from detectors.routine_deviation import RoutineDeviationRule
from detectors.rule import Rule
from detectors.settings import (
    SETTINGS_MODELS,
    AbsenceSettings,
    DetectorSettingsError,
    Overrides,
    resolve_settings,
)
from detectors.site_context import DEMENTIA, SiteContext
from detectors.site_offline import SiteOfflineRule
from detectors.sos import SosRule
from detectors.tamper import TamperRule
from detectors.vitals import VitalsRule
from eldercare.domain import AlertKind, DeviceKind, Stream
from eldercare.registry_model import Device, RegistryDocument, Site

if TYPE_CHECKING:
    from eldercare.registry_apply import Problem


@dataclass(frozen=True, slots=True)
class CatalogueEntry:
    name: str
    settings_model: type[BaseModel]
    factory: Callable[[SiteContext], Detector]
    applies: Callable[[SiteContext], bool] = lambda ctx: True
    reads_picture: bool = False  # the factory takes `picture=` (the site's shared view)

    def build(self, ctx: SiteContext, picture: ResidentPicture | None) -> Detector:
        if self.reads_picture and picture is not None:
            return self.factory(ctx, picture=picture)  # type: ignore[call-arg]
        return self.factory(ctx)


def _has(*kinds: DeviceKind) -> Callable[[SiteContext], bool]:
    return lambda ctx: any(d.kind in kinds for d in ctx.site.devices)


# Devices that may carry a hazard alarm (a combined smoke and CO alarm is one device).
_HAZARD_DEVICES = (
    DeviceKind.SMOKE_ALARM,
    DeviceKind.GAS_ALARM,
    DeviceKind.CO_ALARM,
    DeviceKind.WATER_LEAK,
)


def _has_activity_sensors(ctx: SiteContext) -> bool:
    return any(
        d.kind in (DeviceKind.MOTION, DeviceKind.DOOR, DeviceKind.FLUSH, DeviceKind.PRESENCE)
        for d in ctx.site.devices
    )


def _home(applies: Callable[[SiteContext], bool]) -> Callable[[SiteContext], bool]:
    """A home-only rule: an institution's residents do not come and go by a front door,
    and one ward's activity is no resident's routine."""
    return lambda ctx: not ctx.is_institution and applies(ctx)


def _judges_someone(ctx: SiteContext) -> bool:
    return _has_activity_sensors(ctx) and (
        not ctx.resident_ids or any(ctx.judges_activity(r) for r in ctx.resident_ids)
    )


def _night_door_watched(ctx: SiteContext) -> bool:
    if not ctx.has_outer_door():
        return False
    return not ctx.is_institution or any(ctx.has_flag(r, DEMENTIA) for r in ctx.resident_ids)


def _entry(
    rule: type[Rule[Any]], applies: Callable[[SiteContext], bool] | None = None
) -> CatalogueEntry:
    name = rule.name
    return CatalogueEntry(
        name=name,
        settings_model=SETTINGS_MODELS[name],
        factory=rule,
        applies=applies or (lambda ctx: True),
        reads_picture=rule.reads_picture,
    )


def _wearable_fall_entry() -> CatalogueEntry:
    """The wearable fall detector works per wearable device; one per wearable of the site."""
    from detectors.wearable_fall import WearableFallDetector, WearableFallSettings

    def inner(ctx: SiteContext, device: Device) -> Detector:
        resident = device.resident or (ctx.resident_ids[0] if len(ctx.resident_ids) == 1 else None)
        return WearableFallDetector(
            ctx.site_id,
            resident,
            device.id,
            ctx.device_room(device.id),
            ctx.settings("wearable_fall", WearableFallSettings, resident),
        )

    def factory(ctx: SiteContext) -> Detector:
        return PerDeviceDetector(
            ctx,
            (AlertKind.WEARABLE_FALL,),
            lambda d: d.kind == DeviceKind.WEARABLE,
            inner,
            event_time_streams=frozenset({Stream.ACCEL}),
        )

    return CatalogueEntry(
        name="wearable_fall",
        settings_model=WearableFallSettings,
        factory=factory,
        applies=_has(DeviceKind.WEARABLE),
    )


def _build_catalogue() -> dict[str, CatalogueEntry]:
    entries = [
        _entry(SosRule, _has(DeviceKind.SOS_BUTTON, DeviceKind.WEARABLE)),
        _entry(FallRule, _has(DeviceKind.FALL_RADAR)),
        _entry(BedExitRule, _has(DeviceKind.BED)),
        _entry(BathroomRule, lambda ctx: any(ctx.is_bathroom(r.id) for r in ctx.site.rooms)),
        _entry(InactivityRule, _judges_someone),
        _entry(NightDoorExitRule, _night_door_watched),
        _entry(NotReturnedRule, _home(lambda ctx: ctx.has_outer_door())),
        _entry(NotUpRule, _judges_someone),
        _entry(VitalsRule, _has(DeviceKind.BED, DeviceKind.VITALS)),
        _entry(DeviceOfflineRule, lambda ctx: bool(ctx.site.devices)),
        _entry(SiteOfflineRule, lambda ctx: bool(ctx.site.devices)),
        _entry(LowBatteryRule, lambda ctx: bool(ctx.site.devices)),
        _entry(TamperRule, lambda ctx: bool(ctx.site.devices)),
        _entry(RoutineDeviationRule, _home(_has_activity_sensors)),
        _entry(SmokeRule, _has(*_HAZARD_DEVICES)),
        _entry(GasRule, _has(*_HAZARD_DEVICES)),
        _entry(CarbonMonoxideRule, _has(*_HAZARD_DEVICES)),
        _entry(WaterLeakRule, _has(*_HAZARD_DEVICES)),
        _entry(HeatRule, _has(DeviceKind.CLIMATE, *_HAZARD_DEVICES)),
        _entry(ColdRule, _has(DeviceKind.CLIMATE, *_HAZARD_DEVICES)),
    ]
    entries.append(_wearable_fall_entry())
    return {e.name: e for e in entries}


CATALOGUE: dict[str, CatalogueEntry] = _build_catalogue()


def settings_models() -> dict[str, type[BaseModel]]:
    """Every settings model the overrides of a site are checked against."""
    models: dict[str, type[BaseModel]] = {"absence": AbsenceSettings}
    models.update({name: e.settings_model for name, e in CATALOGUE.items()})
    return models


def site_context(site: Site, global_overrides: Overrides | None = None) -> SiteContext:
    """A site's context; raises `DetectorSettingsError` naming a bad override."""
    return SiteContext(site, global_overrides, settings_models())


def build_site_detectors(ctx: SiteContext) -> dict[str, Detector]:
    """Every catalogue rule that applies to the site and is enabled for someone there,
    after the site's resident picture if any of them reads it."""
    entries = [e for e in CATALOGUE.values() if e.applies(ctx) and ctx.rule_enabled(e.name)]
    return _with_picture(ctx, entries)


def all_detectors(ctx: SiteContext) -> dict[str, Detector]:
    """Every catalogue rule for the site, applicable or not (for checks and tests)."""
    return _with_picture(ctx, list(CATALOGUE.values()))


def _with_picture(ctx: SiteContext, entries: list[CatalogueEntry]) -> dict[str, Detector]:
    out: dict[str, Detector] = {}
    picture: ResidentPicture | None = None
    if any(e.reads_picture for e in entries):
        model = ResidentStateModel(ctx)
        out[PICTURE_NAME] = model
        picture = model.view
    for entry in entries:
        out[entry.name] = entry.build(ctx, picture)
    return out


def validate_overrides(sites: list[Site], global_overrides: Overrides | None = None) -> None:
    """Check every site's and resident's overrides (e.g. before applying a registry)."""
    for site in sites:
        site_context(site, global_overrides)


def registry_problems(doc: RegistryDocument) -> list[Problem]:
    """Every bad `detectors:` override of a registry document, as registry problems with
    the key path of the rule (`sites[hh-401].residents[zhang].detectors.inactivity`), for
    `registry apply` to refuse the file before it changes anything."""
    from eldercare.registry_apply import Problem  # the registry's error type, only here

    models = settings_models()
    out: list[Problem] = []
    for site in doc.sites:
        good_site_rules: dict[str, Any] = {}
        for rule, values in site.detectors.items():
            try:
                resolve_settings(None, {rule: values}, None, site_id=site.id, models=models)
            except DetectorSettingsError as exc:
                out.append(Problem(f"sites[{site.id}].detectors.{rule}", str(exc)))
            else:
                good_site_rules[rule] = values
        for resident in site.residents:
            for rule, values in resident.detectors.items():
                site_layer = {rule: good_site_rules[rule]} if rule in good_site_rules else {}
                try:
                    resolve_settings(
                        None,
                        site_layer,
                        {rule: values},
                        site_id=site.id,
                        resident_id=resident.id,
                        models=models,
                    )
                except DetectorSettingsError as exc:
                    path = f"sites[{site.id}].residents[{resident.id}].detectors.{rule}"
                    out.append(Problem(path, str(exc)))
    return out
