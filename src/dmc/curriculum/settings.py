"""The curriculum's settings, declared once: the strategies, the callback and the re-scorer all
take their defaults from here."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from dmc.curriculum.policies import make_policy
from dmc.settings import check, setting, to_dict


AUTO_RESCORES = 4  # auto: the run is cut into this many intervals (re-scores at 1/4, 1/2 and 3/4)
# auto probe: a sixteenth of the dataset, within these bounds (16 = the fixed probe of small pools;
# 64 leaves room to double the questions attempted from 8 three times when a switch is undecided)
AUTO_PROBE = (16, 64, 16)  # (least, most, fraction's denominator)


def resolve_rescore_every(value: int | str, max_steps: int) -> int:
    """`rescore_every` as a number of steps: an integer >= 1 as given; "auto" = max_steps / 4,
    rounded down, at least 1."""
    if value == "auto":
        return max(1, int(max_steps) // AUTO_RESCORES)
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"rescore_every must be auto or a positive integer, got {value!r}")
    return value


def resolve_probe_size(value: int | str | None, n: int, name: str = "probe_size") -> int | None:
    """`probe_size` for a dataset of `n` samples: an integer as given, None (all samples) as given,
    "auto" = n / 16 rounded down, at least 16 and at most 64 (so a probe never holds out more than
    a sixteenth of a dataset above 256 rows, and large datasets get probes precise enough to time a
    switch)."""
    if value == "auto":
        least, most, part = AUTO_PROBE
        return max(least, min(most, int(n) // part))
    if value is None or (isinstance(value, int) and not isinstance(value, bool) and value >= 1):
        return value
    raise ValueError(f"{name} must be auto, none or a positive integer, got {value!r}")


@dataclass(frozen=True)
class CurriculumSettings:
    """Settings of the data strategies (how scores become a mixture, and how the dynamic curriculum
    re-scores). How the pool is scored is :class:`dmc.scoring.ScoringSettings`."""

    rescore_every: int | str = setting("auto", "dynamic-dmc: optimizer steps between re-scores; auto = a quarter of "
                                       "the run's steps (3 re-scores whatever the run's length).")
    probe_size: int | str | None = setting("auto", "dynamic-dmc: samples per dataset in the fixed probe that is "
                                           "re-scored; auto = a sixteenth of the dataset, 16 to 64; none = all.",
                                           min=1)
    policy: str = setting("argmax", "dynamic-dmc mixture policy: argmax[:DWELL], softmax[:TAU] or proportional.")
    switch_confidence: float = setting(0.9, "dynamic-dmc, argmax: leave the current dataset only when the re-score's "
                                       "bootstrap gives this one-sided confidence that another scores higher "
                                       "(0 = follow the point scores), in [0, 1).", min=0.0, max=0.999999)
    train_pass: bool = setting(True, "dynamic-dmc: also score a dataset being trained on on the samples it was "
                               "trained on for the first time in the last half re-score interval, read from the training "
                               "forward pass (free, held-out, many more than a probe; --no-train-pass: probes only).")
    holdout_probes: bool = setting(True, "dynamic-dmc: never train on the probes, so every re-score measures the "
                                   "student on samples it was not trained on (a dataset keeps its probe when that "
                                   "would hold out over half of it).")
    capability_size: int | None = setting(8, "dynamic-dmc: probe questions per dataset re-attempted per re-score "
                                          "(C_D).", min=1)
    max_capability_size: int | None = setting(64, "dynamic-dmc, argmax: when a re-score leaves a switch undecided "
                                              "(another dataset leads the current one, but within the noise margin), "
                                              "attempt twice as many probe questions of the two and test again, up "
                                              "to this many per dataset (and the probe's own), until the evidence "
                                              "decides; none = the whole probe; --capability-size = never.", min=1)
    target_size: int | None = setting(32, "dynamic-dmc: target questions re-attempted per re-score (C_T).", min=1)
    attempt_budget: int | str = setting("auto", "dynamic-dmc: tokens per re-scoring attempt; auto = 1.5 x the "
                                        "longest probe trace, capped by --attempt-max-new-tokens.")
    metric: str = setting("dmc", "static-dmc, static-dmc-mix and dynamic-dmc: the DMC version that scores the pool "
                          "and every re-score: dmc (v1) or dmc_v2 (with --capability likelihood its re-scores "
                          "generate nothing).", choices=("dmc", "dmc_v2"), flag="--curriculum-metric",
                          keyed_if_set=True)
    mix_policy: str = setting("softmax", "static-dmc-mix: how DMC becomes a fixed mixture (softmax[:TAU] or "
                              "proportional).")

    def __post_init__(self) -> None:
        for name in ("rescore_every", "attempt_budget", "probe_size"):  # "auto" or a number, which the CLI hands over as text
            value = getattr(self, name)
            if isinstance(value, str) and value.strip().isdigit():
                object.__setattr__(self, name, int(value))
        check(self)
        resolve_rescore_every(self.rescore_every, 1)
        resolve_probe_size(self.probe_size, 1, "CurriculumSettings.probe_size")
        make_policy(self.policy)
        make_policy(self.mix_policy)
        if self.attempt_budget != "auto" and not (isinstance(self.attempt_budget, int) and self.attempt_budget >= 1):
            raise ValueError(f"CurriculumSettings.attempt_budget must be auto or a positive integer, "
                             f"got {self.attempt_budget!r}")

    def rescore_interval(self, max_steps: int) -> int:
        """The steps between re-scores for a run of `max_steps` optimizer steps."""
        return resolve_rescore_every(self.rescore_every, max_steps)

    def to_dict(self) -> dict[str, Any]:
        return to_dict(self)
