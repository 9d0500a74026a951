"""The SisFall evaluation command, on a small synthetic dataset in SisFall's layout.

The real dataset is not needed (a user's clone has no shared/): the file is made
here with the same keys and int16 counts, so the protocol (subject-wise folds,
tuning on other subjects, streaming through the real detector) is exercised.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import typer
from typer.testing import CliRunner

from evaluation import cli as eval_cli
from evaluation.sisfall import (
    COUNTS_TO_G,
    NPZ_NAME,
    evaluate,
    format_table,
    load_trials,
    subject_folds,
)
from tests.unit.detectors.test_wearable_fall_signals import UPRIGHT, Signal

SUBJECTS = ("SA01", "SA02", "SA03", "SA04", "SE01", "SE06")


def _counts(sig: Signal) -> np.ndarray:
    return np.round(sig.samples / COUNTS_TO_G).astype(np.int16)


@pytest.fixture(scope="module")
def sisfall_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    trials: dict[str, np.ndarray] = {}
    for n, subject in enumerate(SUBJECTS):
        seed = 100 * n
        trials[f"D01_{subject}_R01"] = _counts(Signal(seed=seed).walk(30))
        trials[f"D07_{subject}_R01"] = _counts(Signal(seed=seed + 1).walk(3).sit_down_hard())
        trials[f"D19_{subject}_R01"] = _counts(
            Signal(seed=seed + 2).still(4).impact(4.0, -UPRIGHT).still(7)
        )
        if subject.startswith("SA") or subject == "SE06":
            for r in (1, 2):
                sig = Signal(seed=seed + 10 + r).walk(5).fall(peak_g=3.0 + r, lie_s=8)
                trials[f"F0{r}_{subject}_R0{r}"] = _counts(sig)
    root = tmp_path_factory.mktemp("sisfall")
    np.savez_compressed(root / NPZ_NAME, **trials)  # type: ignore[arg-type]  # numpy stubs
    return root


def test_folds_partition_the_subjects_and_mix_young_and_older() -> None:
    subjects = [f"SA{i:02d}" for i in range(1, 24)] + [f"SE{i:02d}" for i in range(1, 16)]
    folds = subject_folds(subjects, 5)
    flat = [s for f in folds for s in f]
    assert sorted(flat) == sorted(subjects)
    assert len(flat) == len(set(flat))
    assert all(any(s.startswith("SE") for s in f) for f in folds)
    assert all(any(s.startswith("SA") for s in f) for f in folds)


def test_load_trials_converts_counts_to_g(sisfall_dir: Path) -> None:
    trials = {t.key: t for t in load_trials(sisfall_dir)}
    walk = trials["D01_SA01_R01"]
    assert walk.code == "D01" and walk.subject == "SA01" and not walk.is_fall
    assert np.linalg.norm(walk.acc_g, axis=1).mean() == pytest.approx(1.0, abs=0.1)
    assert trials["F01_SE06_R01"].is_fall and trials["F01_SE06_R01"].older


def test_evaluate_tests_every_subject_once_on_thresholds_tuned_elsewhere(
    sisfall_dir: Path,
) -> None:
    report = evaluate(sisfall_dir, folds=3)
    tested = [s for f in report["folds"] for s in f["test_subjects"]]
    assert sorted(tested) == sorted(SUBJECTS)
    held = report["held_out"]
    assert held["fall_trials"] == 10 and held["adl_trials"] == 18
    # Clean synthetic falls and non-falls: the detector gets them all right.
    assert held["sensitivity"] == 1.0
    assert held["specificity"] == 1.0
    assert held["false_alarms_per_hour"] == 0.0
    assert report["older_adl_SE"]["adl_trials"] == 6
    assert report["older_falls_SE06"]["fall_trials"] == 2
    assert report["stream_vs_tuning_mismatches"] == 0
    assert report["failures_by_activity"] == {}
    text = format_table(report)
    assert "held-out, all" in text and "older ADLs (SE)" in text


def test_evaluate_reports_failures_by_activity(sisfall_dir: Path, tmp_path: Path) -> None:
    """A soft fall (no impact above any grid threshold) is missed and reported under its code."""
    with np.load(sisfall_dir / NPZ_NAME) as npz:
        trials = {k: npz[k] for k in npz.files}
    trials["F03_SA01_R01"] = _counts(Signal(seed=5).walk(5).fall(peak_g=1.3, lie_s=8))
    np.savez_compressed(tmp_path / NPZ_NAME, **trials)
    report = evaluate(tmp_path / NPZ_NAME, folds=2)
    assert report["failures_by_activity"]["F03"]["wrong"] == 1
    assert report["held_out"]["falls_detected"] == report["held_out"]["fall_trials"] - 1


def _eldercare() -> typer.Typer:
    """`eldercare eval ...` as cli.py wires it."""
    root = typer.Typer()
    root.add_typer(eval_cli.app, name="eval")
    return root


def test_cli_prints_json(sisfall_dir: Path) -> None:
    result = CliRunner().invoke(
        _eldercare(),
        ["eval", "wearable-fall", "--sisfall", str(sisfall_dir), "--folds", "2", "--json"],
    )
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    assert doc["held_out"]["sensitivity"] == 1.0
    assert len(doc["folds"]) == 2


def test_cli_rejects_a_missing_dataset(tmp_path: Path) -> None:
    missing = str(tmp_path / "nope")
    result = CliRunner().invoke(
        _eldercare(), ["eval", "wearable-fall", "--sisfall", missing], env={"COLUMNS": "200"}
    )
    assert result.exit_code == 2
    assert "does not exist" in result.output
