"""Named, versioned settings of the metrics (DESIGN.md §3); recorded with every score."""

from __future__ import annotations

from dataclasses import dataclass

from dmc.metrics.spans import CONTENT_SELECTORS
from dmc.settings import CI, N_BOOT, SEED, VERIFIER, check, setting, to_dict


@dataclass(frozen=True)
class MetricSettings:
    """Settings shared by DMC v1, v2 and the baselines.

    Defaults chosen jointly on the development testbeds (the lab's 2 families x 2 students and the
    chain-sum testbed) by the worst, then the mean, Spearman over them: docs/RESULTS.md.
    """

    epsilon: float = setting(1.0, "DMC quality floor: w = eps + (1 - eps) q, in [0, 1].", min=0.0, max=1.0)
    sigma: float = setting(0.25, "DMC difficulty-match width: R = exp(-(C_D - C_T)^2 / 2 sigma^2), > 0.", min=1e-12)
    content: str = setting("decisions", "DMC content tokens: numbers (novel numbers and expressions), words (novel "
                           "words), decisions (new values and known ones in a new place, boilerplate excluded; "
                           "any kind of reasoning), continuations (every value the text before it does not "
                           "already show; for tasks with few values such as true/false) or all (every response "
                           "token).", choices=CONTENT_SELECTORS)
    format_share: float = setting(0.2, "decisions and continuations content: a word used by at least this share of a dataset's traces "
                                  "is boilerplate (format), unless it is a word of the gold answers or in the final "
                                  "answer; in (0, 1].",
                                  min=1e-9, max=1.0, keyed_if_set=True)
    counters: str = setting("content", "decisions and continuations content: the trace's step numbers (a run 1, 2, "
                            "... of numbers that open lines or follow the same format word: Step 1, Step 2) are "
                            "content (numbers are values) or format (they follow from the trace's layout, not "
                            "from the task).",
                            choices=("content", "format"), keyed_if_set=True)
    top_k: int = setting(1, "A content token is aligned when its rank <= K (1 = the student's argmax).", min=1)
    alignment: str = setting("prob", "dmc_v2 alignment of a content token: prob (the student's probability of it "
                             "under teacher forcing: how often sampling writes it; continuous where every rank is "
                             "above K), geo (the geometric mean of those probabilities over the trace: the "
                             "per-decision probability of writing every one of them) or rank (1 when its rank <= K: "
                             "greedy decoding writes it). v1 always uses rank.",
                             choices=("prob", "geo", "rank"))
    pseudo_gold: bool = setting(False, "Without gold, use the teachers' majority answer to the same question "
                                "(flagged).")
    n_boot: int = N_BOOT.field()
    ci: float = CI.field()
    seed: int = SEED.field()
    verifier: str = VERIFIER.field()
    sigma_logit: float = setting(1.5, "dmc_v2 difficulty-match width on the log-odds scale, > 0.", min=1e-12)
    prior: float = setting(0.5, "dmc_v2 pseudo-count of passes and of fails shrinking each pass rate before its "
                           "logit (0.5: Jeffreys), > 0.", min=1e-12)
    match_side: str = setting("both", "dmc_v2 difficulty match: both (penalize easier and harder question sets) or "
                              "easier (only easier ones).", choices=("both", "easier"))
    capability: str = setting("likelihood", "dmc_v2 capability estimate: likelihood (the student's log-odds of each "
                              "question's gold answer right after the question, one teacher-forced pass per question, "
                              "no generation) or attempts (pass rates of the student's generated attempts).",
                              choices=("likelihood", "attempts"))
    budget: int | None = setting(None, "Student generation budget in tokens: a trace that, cut after this many "
                                 "tokens, no longer gives its final answer gets weight 0 in DMC (default: unlimited "
                                 "in `dmc score` and `dmc select`; `dmc validate` and `dmc distill` use their "
                                 "--eval-max-new-tokens).", min=1)
    ifd_filter: bool = setting(True, "ifd / ifd_ppl: a sample with a ratio >= 1 (the question does not help "
                               "predict the answer) is NaN, as Cherry LLM and Superfiltering drop it before "
                               "selecting (--no-ifd-filter keeps it).", result=True)
    rsr_turns: str = setting("last", "rsr: assistant turns summed over: last (the response, the trace being "
                             "distilled) or all (every assistant turn, as RSR's reference does; needs token "
                             "statistics with --score-turns all).", choices=("last", "all"))

    def __post_init__(self) -> None:
        check(self)

    def to_dict(self) -> dict:
        return to_dict(self)
