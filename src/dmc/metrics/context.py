"""Inputs shared by all metrics, and the per-sample quantities several of them use.

A :class:`ScoringContext` holds the samples (one row per (dataset, sample)), the cached
**tokens** and **attempts** tables of docs/ARCHITECTURE.md, the settings and the target
questions. Quality q_i, capability c_i and alignment A_i are computed once, on first use, and
shared by every metric that needs them. Nothing here runs a model.
"""

from __future__ import annotations
from dmc.grading import extract_answer, grade_many

from collections import Counter
from collections.abc import Iterable, Sequence
from functools import cached_property, lru_cache
from typing import Any, Protocol

import numpy as np
import pandas as pd

from dmc.data.schema import CandidateDataset, Sample, content_hash
from dmc.memo import Memo
from dmc.metrics.settings import MetricSettings
from dmc.metrics.spans import answer_span, content_token_mask, format_words

SAMPLE_COLUMNS = ("dataset", "sample_id", "sample_hash", "question_hash", "prompt_text", "response", "gold")
TOKEN_COLUMNS = ("sample_hash", "n_tokens", "truncated", "logprob", "rank", "char_start", "char_end")
ATTEMPT_COLUMNS = ("question_hash", "attempt", "grade")
ANSWER_COLUMNS = ("question_hash", "gold_logprob", "reason")
# A probability of the gold this close to 1 is 1 within what a float32 log-probability resolves.
MAX_ANSWER_PROB = 1.0 - 1e-6

NO_TOKENS = "no token statistics"
NO_ANSWERS = "no answer likelihoods (dmc.stats.answers)"
TRUNCATED = "truncated: the trace is longer than the scoring max_length (--score-max-length)"


def question_hash(prompt: Iterable[dict[str, str]], gold: str | None) -> str:
    """The question key of docs/ARCHITECTURE.md (same as ``Sample.question_hash``); works for EvalItem."""
    return content_hash({"prompt": list(prompt), "gold": gold})


class GradeLike(Protocol):
    status: str  # "correct" | "wrong" | "ungradable"
    reason: str | None
    answer: str | None


class Grader(Protocol):
    """Grades responses against gold answers and extracts final answers (dmc.grading by default)."""

    def grade_many(self, texts: Sequence[str], golds: Sequence[str]) -> list[GradeLike]: ...

    def extract(self, text: str) -> str | None: ...


class DmcGrader:
    """The dmc.grading verifiers behind the :class:`Grader` interface.

    Verdicts and extracted answers are memoized across instances (the curriculum grades the same
    probes at every re-score); an ``ungradable`` verdict is not, since a timeout may pass next time.
    """

    _grades: Memo[GradeLike] = Memo(4096)

    def __init__(self, verifier: str = "auto"):
        self.verifier = verifier

    def grade_many(self, texts: Sequence[str], golds: Sequence[str]) -> list[GradeLike]:
        if not isinstance(self.verifier, str):  # a Verifier object: its settings are not a key
            return grade_many(list(texts), list(golds), self.verifier)
        keys = [(self.verifier, t, g) for t, g in zip(texts, golds)]
        out = [self._grades.get(key) for key in keys]
        todo = [k for k, gr in enumerate(out) if gr is None]
        for k, gr in zip(todo, grade_many([texts[k] for k in todo], [golds[k] for k in todo], self.verifier)
                         if todo else []):
            out[k] = gr
            if gr.status != "ungradable":
                self._grades.put(keys[k], gr)
        return out

    def extract(self, text: str) -> str | None:
        return _extracted(text)


@lru_cache(maxsize=4096)
def _extracted(text: str) -> str | None:
    return extract_answer(text).answer


def samples_frame(pool: Sequence[CandidateDataset] | Sequence[Sample] | pd.DataFrame) -> pd.DataFrame:
    """One row per (dataset, sample) with the columns metrics read (``SAMPLE_COLUMNS``).

    ``prompt_text`` is every prompt turn's content joined: what precedes the trace, against which
    the novelty of content spans is judged.
    """
    if isinstance(pool, pd.DataFrame):
        missing = [c for c in SAMPLE_COLUMNS if c not in pool.columns]
        if missing:
            raise ValueError(f"samples frame lacks columns {missing}; expected {list(SAMPLE_COLUMNS)}")
        return pool.reset_index(drop=True)
    rows: list[dict[str, Any]] = []
    for item in pool:
        group = item.samples if isinstance(item, CandidateDataset) else [item]
        name = item.name if isinstance(item, CandidateDataset) else None
        for s in group:
            rows.append({
                "dataset": name if name is not None else s.dataset,
                "sample_id": s.id,
                "sample_hash": s.hash,
                "question_hash": s.question_hash,
                "prompt_text": "\n".join(m["content"] for m in s.prompt),
                "response": s.response,
                "gold": s.gold,
            })
    df = pd.DataFrame(rows, columns=list(SAMPLE_COLUMNS))
    dup = df.duplicated(["dataset", "sample_id"], keep=False)
    if dup.any():
        first = df[dup].iloc[0]
        raise ValueError(f"dataset {first['dataset']!r}: sample id {first['sample_id']!r} occurs more than once")
    return df


