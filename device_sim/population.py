"""A seeded population of homes and institutions around Binzhou, and its registry file.

Homes sit in communities under the organisation tree 滨州市/滨城区/<street>/<community>;
institutions are care homes with floors, rooms and beds. `registry_document()` gives
the `RegistryDocument` the platform applies, so `eldercare registry apply` and
`eldercare sim` describe the same devices.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from device_sim.device import REPORT_INTERVAL_S, Z2M_KINDS, SimDevice
from device_sim.resident import Profile, ResidentSpec
from device_sim.routine import Calendar
from device_sim.site import SimSite
from eldercare.domain import DeviceKind, RoomKind, SiteKind
from eldercare.registry_model import Bed, Contact, RegistryDocument, Room

CITY, DISTRICT = "滨州市", "滨城区"
CENTRE = (37.38, 117.97)

STREETS: dict[str, list[str]] = {
    "市中街道": ["黄河社区", "渤海社区", "新立河社区"],
    "市东街道": ["东城社区", "梧桐社区"],
    "市西街道": ["西城社区", "丽景社区"],
    "北镇街道": ["北镇社区", "凤凰社区"],
    "彭李街道": ["彭李社区", "中海社区"],
    "滨北街道": ["滨北社区"],
    "梁才街道": ["梁才社区"],
}
ROADS = ["黄河五路", "黄河七路", "渤海八路", "渤海十路", "长江一路", "黄河十二路", "渤海十八路"]
INSTITUTION_NAMES = ["颐康养老院", "福寿养老中心", "康乐颐养院", "夕阳红护理院"]

SURNAMES = list(
    "王李张刘陈杨赵黄周吴徐孙胡朱高林何郭马罗梁宋郑谢韩唐冯于董程曹袁邓许傅沈曾彭吕苏卢蒋蔡贾丁魏薛叶"
)


def _words(text: str) -> list[str]:
    return text.split()


ELDER_F = _words(
    "秀英 桂英 秀兰 玉兰 桂兰 秀珍 凤英 玉珍 玉英 兰英 "
    "淑珍 淑英 素珍 秀云 桂珍 春兰 翠兰 玉梅 秀荣 金凤"
)
ELDER_M = _words(
    "建国 国华 德福 振华 志强 洪亮 文明 保国 长海 金山 "
    "宝林 德胜 树森 玉田 永福 庆祥 春生 连喜 广才 德明"
)
YOUNG = _words("丽 娜 敏 静 伟 强 磊 军 勇 芳 海燕 红梅 建军 志刚 晓东 卫东 红霞 丽娟 晓燕 海涛")

HOME_ROOMS = [
    ("bedroom", RoomKind.BEDROOM, "卧室"),
    ("bathroom", RoomKind.BATHROOM, "卫生间"),
    ("kitchen", RoomKind.KITCHEN, "厨房"),
    ("living", RoomKind.LIVING, "客厅"),
    ("entrance", RoomKind.ENTRANCE, "门厅"),
]

# Each home's hazard detectors: (label, kind, room).
HAZARD_KIT = [
    ("smoke", DeviceKind.SMOKE_ALARM, "kitchen"),
    ("gas", DeviceKind.GAS_ALARM, "kitchen"),
    ("leak", DeviceKind.WATER_LEAK, "bathroom"),
    ("climate", DeviceKind.CLIMATE, "living"),
]

FLAGS: dict[Profile, list[str]] = {
    Profile.INDEPENDENT: [],
    Profile.FRAIL: ["frail"],
    Profile.DEMENTIA: ["dementia"],
    Profile.BED_BOUND: ["bed_bound"],
}


@dataclass(frozen=True, slots=True)
class PopulationConfig:
    homes: int = 10
    institutions: int = 0
    seed: int = 1
    fmt: str = "native"  # native | z2m | mixed
    z2m_share: float = 0.3  # of homes, when fmt is mixed
    wearable_share: float = 0.2
    vitals_share: float = 0.3
    institution_floors: int = 3
    rooms_per_floor: int = 8
    # Apprise URL templates for every contact; {site}, {contact}, {resident} are filled in.
    apprise: tuple[str, ...] = field(default_factory=tuple)


class _Names:
    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        self.used: set[str] = set()

    def elder(self, sex: str) -> tuple[str, str]:
        for _ in range(200):
            surname = self.rng.choice(SURNAMES)
            name = surname + self.rng.choice(ELDER_F if sex == "f" else ELDER_M)
            if name not in self.used:
                self.used.add(name)
                return surname, name
        return surname, name

    def child(self, surname: str) -> str:
        family = surname if self.rng.random() < 0.6 else self.rng.choice(SURNAMES)
        return family + self.rng.choice(YOUNG)


def _phone(rng: random.Random) -> str:
    return "1" + rng.choice("3578") + "".join(rng.choice("0123456789") for _ in range(9))


def _profile(rng: random.Random) -> Profile:
    x = rng.random()
    return Profile.INDEPENDENT if x < 0.5 else Profile.FRAIL if x < 0.8 else Profile.DEMENTIA


def _device(
    rng: random.Random,
    dev_id: str,
    kind: DeviceKind,
    room: str | None,
    *,
    resident: str | None = None,
    bed: str | None = None,
    outer_door: bool = False,
    room_door: bool = False,
    z2m_name: str | None = None,
) -> SimDevice:
    interval = REPORT_INTERVAL_S[kind]
    drain = {
        DeviceKind.MOTION: (0.08, 0.2),
        DeviceKind.DOOR: (0.04, 0.1),
        DeviceKind.SOS_BUTTON: (0.02, 0.05),
        DeviceKind.BED: (0.05, 0.1),
        DeviceKind.WEARABLE: (1.5, 3.0),
    }.get(kind, (0.0, 0.0))
    return SimDevice(
        id=dev_id,
        kind=kind,
        room=room,
        resident=resident,
        bed=bed,
        outer_door=outer_door,
        room_door=room_door,
        z2m_name=z2m_name if kind in Z2M_KINDS else None,
        report_interval_s=interval,
        phase=rng.uniform(0, interval * 0.95),
        battery_start=round(rng.uniform(55, 100), 1),
        battery_drain_per_day=rng.uniform(*drain),
        link_base=rng.randint(60, 220),
    )


def _contacts(
    rng: random.Random,
    names: _Names,
    cfg: PopulationConfig,
    site_id: str,
    resident_id: str,
    surname: str,
    prefix: str,
    count: int,
) -> list[Contact]:
    out: list[Contact] = []
    for i in range(count):
        cid = f"{prefix}-c{i + 1}"
        fields = {"site": site_id, "contact": cid, "resident": resident_id}
        out.append(
            Contact(
                id=cid,
                name=names.child(surname),
                role="family",
                phone=_phone(rng),
                language="en" if rng.random() < 0.1 else "zh-CN",
                residents=[resident_id],
                apprise=[t.format(**fields) for t in cfg.apprise],
                order=i,
                daily_summary="20:00" if rng.random() < 0.5 else None,
            )
        )
    return out


def build_home(
    cfg: PopulationConfig, index: int, z2m: bool, rng: random.Random, names: _Names
) -> SimSite:
    site_id = f"hh-{index:04d}"
    street = rng.choice(sorted(STREETS))
    community = rng.choice(STREETS[street])
    sex = "f" if rng.random() < 0.62 else "m"
    surname, name = names.elder(sex)
    profile = _profile(rng)
    resident_id = f"{site_id}-r1"
    places = {place: place for place, _, _ in HOME_ROOMS}
    resident = ResidentSpec(
        id=resident_id,
        name=name,
        profile=profile,
        birth_year=rng.randint(1930, 1956),
        sex=sex,
        places=places,
        flags=FLAGS[profile] + (["hypertension"] if rng.random() < 0.4 else []),
    )

    def zname(room: str, what: str) -> str | None:
        return f"{site_id}/{room}/{what}" if z2m else None

    devices = [_device(rng, f"{site_id}-gw", DeviceKind.GATEWAY, None)]
    for room, _, _ in HOME_ROOMS:
        devices.append(
            _device(
                rng,
                f"{site_id}-pir-{room}",
                DeviceKind.MOTION,
                room,
                z2m_name=zname(room, "motion"),
            )
        )
    devices += [
        _device(rng, f"{site_id}-door-entrance", DeviceKind.DOOR, "entrance", outer_door=True,
                z2m_name=zname("entrance", "door")),
        _device(rng, f"{site_id}-door-bathroom", DeviceKind.DOOR, "bathroom", room_door=True,
                z2m_name=zname("bathroom", "door")),
        _device(rng, f"{site_id}-bed", DeviceKind.BED, "bedroom", resident=resident_id,
                z2m_name=zname("bedroom", "bed")),
        _device(rng, f"{site_id}-radar-bathroom", DeviceKind.FALL_RADAR, "bathroom",
                z2m_name=zname("bathroom", "radar")),
        _device(rng, f"{site_id}-sos", DeviceKind.SOS_BUTTON, "bedroom", resident=resident_id,
                z2m_name=zname("bedroom", "sos")),
    ]  # fmt: skip
    wearable_p = cfg.wearable_share * (2.0 if profile is Profile.DEMENTIA else 1.0)
    if rng.random() < wearable_p:
        devices.append(
            _device(rng, f"{site_id}-wearable", DeviceKind.WEARABLE, None, resident=resident_id)
        )
    if rng.random() < cfg.vitals_share:
        devices.append(
            _device(rng, f"{site_id}-vitals", DeviceKind.VITALS, "bedroom", resident=resident_id)
        )
    # The home's safety kit (smoke, gas, leak, a thermometer), drawn from its own random
    # stream so the rest of the population stays as it was for a seed.
    kit = random.Random(f"{cfg.seed}|{site_id}|hazards")
    devices += [
        _device(kit, f"{site_id}-{label}", kind, room, z2m_name=zname(room, label))
        for label, kind, room in HAZARD_KIT
    ]
    lat = CENTRE[0] + rng.uniform(-0.04, 0.04)
    lon = CENTRE[1] + rng.uniform(-0.05, 0.05)
    bldg, unit, floor, door = (
        rng.randint(1, 24),
        rng.randint(1, 4),
        rng.randint(1, 6),
        rng.randint(1, 2),
    )
    contacts = _contacts(
        rng, names, cfg, site_id, resident_id, surname, site_id, 1 + (rng.random() < 0.6)
    )
    return SimSite(
        id=site_id,
        kind=SiteKind.HOME,
        name=f"{name}家",
        organisation=f"{CITY}/{DISTRICT}/{street}/{community}",
        address=(
            f"{CITY}{DISTRICT}{rng.choice(ROADS)}{rng.randint(100, 899)}号 "
            f"{community}{bldg}号楼{unit}单元{floor}0{door}"
        ),
        latitude=round(lat, 5),
        longitude=round(lon, 5),
        rooms=[Room(id=r, kind=k, name=n) for r, k, n in HOME_ROOMS],
        residents=[resident],
        devices=devices,
        contacts=contacts,
        fmt="z2m" if z2m else "native",
    )


def build_institution(
    cfg: PopulationConfig, index: int, rng: random.Random, names: _Names
) -> SimSite:
    site_id = f"inst-{index:02d}"
    title = INSTITUTION_NAMES[(index - 1) % len(INSTITUTION_NAMES)]
    rooms: list[Room] = [
        Room(id="lobby", kind=RoomKind.ENTRANCE, name="大厅", floor="1F"),
        Room(id="dining", kind=RoomKind.DINING, name="餐厅", floor="1F"),
    ]
    devices = [
        _device(rng, f"{site_id}-gw", DeviceKind.GATEWAY, None),
        _device(rng, f"{site_id}-door-lobby", DeviceKind.DOOR, "lobby", outer_door=True),
        _device(rng, f"{site_id}-pir-lobby", DeviceKind.MOTION, "lobby"),
        _device(rng, f"{site_id}-pir-dining", DeviceKind.MOTION, "dining"),
    ]
    beds: list[Bed] = []
    residents: list[ResidentSpec] = []
    contacts: list[Contact] = []
    for f in range(1, cfg.institution_floors + 1):
        floor = f"{f}F"
        corridor, lounge = f"{floor}-corridor", f"{floor}-lounge"
        rooms.append(Room(id=corridor, kind=RoomKind.CORRIDOR, name=f"{f}楼走廊", floor=floor))
        rooms.append(Room(id=lounge, kind=RoomKind.LIVING, name=f"{f}楼活动室", floor=floor))
        devices.append(_device(rng, f"{site_id}-pir-{corridor}", DeviceKind.MOTION, corridor))
        devices.append(_device(rng, f"{site_id}-pir-{lounge}", DeviceKind.MOTION, lounge))
        for n in range(1, cfg.rooms_per_floor + 1):
            room, wc = f"{f}{n:02d}", f"{f}{n:02d}-wc"
            rooms.append(Room(id=room, kind=RoomKind.BEDROOM, name=f"{room}房间", floor=floor))
            rooms.append(Room(id=wc, kind=RoomKind.BATHROOM, name=f"{room}卫生间", floor=floor))
            devices += [
                _device(rng, f"{site_id}-pir-{room}", DeviceKind.MOTION, room),
                _device(rng, f"{site_id}-pir-{wc}", DeviceKind.MOTION, wc),
                _device(rng, f"{site_id}-door-{wc}", DeviceKind.DOOR, wc, room_door=True),
                _device(rng, f"{site_id}-radar-{wc}", DeviceKind.FALL_RADAR, wc),
            ]
            for b in (1, 2):
                bed_id = f"{room}-{b}"
                beds.append(Bed(id=bed_id, room=room, name=bed_id))
                if rng.random() > 0.9:
                    continue  # an empty bed
                x = rng.random()
                profile = (
                    Profile.BED_BOUND
                    if x < 0.35
                    else Profile.FRAIL
                    if x < 0.7
                    else Profile.DEMENTIA
                    if x < 0.9
                    else Profile.INDEPENDENT
                )
                sex = "f" if rng.random() < 0.6 else "m"
                surname, name = names.elder(sex)
                rid = f"{site_id}-{bed_id}"
                residents.append(
                    ResidentSpec(
                        id=rid,
                        name=name,
                        profile=profile,
                        birth_year=rng.randint(1925, 1950),
                        sex=sex,
                        places={
                            "bedroom": room,
                            "bathroom": wc,
                            "kitchen": "dining",
                            "living": lounge,
                            "entrance": corridor,
                        },
                        bed_id=bed_id,
                        can_go_out=False,
                        flags=FLAGS[profile],
                    )
                )
                kinds = [("bed", DeviceKind.BED), ("sos", DeviceKind.SOS_BUTTON)]
                if profile is Profile.BED_BOUND or rng.random() < cfg.vitals_share:
                    kinds.append(("vitals", DeviceKind.VITALS))
                for label, kind in kinds:
                    devices.append(
                        _device(
                            rng,
                            f"{site_id}-{label}-{bed_id}",
                            kind,
                            room,
                            resident=rid,
                            bed=bed_id if kind is DeviceKind.BED else None,
                        )
                    )
                contacts += _contacts(rng, names, cfg, site_id, rid, surname, rid, 1)
    return SimSite(
        id=site_id,
        kind=SiteKind.INSTITUTION,
        name=f"{CITY}{title}",
        organisation=f"{CITY}/{DISTRICT}/{title}",
        address=f"{CITY}{DISTRICT}{rng.choice(ROADS)}{rng.randint(100, 899)}号",
        latitude=round(CENTRE[0] + rng.uniform(-0.03, 0.03), 5),
        longitude=round(CENTRE[1] + rng.uniform(-0.04, 0.04), 5),
        rooms=rooms,
        beds=beds,
        residents=residents,
        devices=devices,
        contacts=contacts,
    )


def build_population(cfg: PopulationConfig, calendar: Calendar) -> list[SimSite]:
    rng = random.Random(f"{cfg.seed}|population")
    names = _Names(rng)
    sites: list[SimSite] = []
    for i in range(1, cfg.homes + 1):
        z2m = cfg.fmt == "z2m" or (cfg.fmt == "mixed" and rng.random() < cfg.z2m_share)
        sites.append(build_home(cfg, i, z2m, rng, names))
    for i in range(1, cfg.institutions + 1):
        sites.append(build_institution(cfg, i, rng, names))
    for site in sites:
        site.attach_routines(cfg.seed, calendar)
    return sites


def registry_document(sites: list[SimSite]) -> RegistryDocument:
    return RegistryDocument(sites=[s.to_registry() for s in sites])


def write_registry(sites: list[SimSite], path: Path) -> RegistryDocument:
    doc = registry_document(sites)
    data = doc.model_dump(mode="json", exclude_defaults=True)
    path.parent.mkdir(parents=True, exist_ok=True)
    header = "# Written by `eldercare sim`: the simulated population. Apply with\n"
    header += "# `eldercare registry apply` before the simulator publishes.\n"
    body = yaml.safe_dump(data, allow_unicode=True, sort_keys=False, width=100)
    path.write_text(header + body, encoding="utf-8")
    return doc
