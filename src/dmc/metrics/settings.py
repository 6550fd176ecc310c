"""Named, versioned settings of the metrics (DESIGN.md §3); recorded with every score."""

from __future__ import annotations

from dataclasses import asdict, dataclass

from dmc.metrics.spans import CONTENT_SELECTORS


@dataclass(frozen=True)
class MetricSettings:
    """Settings shared by DMC v1 and the baselines.

    epsilon: floor of the soft quality weight w_i = epsilon + (1 - epsilon) * q_i, in [0, 1].
    sigma: width of the difficulty match R = exp(-(C_D - C_T)^2 / (2 sigma^2)), > 0.
    content: which trace tokens count for alignment: "numbers" (novel numbers and math
        expressions), "words" (novel \\w+ words) or "all" (every response token).
    top_k: a content token is aligned when its rank is <= top_k (1 = the student's argmax).
    pseudo_gold: when a sample has no gold, use the majority extracted answer across the candidate
        datasets that answer the same question (flagged in the output).
    n_boot: bootstrap resamples for DMC's confidence interval (0 disables the interval).
    ci: confidence level of that interval, in (0, 1).
    seed: seeds the bootstrap and the random baseline.
    verifier: the dmc.grading verifier used for quality.
    sigma_logit: DMC v2 only: width of the difficulty match on the log-odds scale,
        R2 = exp(-(logit C~_D - logit C~_T)^2 / (2 sigma_logit^2)), > 0.
    prior: DMC v2 only: pseudo-count of passes and of fails that shrinks a pass rate before its
        logit, C~ = (n C + prior) / (n + 2 prior), > 0 (0.5: the Jeffreys prior).
    match_side: DMC v2 only: "both" penalizes question sets easier or harder for the student than
        the target; "easier" only easier ones (harder steps are priced by the alignment term).
    budget: the student's generation budget in tokens (None = unlimited). A trace longer than this,
        in the student's tokens, is one the student cannot finish at inference even after learning
        it perfectly, so its weight is 0 in DMC (both versions): w_i = (eps + (1 - eps) q_i) * F_i,
        F_i = 1[n_tokens_i <= budget]. Not a quality judgement (eps does not soften it).
    """

    # Defaults chosen jointly on the development testbeds (the lab's 2 families x 2 students and
    # the chain-sum testbed) by the worst, then the mean, Spearman over them: docs/RESULTS.md.
    epsilon: float = 1.0
    sigma: float = 0.25
    content: str = "numbers"
    top_k: int = 1
    pseudo_gold: bool = False
    n_boot: int = 1000
    ci: float = 0.95
    seed: int = 0
    verifier: str = "auto"
    sigma_logit: float = 1.5
    prior: float = 0.5
    match_side: str = "both"
    budget: int | None = None

    def __post_init__(self) -> None:
        if not 0.0 <= self.epsilon <= 1.0:
            raise ValueError(f"MetricSettings.epsilon must be in [0, 1], got {self.epsilon!r}")
        if not self.sigma > 0.0:
            raise ValueError(f"MetricSettings.sigma must be > 0, got {self.sigma!r}")
        if not self.sigma_logit > 0.0:
            raise ValueError(f"MetricSettings.sigma_logit must be > 0, got {self.sigma_logit!r}")
        if not self.prior > 0.0:
            raise ValueError(f"MetricSettings.prior must be > 0, got {self.prior!r}")
        if self.match_side not in ("both", "easier"):
            raise ValueError(f"MetricSettings.match_side must be 'both' or 'easier', got {self.match_side!r}")
        if self.content not in CONTENT_SELECTORS:
            raise ValueError(f"MetricSettings.content must be one of {CONTENT_SELECTORS}, got {self.content!r}")
        if not isinstance(self.top_k, int) or isinstance(self.top_k, bool) or self.top_k < 1:
            raise ValueError(f"MetricSettings.top_k must be a positive integer, got {self.top_k!r}")
        if self.budget is not None and (not isinstance(self.budget, int) or isinstance(self.budget, bool)
                                        or self.budget < 1):
            raise ValueError(f"MetricSettings.budget must be a positive integer or None, got {self.budget!r}")
        if not isinstance(self.n_boot, int) or self.n_boot < 0:
            raise ValueError(f"MetricSettings.n_boot must be a non-negative integer, got {self.n_boot!r}")
        if not 0.0 < self.ci < 1.0:
            raise ValueError(f"MetricSettings.ci must be in (0, 1), got {self.ci!r}")

    def to_dict(self) -> dict:
        return asdict(self)
