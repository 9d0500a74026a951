"""The real homes named on the command line, each through its recording's adapter."""

from __future__ import annotations

from pathlib import Path

from evaluation.real_homes import aras as aras_homes
from evaluation.real_homes import kasteren as kasteren_homes
from evaluation.real_homes.home import Home

# Where each recording lies under `../shared/datasets/` (its README).
KASTEREN_2008_DIR = "kasteren2008"
KASTEREN_2010_DIR = "kasteren2010_houseB"
ARAS_DIR = "aras"


def load_all_homes(datasets: Path) -> list[Home]:
    """Every real home of a datasets folder, in the usual order."""
    return load_homes(
        kasteren=datasets / KASTEREN_2008_DIR,
        kasteren2010=datasets / KASTEREN_2010_DIR,
        aras=datasets / ARAS_DIR,
    )


def load_homes(
    kasteren: Path | None = None, kasteren2010: Path | None = None, aras: Path | None = None
) -> list[Home]:
    homes: list[Home] = []
    if kasteren is not None:
        homes.append(kasteren_homes.kasteren2008(kasteren))
    if kasteren2010 is not None:
        homes.append(kasteren_homes.kasteren2010_house_b(kasteren2010))
    if aras is not None:
        if aras.is_dir():
            homes += [aras_homes.load(aras, "A"), aras_homes.load(aras, "B")]
        else:  # one house's .mat file
            homes.append(aras_homes.load(aras, "A" if "A" in aras.stem[-1:] else "B"))
    return homes
