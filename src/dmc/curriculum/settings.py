"""The curriculum's settings, declared once: the strategies, the callback and the re-scorer all
take their defaults from here."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from dmc.curriculum.policies import make_policy
from dmc.settings import check, setting, to_dict


@dataclass(frozen=True)
class CurriculumSettings:
    """Settings of the data strategies (how scores become a mixture, and how the dynamic curriculum
    re-scores). How the pool is scored is :class:`dmc.scoring.ScoringSettings`."""

    rescore_every: int = setting(60, "dynamic-dmc: optimizer steps between re-scores.", min=1)
    probe_size: int | None = setting(16, "dynamic-dmc: samples per dataset in the fixed probe that is re-scored "
                                     "(default 16; none = all).", min=1)
    policy: str = setting("argmax", "dynamic-dmc mixture policy: argmax[:DWELL], softmax[:TAU] or proportional.")
    capability_size: int | None = setting(8, "dynamic-dmc: probe questions per dataset re-attempted per re-score "
                                          "(C_D).", min=1)
    target_size: int | None = setting(32, "dynamic-dmc: target questions re-attempted per re-score (C_T).", min=1)
    attempt_budget: int | str = setting("auto", "dynamic-dmc: tokens per re-scoring attempt; auto = 1.5 x the "
                                        "longest probe trace, capped by --attempt-max-new-tokens.")
    mix_policy: str = setting("softmax", "static-dmc-mix: how DMC becomes a fixed mixture (softmax[:TAU] or "
                              "proportional).")

    def __post_init__(self) -> None:
        check(self)
        make_policy(self.policy)
        make_policy(self.mix_policy)
        if self.attempt_budget != "auto" and not (isinstance(self.attempt_budget, int) and self.attempt_budget >= 1):
            raise ValueError(f"CurriculumSettings.attempt_budget must be auto or a positive integer, "
                             f"got {self.attempt_budget!r}")

    def to_dict(self) -> dict[str, Any]:
        return to_dict(self)