def _require(df: pd.DataFrame, cols: Sequence[str], table: str) -> None:
    missing = [c for c in cols if c not in df.columns]
    if missing:
        raise ValueError(f"{table} table lacks columns {missing} (docs/ARCHITECTURE.md, cached tables)")


def _nan_series(index: pd.Index, reason: str | None = None) -> tuple[pd.Series, pd.Series]:
    return pd.Series(np.nan, index=index, dtype=float), pd.Series(reason, index=index, dtype=object)


class ScoringContext:
    """Everything a metric reads.

    samples: from :func:`samples_frame`. tokens / attempts: the cached tables (None when not
    computed; metrics that need them then give NaN with a reason). target_questions: question
    hashes of the target tasks (the eval set) for C_T; None = every question of the pool.
    grader: grades quality (default: dmc.grading with ``settings.verifier``).
    answers: the student's log-likelihood of each question's gold (dmc.stats.answers; None when
    not computed), the continuous capability of ``capability="likelihood"``.
    """

    def __init__(
        self,
        samples: pd.DataFrame | Sequence[CandidateDataset] | Sequence[Sample],
        tokens: pd.DataFrame | None = None,
        attempts: pd.DataFrame | None = None,
        settings: MetricSettings | None = None,
        target_questions: Sequence[str] | None = None,
        grader: Grader | None = None,
        answers: pd.DataFrame | None = None,
    ):
        self.samples = samples_frame(samples)
        self.settings = settings or MetricSettings()
        self.tokens = tokens
        self.attempts = attempts
        self.target_questions = None if target_questions is None else list(dict.fromkeys(target_questions))
        self.grader = grader or DmcGrader(self.settings.verifier)
        if tokens is not None:
            _require(tokens, TOKEN_COLUMNS, "tokens")
        if attempts is not None:
            _require(attempts, ATTEMPT_COLUMNS, "attempts")
        self.answers = answers
        self._fits: dict[int | None, pd.Series] = {}
        if answers is not None:
            _require(answers, ANSWER_COLUMNS, "answers")

    @property
    def index(self) -> pd.Index:
        return self.samples.index

    @cached_property
    def datasets(self) -> list[str]:
        """Dataset names in order of first appearance."""
        return list(dict.fromkeys(self.samples["dataset"]))

    # ------------------------------------------------------------ token statistics

    @cached_property
    def token_rows(self) -> pd.DataFrame:
        """The tokens-table row of each sample (joined on sample_hash), aligned with ``samples``.

        Column ``has_tokens`` says whether a row was found. A sample present in several datasets
        has identical statistics in each, so duplicate hashes in the table are collapsed.
        """
        idx = self.index
        if self.tokens is None:
            out = pd.DataFrame(index=idx)
            out["has_tokens"] = False
            return out
        tok = self.tokens.drop_duplicates("sample_hash", keep="last").set_index("sample_hash")
        out = tok.reindex(self.samples["sample_hash"].to_numpy())
        out.index = idx
        out["has_tokens"] = self.samples["sample_hash"].isin(tok.index).to_numpy()
        return out

    @cached_property
    def _token_columns(self) -> dict[str, list[Any]]:
        """``token_rows`` as plain lists per column, by position: per-row reads through pandas
        (``.at``) cost more than the metrics computed from them."""
        return {c: self.token_rows[c].tolist() for c in self.token_rows.columns}

    def token_array(self, i: Any, column: str, dtype: Any = np.float64) -> np.ndarray | None:
        """Row ``i``'s list column as an array (None when absent or null)."""
        cols = self._token_columns  # by position, which is the row label (samples_frame numbers rows 0..n-1)
        if column not in cols or not cols["has_tokens"][i]:
            return None
        v = cols[column][i]
        if v is None or (isinstance(v, float) and np.isnan(v)):
            return None
        return np.asarray(v, dtype=dtype)

    # ------------------------------------------------------------ quality q_i

    @cached_property
    def quality(self) -> pd.DataFrame:
        """q in {0, 1} or NaN, with q_reason, the extracted answer and the pseudo_gold flag.

        q = 1 when the final answer is verified correct and the trace is complete (not truncated
        by the student's max_length, answer extractable); 0 when it is wrong or incomplete; NaN
        with a reason when there is no gold ("no gold"), when the verifier cannot decide
        ("ungradable: ..."), or, with pseudo_gold, when the teachers have no majority answer.
        """
        s = self.samples
        q, reason = _nan_series(self.index)
        answer = pd.Series(None, index=self.index, dtype=object)
        pseudo = pd.Series(False, index=self.index, dtype=bool)
        golds: dict[Any, str] = {}
        for i, g in s["gold"].items():
            if g is not None and not (isinstance(g, float) and np.isnan(g)):
                golds[i] = str(g)
        missing = [i for i in self.index if i not in golds]
        if missing and self.settings.pseudo_gold:
            majority, why = self._pseudo_gold(missing)
            for i in missing:
                if majority.get(i) is not None:
                    golds[i] = majority[i]
                    pseudo[i] = True
                else:
                    reason[i] = why[i]
        else:
            for i in missing:
                reason[i] = "no gold"
        cols = self._token_columns
        truncated, has_tokens = cols.get("truncated"), cols["has_tokens"]
        keys = list(golds)
        responses = s["response"].tolist()
        grades = self.grader.grade_many([responses[i] for i in keys], [golds[i] for i in keys])
        if len(grades) != len(keys):
            raise ValueError(f"grader returned {len(grades)} grades for {len(keys)} samples")
        for i, gr in zip(keys, grades):
            answer[i] = gr.answer
            if gr.status == "correct":
                cut = truncated is not None and bool(has_tokens[i]) and bool(truncated[i])
                q[i] = 0.0 if cut else 1.0
            elif gr.status == "wrong" or gr.answer is None:
                q[i] = 0.0  # a wrong answer, or no extractable answer: an incomplete trace
            elif gr.status == "ungradable":
                reason[i] = f"ungradable: {gr.reason or 'no reason given'}"
            else:
                raise ValueError(f"grader returned unknown status {gr.status!r} for sample "
                                 f"{s.at[i, 'dataset']}/{s.at[i, 'sample_id']}")
        return pd.DataFrame({"q": q, "q_reason": reason, "answer": answer, "pseudo_gold": pseudo})

    def _pseudo_gold(self, missing: list[Any]) -> tuple[dict[Any, str | None], dict[Any, str]]:
        """Majority extracted answer per question across candidate datasets (ties: no majority)."""
        s = self.samples
        groups: dict[str, list[Any]] = {}
        for i in missing:
            groups.setdefault(s.at[i, "question_hash"], []).append(i)
        majority: dict[Any, str | None] = {}
        why: dict[Any, str] = {}
        for rows in groups.values():
            votes: Counter[str] = Counter()
            voters: set[str] = set()
            for i in rows:
                a = self.grader.extract(s.at[i, "response"])
                if a is not None and str(a).strip():
                    votes[" ".join(str(a).split())] += 1
                    voters.add(s.at[i, "dataset"])
            top = votes.most_common(2)
            if len(voters) < 2:
                result, r = None, "no gold (pseudo-gold needs answers from 2+ datasets)"
            elif len(top) > 1 and top[0][1] == top[1][1]:
                result, r = None, "no majority"
            else:
                result, r = top[0][0], ""
            for i in rows:
                majority[i] = result
                why[i] = r
        return majority, why

    # ------------------------------------------------------------ capability c_i

    @cached_property
    def capability_by_question(self) -> pd.DataFrame:
        """Per question_hash: c (pass rate over gradable attempts), c_reason, n_attempts, n_gradable."""
        if self.attempts is None or self.attempts.empty:
            return pd.DataFrame(columns=["c", "c_reason", "n_attempts", "n_gradable"]).astype(
                {"c": float, "n_attempts": int, "n_gradable": int})
        a = self.attempts.drop_duplicates(["question_hash", "attempt"], keep="last")
        bad = ~a["grade"].isin(["correct", "wrong", "ungradable"])
        if bad.any():
            r = a[bad].iloc[0]
            raise ValueError(f"attempts table: question {r['question_hash']} attempt {r['attempt']}: "
                             f"grade {r['grade']!r} is not correct/wrong/ungradable")
        g = a.groupby("question_hash")["grade"]
        n_correct = g.apply(lambda x: int((x == "correct").sum()))
        n_gradable = g.apply(lambda x: int((x != "ungradable").sum()))
        n_att = g.size()
        c = (n_correct / n_gradable.where(n_gradable > 0)).astype(float)
        reason = pd.Series(np.where(n_gradable > 0, None, "all attempts ungradable"), index=c.index, dtype=object)
        return pd.DataFrame({"c": c, "c_reason": reason, "n_attempts": n_att, "n_gradable": n_gradable})

    @cached_property
    def capability(self) -> pd.DataFrame:
        """c_i (the student's pass rate on sample i's question) and c_reason, aligned with samples."""
        cq = self.capability_by_question
        qh = self.samples["question_hash"]
        c = qh.map(cq["c"]).astype(float)
        reason = qh.map(cq["c_reason"]).astype(object)
        absent = ~qh.isin(cq.index)
        reason[absent] = "no attempts"
        reason[c.notna()] = None
        return pd.DataFrame({"c": c, "c_reason": reason})

    def mean_capability(self, question_hashes: Iterable[str]) -> tuple[float, str | None]:
        """Mean c over the distinct questions given that have a known c; NaN with a reason if none."""
        cq = self.capability_by_question["c"]
        qs = list(dict.fromkeys(question_hashes))
        vals = cq.reindex(qs).dropna()
        if vals.empty:
            return float("nan"), "no capability (no gradable attempts on these questions)"
        return float(vals.mean()), None

    @cached_property
    def target_capability(self) -> tuple[float, str | None]:
        """C_T: mean c over the target questions (the eval set; the whole pool when none given)."""
        return self.mean_capability(self.target_hashes)

    @property
    def target_hashes(self) -> Sequence[str]:
        """The target questions' hashes: the eval set's, or every pool question when none given."""
        return self.target_questions if self.target_questions is not None else list(self.samples["question_hash"])

    @cached_property
    def answer_logit_by_question(self) -> pd.DataFrame:
        """Per question_hash: z = logit P_θ(gold | question) from the answers table, and z_reason.

        The log-odds of the student's probability of the gold answer: under the Rasch model the
        student's ability minus the question's difficulty, continuous where a pass rate floors at 0.
        The probability is capped at ``MAX_ANSWER_PROB`` so that a certain answer has a finite logit.
        """
        if self.answers is None or self.answers.empty:
            return pd.DataFrame({"z": pd.Series(dtype=float), "z_reason": pd.Series(dtype=object)})
        a = self.answers.drop_duplicates("question_hash", keep="last").set_index("question_hash")
        lp = np.minimum(a["gold_logprob"].astype(float).to_numpy(), np.log(MAX_ANSWER_PROB))
        with np.errstate(invalid="ignore"):
            z = lp - np.log(-np.expm1(lp))
        reason = a["reason"].where(np.isnan(z), None).astype(object)
        return pd.DataFrame({"z": z, "z_reason": reason}, index=a.index)

    @cached_property
    def answer_capability(self) -> pd.DataFrame:
        """z_i (the logit of the student's probability of sample i's gold answer) and z_reason,
        aligned with samples."""
        zq = self.answer_logit_by_question
        qh = self.samples["question_hash"]
        z = qh.map(zq["z"]).astype(float)
        reason = qh.map(zq["z_reason"]).astype(object)
        reason[~qh.isin(zq.index)] = NO_ANSWERS if self.answers is None else "no answer likelihood"
        reason[z.notna()] = None
        return pd.DataFrame({"z": z, "z_reason": reason})

    def answer_logits(self, question_hashes: Iterable[str]) -> tuple[np.ndarray, str | None]:
        """z of the distinct questions given that have one (NaN-free), or an empty array with a reason."""
        zq = self.answer_logit_by_question["z"]
        vals = zq.reindex(list(dict.fromkeys(question_hashes))).dropna().to_numpy(dtype=float)
        if vals.size == 0:
            return vals, NO_ANSWERS if self.answers is None else "no answer likelihood on these questions"
        return vals, None

    def fits(self) -> pd.Series:
        """F_i: whether the student, writing this trace within its generation budget (settings.budget),
        still reaches the trace's final answer. 1.0 when the trace fits the budget (always when None),
        or when the trace cut after ``budget`` tokens gives the same final answer as the whole trace
        (verified equal, as an answer is graded: "= 8. Let me check: 12 - 4 = 8" cut before its
        last line still ends on 8); 0.0 otherwise; NaN without token statistics. Cached per budget."""
        budget = self.settings.budget
        if budget not in self._fits:
            self._fits[budget] = self._fits_within(budget)
        return self._fits[budget]

    def _fits_within(self, budget: int | None) -> pd.Series:
        rows = self.token_rows
        has = rows["has_tokens"].astype(bool).to_numpy()
        if budget is None:
            return pd.Series(np.where(has, 1.0, np.nan), index=self.index)
        n = pd.to_numeric(rows["n_tokens"], errors="coerce").to_numpy(float) if "n_tokens" in rows \
            else np.full(len(self.index), np.nan)
        f = np.where(has & ~np.isnan(n), (n <= budget).astype(float), np.nan)
        responses = self.samples["response"].tolist()
        over, cuts, whole = [], [], []
        for k, i in enumerate(self.index):
            if f[k] != 0.0:
                continue
            ends = self.token_array(i, "char_end", np.int64)
            answer = self.grader.extract(responses[k])
            if ends is None or len(ends) < budget or not answer:
                continue  # the cut is past what was scored, or the trace has no answer to reach
            over.append(k)
            cuts.append(responses[k][: int(ends[budget - 1])])
            whole.append(answer)
        for k, answer, gr in zip(over, whole, self.grader.grade_many(cuts, whole) if over else []):
            f[k] = 1.0 if gr.status == "correct" or gr.answer == answer else 0.0
        return pd.Series(f, index=self.index)

    def weight(self) -> pd.Series:
        """w_i = (eps + (1 - eps) q_i) * F_i: soft quality, zero for a trace beyond the generation budget."""
        eps = self.settings.epsilon
        return (eps + (1.0 - eps) * self.quality["q"]) * self.fits()

    # ------------------------------------------------------------ alignment A_i

    @cached_property
    def boilerplate(self) -> dict[str, frozenset[str]]:
        """Per dataset, the words at least ``format_share`` of its traces use, less the words of the
        pool's gold answers (``decisions`` content)."""
        share = self.settings.format_share
        golds = list(dict.fromkeys(g for g in self.samples["gold"] if isinstance(g, str)))
        return {d: format_words(list(g["response"]), share, golds)
                for d, g in self.samples.groupby("dataset", sort=False)}

    @cached_property
    def alignment(self) -> pd.DataFrame:
        """Per sample, over its content tokens: A, the fraction with rank <= top_k (v1, and v2 under
        ``alignment="rank"``); A_prob, their mean probability under the student (v2's default); A_geo,
        their geometric mean probability (``"geo"``: the per-decision probability of writing them all);
        each in [0, 1]; n_content; A_reason (why they are NaN)."""
        n_rows = len(self.index)
        A, A_prob, A_geo = np.full(n_rows, np.nan), np.full(n_rows, np.nan), np.full(n_rows, np.nan)
        reason: list[str | None] = [None] * n_rows
        n_content = np.zeros(n_rows, dtype=np.int64)
        st = self.settings
        cols = self._token_columns
        truncated = cols.get("truncated")
        s = self.samples
        hashes, responses, prompts, datasets = (s[c].tolist() for c in ("sample_hash", "response", "prompt_text", "dataset"))
        for k, i in enumerate(self.index):
            rank = self.token_array(i, "rank", np.int64)
            if rank is None:
                reason[k] = NO_TOKENS
                continue
            if truncated is not None and bool(truncated[k]):
                # the cut trace lost its end (often its final answer): its alignment is not measured
                reason[k] = TRUNCATED
                continue
            cs = self.token_array(i, "char_start", np.int64)
            ce = self.token_array(i, "char_end", np.int64)
            if cs is None or ce is None or len(cs) != len(rank) or len(ce) != len(rank):
                raise ValueError(f"tokens table, sample_hash {hashes[k]}: "
                                 "rank, char_start and char_end differ in length")
            response = responses[k]
            extra = {}
            if st.content in ("decisions", "continuations"):
                extra = {"boilerplate": self.boilerplate[datasets[k]],
                         "answer": answer_span(response, self.grader.extract(response)),
                         "counters": st.counters == "format"}
            mask = content_token_mask(prompts[k], response, cs, ce, st.content, **extra)
            n = int(mask.sum())
            n_content[k] = n
            if n == 0:
                reason[k] = "no content tokens"
                continue
            A[k] = float(np.mean(rank[mask] <= st.top_k))
            lp = self.token_array(i, "logprob")
            if lp is not None and len(lp) == len(rank):
                A_prob[k] = float(np.mean(np.exp(lp[mask])))
                A_geo[k] = float(np.exp(np.mean(lp[mask])))
        A, A_prob, A_geo, n_content = (pd.Series(x, index=self.index) for x in (A, A_prob, A_geo, n_content))
        reason = pd.Series(reason, index=self.index, dtype=object)
        return pd.DataFrame({"A": A, "A_prob": A_prob, "A_geo": A_geo, "A_reason": reason, "n_content": n_content})
