"""Read a validation run directory (see dmc.validation.files) into one object; every part is
optional, so a report can be written for a run that did only some experiments."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from dmc.validation import files
from dmc.validation.correlation import seed_agreement
from dmc.io import read_json


@dataclass
class RunResults:
    """What one validation run produced. `None` = that part was not run (or not found)."""

    run_dir: Path
    manifest: dict[str, Any] = field(default_factory=dict)
    scores: pd.DataFrame | None = None  # one row per dataset (dmc.scoring's datasets table)
    scores_meta: dict[str, Any] = field(default_factory=dict)
    e1: dict[str, Any] | None = None
    e1_pilots: pd.DataFrame | None = None
    e1_correlations: pd.DataFrame | None = None
    e2: dict[str, Any] | None = None
    e3: dict[str, Any] | None = None

    @property
    def experiments(self) -> list[str]:
        return [n for n in ("e1", "e2", "e3") if getattr(self, n) is not None]

    def seed_agreement(self) -> dict[str, Any] | None:
        """E1's seed agreement and noise ceiling (dmc.validation.seed_agreement); computed from the
        pilots for runs written before e1.json recorded it; None without E1."""
        if not self.e1:
            return None
        return self.e1.get("seed_agreement") or seed_agreement(pd.DataFrame(self.e1["pilots"],
                                                                            columns=["dataset", "seed", "accuracy"]))

    def directions(self) -> dict[str, str]:
        """metric -> declared direction, from E1 or the scores' metadata."""
        if self.e1 and self.e1.get("metrics"):
            return {k: v.get("direction", "none") for k, v in self.e1["metrics"].items()}
        return {k: v.get("direction", "none") for k, v in (self.scores_meta.get("metrics") or {}).items()}


def load_run(run_dir: str | Path) -> RunResults:
    """Read every file the run wrote. Raises when the directory holds none of them."""
    d = Path(run_dir)
    if not d.is_dir():
        raise FileNotFoundError(f"{d}: no such directory (expected the --out directory of `dmc validate`)")
    r = RunResults(run_dir=d)
    if (d / files.MANIFEST).is_file():
        r.manifest = read_json(d / files.MANIFEST)
    sj = d / files.SCORES_DIR / "datasets.json"
    if sj.is_file():
        doc = read_json(sj)
        for key in ("datasets", "meta"):
            if key not in doc:
                raise ValueError(f"{sj}: missing top-level field {key!r}")
        r.scores = pd.DataFrame(doc["datasets"])
        r.scores_meta = doc["meta"]
    if (d / files.E1_JSON).is_file():
        r.e1 = read_json(d / files.E1_JSON)
        for key in ("pilots", "correlations", "metrics"):
            if key not in r.e1:
                raise ValueError(f"{d / files.E1_JSON}: missing field {key!r}")
    if (d / files.E1_PILOTS).is_file():
        r.e1_pilots = pd.read_parquet(d / files.E1_PILOTS)
    if (d / files.E1_CORRELATIONS).is_file():
        r.e1_correlations = pd.read_csv(d / files.E1_CORRELATIONS)
    elif r.e1 is not None:
        r.e1_correlations = pd.DataFrame(r.e1["correlations"])
    if (d / files.E2_JSON).is_file():
        r.e2 = read_json(d / files.E2_JSON)
        if "selectors" not in r.e2:
            raise ValueError(f"{d / files.E2_JSON}: missing field 'selectors'")
    if (d / files.E3_JSON).is_file():
        r.e3 = read_json(d / files.E3_JSON)
        if "strategies" not in r.e3:
            raise ValueError(f"{d / files.E3_JSON}: missing field 'strategies'")
    if r.scores is None and not r.experiments:
        raise FileNotFoundError(f"{d}: holds no validation results ({files.E1_JSON}, {files.E2_JSON}, "
                                f"{files.E3_JSON} or {files.SCORES_DIR}/datasets.json)")
    return r
