"""The DMC curriculum: a mixture over candidate datasets served by `MixtureSampler`, plus a
`TrainerCallback` that re-scores the datasets with the current weights and updates the mixture.

Nothing here runs a training loop: `attach(trainer)` installs the sampler on any
`transformers.Trainer` (including TRL's `SFTTrainer`) and the callback hooks do the rest::

    curriculum = DMCCurriculumCallback(pool, rescore_every="auto", probe_size=16, policy="argmax")
    trainer = SFTTrainer(model=model, args=SFTConfig(max_steps=400, ...),
                         train_dataset=curriculum.hf_dataset(), processing_class=tokenizer,
                         callbacks=[curriculum])
    curriculum.attach(trainer)
    trainer.train()

The curriculum state (mixture history, policy state, rows drawn per batch) is written into each
checkpoint directory on save and read back when training resumes from that checkpoint, so an
interrupted and resumed run draws exactly the batches an uninterrupted run draws.
"""

from __future__ import annotations

import json
import logging
import math
import random
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.distributed as dist
from transformers import TrainerCallback

from dmc.data.schema import CandidateDataset, Sample
from dmc.curriculum.observe import Observed, TrainingPassStats
from dmc.curriculum.rescore import DMCRescorer, distributed_world
from dmc.io import atomic_write_json
from dmc.stats.subsample import subsample
from dmc.students import Student
from dmc.curriculum.mixture import MixtureEntry, MixtureSampler, MixtureSchedule, PoolDataset, normalize_weights
from dmc.curriculum.policies import MixturePolicy, make_policy
from dmc.curriculum.settings import CurriculumSettings, resolve_probe_size, resolve_rescore_every

logger = logging.getLogger(__name__)

STATE_FILE = "dmc_curriculum.json"
OBSERVED_FILE = "dmc_observed.parquet"  # the training pass's rows since the last re-score (dynamic-dmc)
DATASET_COLUMN = "dmc_dataset"

# rescore_fn(student, probe samples by dataset) -> score per dataset (higher = more compatible; NaN = unmeasured)
RescoreFn = Callable[[Any, Mapping[str, list[Sample]]], Mapping[str, float]]
EventSink = Callable[[dict[str, Any]], None]


def _float_or_nan(v: Any) -> float:
    return math.nan if v is None else float(v)


def _clean(x: float) -> float | None:
    x = float(x)
    return None if math.isnan(x) else x


def _noise_of(fn: Any, names: Sequence[str]) -> dict[str, float]:
    """The standard error of each dataset's last re-score (`fn.last_details[name]["dmc_se"]`, from the
    re-score's bootstrap; NaN where unknown)."""
    details = getattr(fn, "last_details", None) or {}
    return {n: _float_or_nan((details.get(n) or {}).get("dmc_se")) for n in names}


def _gathered(observed: Observed) -> Observed:
    """Under a torch.distributed process group, every rank's observations merged in rank order
    (the same on every rank); else `observed` itself."""
    _, world = distributed_world()
    if world == 1 or not (dist.is_available() and dist.is_initialized()):
        return observed
    parts: list[Any] = [None] * world
    dist.all_gather_object(parts, observed)
    merged = Observed()
    for p in parts:
        merged.merge(p)
    return merged


class MixtureCurriculum(TrainerCallback):
    """A fixed mixture over the pool's candidate datasets (the static strategies).

    `weights` maps dataset name -> weight (missing names get 0) or lists weights in pool order;
    None means every training row equally likely (weights proportional to dataset sizes).
    Higher weight = drawn more often; weights are normalized to sum to 1.
    """

    kind = "static"

    def __init__(
        self,
        pool: Sequence[CandidateDataset],
        weights: Mapping[str, float] | Sequence[float] | None = None,
        *,
        seed: int | None = None,
        reason: str = "",
        on_event: EventSink | None = None,
    ):
        self.dataset = PoolDataset(pool)
        self.names = list(self.dataset.names)
        self.schedule = MixtureSchedule(self.names)
        self.seed = seed
        self.on_event = on_event
        self.history: list[dict[str, Any]] = []  # one event per mixture decision
        self._initial = self._as_vector(weights) if weights is not None else self._size_weights()
        self._initial_reason = reason or ("fixed mixture" if weights is not None else "uniform over all rows")
        self.resume_dir: str | None = None  # set to read state from a checkpoint outside args.output_dir

    # -- pool views -------------------------------------------------------------------------------
    def _as_vector(self, weights: Mapping[str, float] | Sequence[float]) -> np.ndarray:
        if isinstance(weights, Mapping):
            unknown = sorted(set(weights) - set(self.names))
            if unknown:
                raise KeyError(f"mixture names {unknown} are not candidate datasets {self.names}")
            w = [float(weights.get(n, 0.0)) for n in self.names]
        else:
            w = [float(x) for x in weights]
        return normalize_weights(w, self.names)

    def _size_weights(self) -> np.ndarray:
        counts = np.bincount(np.asarray(self.dataset.labels), minlength=len(self.names)).astype(np.float64)
        return counts / counts.sum()

    def train_dataset(self) -> PoolDataset:
        """The pool as a torch Dataset of `Sample`s (for `dmc.training.train` and its collator)."""
        return self.dataset

    def hf_dataset(self):
        """The pool as a `datasets.Dataset` in conversational prompt-completion form for TRL's
        `SFTTrainer` (loss on the completion only), with a `dmc_dataset` column the sampler reads."""
        from datasets import Dataset

        rows = {
            "prompt": [[dict(m) for m in s.prompt] for s in self.dataset.samples],
            "completion": [[{"role": "assistant", "content": s.response}] for s in self.dataset.samples],
            DATASET_COLUMN: list(self.dataset.labels),
        }
        return Dataset.from_dict(rows)

    # -- sampler ----------------------------------------------------------------------------------
    def held_out_rows(self) -> list[int]:
        """Rows of the pool never trained on (none here; the dynamic curriculum holds out its probes)."""
        return []

    def sampler(self, labels: Sequence[int] | None = None, *, batch_size: int, num_batches: int, seed: int) -> MixtureSampler:
        """A sampler over rows labelled with dataset indices (default: this pool's own rows), in the
        pool's order, never drawing `held_out_rows()`."""
        return MixtureSampler(
            self.dataset.labels if labels is None else labels,
            self.schedule,
            batch_size=batch_size,
            num_batches=num_batches,
            seed=seed if self.seed is None else self.seed,
            exclude=self.held_out_rows(),
        )

    def attach(self, trainer) -> None:
        """Install the mixture sampler on `trainer` and register this callback with it.

        The trainer must train for a fixed `max_steps`, on either this curriculum's
        `train_dataset()` or a dataset carrying its `dmc_dataset` column (such as the one
        `SFTTrainer` builds from `hf_dataset()`; packing drops that column and is not supported).

        Under DDP (torchrun, accelerate launch) every rank runs the same sampler over global
        micro-batches of `per_device_batch_size x world_size` rows; accelerate's data loader hands
        rank r the r-th slice of each, so the ranks together train on the rows one process draws
        with the same global batch, and every rank's schedule advances alike.
        """
        args = trainer.args
        if args.max_steps is None or args.max_steps <= 0:
            raise ValueError("the DMC curriculum needs a fixed number of optimizer steps: set max_steps > 0 in the trainer args")
        if args.ignore_data_skip:
            logger.warning("ignore_data_skip=True: a resumed run will not replay the sampler, so it will not draw "
                           "the batches an uninterrupted run draws")
        if args.world_size > 1 and args.accelerator_config.split_batches:
            raise ValueError("the DMC curriculum shards whole per-device batches across ranks: "
                             "set accelerator_config split_batches=False")
        ds = trainer.train_dataset
        if ds is self.dataset:
            labels = list(self.dataset.labels)
        else:
            cols = getattr(ds, "column_names", None)
            if not cols or DATASET_COLUMN not in cols:
                raise ValueError(
                    f"the trainer's train_dataset has no {DATASET_COLUMN!r} column: pass curriculum.train_dataset() "
                    f"or curriculum.hf_dataset() as train_dataset (without packing); columns: {cols}"
                )
            # Read before Trainer drops unused columns; rows keep their positions, so indices stay valid.
            labels = [int(x) for x in ds[DATASET_COLUMN]]
        batch_size = int(trainer._train_batch_size) * max(1, int(args.world_size))
        num_batches = int(args.max_steps) * int(args.gradient_accumulation_steps)
        seed = int(args.seed if self.seed is None else self.seed)

        def _get_train_sampler(train_dataset=None):
            return self.sampler(labels, batch_size=batch_size, num_batches=num_batches, seed=seed)

        # Trainer builds its DataLoader from `_get_train_sampler`; overriding it on the instance is the
        # one hook that serves a custom sampler without subclassing the user's trainer.
        trainer._get_train_sampler = _get_train_sampler
        if self not in trainer.callback_handler.callbacks:
            trainer.add_callback(self)

    # -- state --------------------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "schedule": self.schedule.state_dict(), "history": self.history}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if state.get("kind") != self.kind:
            raise ValueError(f"checkpointed curriculum is {state.get('kind')!r}, this run's is {self.kind!r}")
        self.schedule.load_state_dict(state["schedule"])
        self.history = list(state["history"])

    def _emit(self, event: dict[str, Any]) -> None:
        self.history.append(event)
        logger.info("curriculum %s at step %s: %s", event.get("event"), event.get("step"), event.get("mixture"))
        if self.on_event is not None:
            self.on_event(event)

    def _decide_initial(self, **kwargs) -> None:
        entry = self.schedule.set(self._initial, step=0, reason=self._initial_reason)
        self._emit({"event": "mixture", "step": 0, "mixture": dict(zip(self.names, entry.weights)), "reason": entry.reason})

    # -- TrainerCallback hooks -----------------------------------------------------------------------
    def on_train_begin(self, args, state, control, **kwargs):
        if state.global_step > 0:
            ckpt = Path(self.resume_dir) if self.resume_dir else Path(args.output_dir) / f"checkpoint-{state.global_step}"
            path = ckpt / STATE_FILE
            if not path.is_file():
                raise FileNotFoundError(
                    f"resuming at step {state.global_step} but {path} does not exist: the curriculum state is saved "
                    "with each checkpoint; set `curriculum.resume_dir` to the checkpoint being resumed"
                )
            self.load_state_dict(json.loads(path.read_text()))
            logger.info("curriculum state restored from %s", path)
            return
        if self.schedule.entries:
            raise RuntimeError("this curriculum already ran: create a new one for a new training run")
        self._decide_initial(**kwargs)

    def on_save(self, args, state, control, **kwargs):
        if not args.should_save:
            return
        ckpt = Path(args.output_dir) / f"checkpoint-{state.global_step}"
        if ckpt.is_dir():
            atomic_write_json(ckpt / STATE_FILE, self.state_dict())

    # -- summaries ------------------------------------------------------------------------------------
    def rows_drawn(self) -> dict[str, int]:
        """Training rows drawn per dataset so far (including the sampler's look-ahead)."""
        tot = np.zeros(len(self.names), dtype=np.int64)
        for counts in self.schedule.selections:
            tot += np.asarray(counts, dtype=np.int64)
        return dict(zip(self.names, tot.tolist()))


class ScheduledCurriculum(MixtureCurriculum):
    """A fixed schedule of single datasets: `phases` = [(dataset, start), ...], the first starting
    at 0, each trained on alone from its start to the next one's. A start is an optimizer step
    (int) or a fraction of the run's `max_steps` (float in [0, 1)), so one schedule reads the same
    for runs of any length. This is what a curriculum chosen by hand, or with hindsight (E3's
    oracle), looks like; the switches take effect exactly at their steps.
    """

    kind = "scheduled"

    def __init__(self, pool: Sequence[CandidateDataset], phases: Sequence[tuple[str, int | float]], *,
                 seed: int | None = None, reason: str = "", on_event: EventSink | None = None):
        super().__init__(pool, None, seed=seed, reason=reason, on_event=on_event)
        if not phases:
            raise ValueError("a schedule needs at least one phase")
        unknown = [n for n, _ in phases if n not in self.names]
        if unknown:
            raise KeyError(f"schedule datasets {unknown} are not candidate datasets {self.names}")
        if phases[0][1] != 0:
            raise ValueError(f"a schedule's first phase starts at 0, got {phases[0][1]!r}")
        for _, at in phases:
            if isinstance(at, float) and not 0.0 <= at < 1.0:
                raise ValueError(f"a schedule's fractional start must lie in [0, 1), got {at}")
            if isinstance(at, int) and at < 0:
                raise ValueError(f"a schedule's start step must be >= 0, got {at}")
        self.phases = [(str(n), at) for n, at in phases]
        self._grad_accum = 1
        self._max_steps = 0

    def phase_steps(self, max_steps: int) -> list[tuple[str, int]]:
        """The phases with their start steps in a run of `max_steps` (strictly increasing)."""
        out = [(n, at if isinstance(at, int) else int(round(at * max_steps))) for n, at in self.phases]
        steps = [a for _, a in out]
        if any(b <= a for a, b in zip(steps, steps[1:])) or steps[-1] >= max(max_steps, 1):
            raise ValueError(f"schedule {self.phases}: starts {steps} must increase and lie below the run's "
                             f"{max_steps} steps")
        return out

    def _decide_initial(self, **kwargs) -> None:
        for name, step in self.phase_steps(self._max_steps):
            w = [1.0 if n == name else 0.0 for n in self.names]
            entry = MixtureEntry(from_batch=step * self._grad_accum, step=step, weights=w,
                                 reason=f"schedule: {name} from step {step}")
            self.schedule.entries.append(entry)
            self._emit({"event": "mixture", "step": step, "mixture": dict(zip(self.names, w)), "reason": entry.reason})

    def on_train_begin(self, args, state, control, **kwargs):
        self._grad_accum = int(args.gradient_accumulation_steps)
        self._max_steps = int(state.max_steps)
        return super().on_train_begin(args, state, control, **kwargs)


class DMCCurriculumCallback(MixtureCurriculum):
    """The dynamic DMC curriculum: every `rescore_every` optimizer steps, re-score a fixed probe
    subset of each candidate dataset with the current weights and set the mixture by `policy`.

    `rescore_fn(student, probes_by_dataset) -> {dataset: score}` (higher = more compatible, NaN =
    could not be measured) defaults to DMC (range [0, 1]) via `dmc.curriculum.rescore.DMCRescorer`,
    with `target` as the target questions for the difficulty match. The student passed to it wraps
    the trainer's current model and tokenizer unless `student` is given. Re-scoring runs in eval
    mode under forked RNG states, so it does not perturb the training randomness.
    Scores and the mixture are emitted as an event (and kept in `history`) at every re-score.

    `initial_scores` ({dataset: score}, e.g. DMC of the full datasets on the untouched student)
    sets the first mixture instead of a probe re-score at step 0: the student has not changed yet,
    and a score over every sample is less noisy than one over a small probe.

    `rescore_every` is a number of steps or "auto" (a quarter of the run's `max_steps`, fixed when
    training starts). The re-scorer's standard errors (`last_details[dataset]["dmc_se"]`, from its
    bootstrap over probe samples) go to the policy, which for `argmax` switches only when a gap
    clears them at `switch_confidence`, and into each re-score event as `noise`.
    """

    kind = "dynamic"

    def __init__(
        self,
        pool: Sequence[CandidateDataset],
        *,
        rescore_every: int | str = CurriculumSettings.rescore_every,
        probe_size: int | str | None = CurriculumSettings.probe_size,
        policy: str | MixturePolicy = CurriculumSettings.policy,
        switch_confidence: float = CurriculumSettings.switch_confidence,
        train_pass: bool = CurriculumSettings.train_pass,
        holdout_probes: bool = CurriculumSettings.holdout_probes,
        rescore_fn: RescoreFn | None = None,
        student=None,
        target=None,
        seed: int | None = None,
        on_event: EventSink | None = None,
        initial_scores: Mapping[str, float] | None = None,
    ):
        super().__init__(pool, None, seed=seed, on_event=on_event)
        if initial_scores is not None:
            unknown = sorted(set(initial_scores) - set(self.names))
            missing = [n for n in self.names if n not in initial_scores]
            if unknown or missing:
                raise KeyError(f"initial_scores must score exactly the candidate datasets {self.names}: "
                               f"unknown {unknown}, missing {missing}")
        self.initial_scores = dict(initial_scores) if initial_scores is not None else None
        resolve_rescore_every(rescore_every, 1)  # checks the spelling now, resolved when training starts
        resolve_probe_size(probe_size, 1)  # checks the spelling
        self.rescore_every_setting = rescore_every
        # steps between re-scores: an integer as given; "auto" is resolved from max_steps at train begin
        self.rescore_every: int | None = rescore_every if isinstance(rescore_every, int) else None
        self.probe_size = probe_size
        self.policy = make_policy(policy, confidence=switch_confidence)
        self.rescore_fn = rescore_fn
        self.student = student
        self._wrapped: Student | None = None  # the trainer's model as a Student, kept between re-scores
        self.target = target
        self.probes = self._choose_probes(pool, probe_size, 0 if seed is None else seed)
        self.rescore_seconds = 0.0
        self.n_rescores = 0
        self.train_pass = train_pass
        self.observer: TrainingPassStats | None = None
        self.holdout_probes = holdout_probes
        self._held_out: list[int] | None = None

    def held_out_rows(self) -> list[int]:
        """With `holdout_probes`, the rows of each dataset's probe, never trained on, so that a
        re-score measures every dataset on samples (and questions) the student was not trained on,
        as on the untouched student; otherwise the dataset it trains on looks more aligned and
        easier than the others by memorization alone. A dataset keeps its probe in training when
        holding it out would leave less than half of its rows."""
        if self._held_out is None:
            out: list[int] = []
            if self.holdout_probes and self.probe_size is not None:
                probe = {(k, s.hash) for k, name in enumerate(self.names) for s in self.probes[name]}
                rows: dict[int, list[int]] = {}
                for i, (lab, s) in enumerate(zip(self.dataset.labels, self.dataset.samples)):
                    if (lab, s.hash) in probe:
                        rows.setdefault(lab, []).append(i)
                sizes = np.bincount(np.asarray(self.dataset.labels), minlength=len(self.names))
                out = [i for k, idx in rows.items() if 2 * len(idx) <= sizes[k] for i in idx]
            self._held_out = out
        return self._held_out

    @staticmethod
    def _choose_probes(pool: Sequence[CandidateDataset], size: int | str | None, seed: int
                       ) -> dict[str, list[Sample]]:
        """A fixed probe per dataset (so successive scores differ because the student changed, not
        the subset), of `size` samples (auto: by the dataset's size, see
        dmc.curriculum.settings.resolve_probe_size), chosen by question: each dataset takes its
        samples whose questions rank first under a seeded hash, so datasets that answer the same
        questions probe the same ones and the student's attempts at them are shared (the subsample
        `dmc score --max-samples` draws)."""
        return {d.name: subsample(d.samples, resolve_probe_size(size, len(d.samples)), seed) for d in pool}

    def _resolve_rescore_fn(self) -> RescoreFn:
        if self.rescore_fn is None:
            self.rescore_fn = DMCRescorer(target=self.target)
        return self.rescore_fn

    def _student_for(self, model, processing_class):
        if self.student is not None:
            self.student.refresh_fingerprint()
            return self.student
        if model is None or processing_class is None:
            raise ValueError("re-scoring needs the trainer's model and tokenizer (processing_class), or pass student=")
        tok = getattr(processing_class, "tokenizer", processing_class)
        # A PEFT model's base module already runs the injected adapters; score that plain module.
        base = model.get_base_model() if hasattr(model, "get_base_model") else model
        wrapped = self._wrapped
        if wrapped is not None and wrapped.model is base and wrapped.tokenizer is tok:
            # the same model with new weights: keep the wrapper, and with it the probes' encodings
            wrapped.refresh_fingerprint()
            return wrapped
        self._wrapped = Student.from_model(base, tok, name="training-checkpoint")
        return self._wrapped

    def attach(self, trainer) -> None:
        """As `MixtureCurriculum.attach`; with `train_pass`, and a collator that names its rows
        (`SFTCollator.lookup`), also hooks the trained model's forward so that the datasets being
        trained on are re-scored from their training rows (dmc.curriculum.observe)."""
        super().attach(trainer)
        lookup = getattr(trainer.data_collator, "lookup", None)
        if self.train_pass and callable(lookup) and isinstance(self._resolve_rescore_fn(), DMCRescorer):
            self.observer = TrainingPassStats(lookup)
            self.observer.attach(trainer.model)

    def on_train_end(self, args, state, control, **kwargs):
        if self.observer is not None:
            self.observer.detach()

    def on_save(self, args, state, control, **kwargs):
        if self.observer is None:
            return super().on_save(args, state, control, **kwargs)
        # a resumed run re-scores from the same rows as an uninterrupted one (every rank's, under DDP)
        observed = _gathered(self.observer.observed)
        self.observer.seen |= set(observed.rows)
        ckpt = Path(args.output_dir) / f"checkpoint-{state.global_step}"
        if args.should_save and ckpt.is_dir():
            # before the curriculum state, which marks a checkpoint complete (a kill in between
            # leaves one without it, and resuming takes the one before)
            observed.write(ckpt / OBSERVED_FILE)
        super().on_save(args, state, control, **kwargs)

    def _restore_observed(self, ckpt: Path) -> None:
        if self.observer is None:
            return
        path = ckpt / OBSERVED_FILE
        if not path.is_file():
            raise FileNotFoundError(f"resuming from {ckpt} but {path} does not exist: the training pass's rows are "
                                    "saved with each checkpoint of a dynamic-dmc run")
        by_key = {(self.names[k], s.hash): s for s, k in zip(self.dataset.samples, self.dataset.labels)}
        self.observer.observed = Observed.read(path, by_key)

    def _observed(self, step: int) -> Observed | None:
        """What the training pass saw in the last half re-score interval before `step`, the same on
        every rank. Older passes measured an older student (in the multi-epoch regime of small
        pools they all fall at the start of the interval), so they are left out; they still count
        as trained on."""
        if self.observer is None:
            return None
        observed = _gathered(self.observer.take())
        self.observer.seen |= set(observed.rows)
        return observed.since(step - max(1, (self.rescore_every or 1) // 2))

    def rescore(self, model=None, processing_class=None, step: int = 0) -> dict[str, float]:
        """Score every candidate dataset's probe with the current weights (at optimizer step `step`);
        returns {dataset: score}."""
        fn = self._resolve_rescore_fn()
        observed = self._observed(step)
        student = self._student_for(model, processing_class)
        net = student.model
        was_training = net.training
        py_state, np_state = random.getstate(), np.random.get_state()
        devices = [net.device.index or 0] if getattr(net, "device", torch.device("cpu")).type == "cuda" else []
        t0 = time.perf_counter()
        try:
            net.eval()
            with torch.random.fork_rng(devices=devices):
                scores = dict(fn(student, self.probes, observed=observed) if observed is not None
                              else fn(student, self.probes))
                scores = self._refined(fn, student, scores)
        finally:
            net.train(was_training)
            random.setstate(py_state)
            np.random.set_state(np_state)
        self.rescore_seconds += time.perf_counter() - t0
        self.n_rescores += 1
        missing = [n for n in self.names if n not in scores]
        if missing:
            raise KeyError(f"rescore_fn returned no score for datasets {missing}")
        return {n: float(scores[n]) if scores[n] is not None else math.nan for n in self.names}

    def _refined(self, fn: RescoreFn, student, scores: dict[str, float]) -> dict[str, float]:
        """`scores` made precise enough for the policy to decide: while it finds the decision
        undecided (a challenger leads within the noise), a re-scorer that can (`refine`) gathers
        more evidence on the contenders and scores again, until the evidence decides or runs out."""
        refine = getattr(fn, "refine", None)
        undecided = getattr(self.policy, "undecided", None)
        if not (callable(refine) and callable(undecided)):
            return scores
        while contenders := undecided(self.names, {n: _float_or_nan(scores.get(n)) for n in self.names},
                                      noise=_noise_of(fn, self.names)):
            more = refine(student, contenders)
            if more is None:
                break
            scores = dict(more)
        return scores

    def _update(self, step: int, model, processing_class, scores: Mapping[str, float] | None = None) -> None:
        t0 = time.perf_counter()
        given = scores is not None
        scores = ({n: _float_or_nan(scores[n]) for n in self.names} if given
                  else self.rescore(model, processing_class, step))
        noise = {n: math.nan for n in self.names} if given else _noise_of(self.rescore_fn, self.names)
        decision = self.policy.decide(self.names, scores, self.schedule.current, noise=noise)
        entry = self.schedule.set(decision.weights, step=step, reason=decision.reason)
        event = {
            "event": "rescore",
            "step": step,
            "scores": {n: _clean(v) for n, v in scores.items()},
            "mixture": dict(zip(self.names, entry.weights)),
            "from_batch": entry.from_batch,
            "reason": decision.reason + (" (initial scores)" if given else ""),
            "seconds": round(time.perf_counter() - t0, 4),
        }
        if given:
            event["source"] = "initial_scores"  # no probe was re-scored for this decision
        else:
            event["noise"] = {n: _clean(v) for n, v in noise.items()}  # bootstrap standard errors
            for key in ("details", "timing"):
                extra = getattr(self.rescore_fn, f"last_{key}", None)
                if extra:
                    event[key] = extra
        self._emit(event)

    def _decide_initial(self, **kwargs) -> None:
        self._update(0, kwargs.get("model"), kwargs.get("processing_class"), self.initial_scores)

    def on_train_begin(self, args, state, control, **kwargs):
        self.rescore_every = resolve_rescore_every(self.rescore_every_setting, state.max_steps or 1)
        if state.global_step > 0:
            super().on_train_begin(args, state, control, **kwargs)
            self._restore_observed(Path(self.resume_dir) if self.resume_dir else
                                   Path(args.output_dir) / f"checkpoint-{state.global_step}")
            return
        if state.max_steps and state.max_steps <= self.rescore_every:
            # a run shorter than one interval keeps its first mixture: say so instead of doing it silently
            logger.warning("the curriculum re-scores every %d steps and this run has %d: it will never re-score "
                           "(lower rescore_every, or use auto, to make it dynamic)", self.rescore_every,
                           state.max_steps)
        return super().on_train_begin(args, state, control, **kwargs)

    def on_step_begin(self, args, state, control, **kwargs):
        if self.observer is not None:
            self.observer.step = state.global_step  # the step whose forward passes come next

    def on_step_end(self, args, state, control, **kwargs):
        step = state.global_step
        if self.rescore_every and step % self.rescore_every == 0 and step < state.max_steps:
            self._update(step, kwargs.get("model"), kwargs.get("processing_class"))

    def state_dict(self) -> dict[str, Any]:
        d = super().state_dict()
        d["policy"] = {"name": self.policy.name, **self.policy.state_dict()}
        d["rescore_seconds"] = self.rescore_seconds
        d["n_rescores"] = self.n_rescores
        if self.observer is not None:
            d["trained_rows"] = sorted(self.observer.seen)  # samples trained on: their later passes are not held-out
        return d

    def load_state_dict(self, state: dict[str, Any]) -> None:
        super().load_state_dict(state)
        if state["policy"]["name"] != self.policy.name:
            raise ValueError(f"checkpointed policy {state['policy']['name']!r} differs from this run's {self.policy.name!r}")
        self.policy.load_state_dict(state["policy"])
        self.rescore_seconds = float(state.get("rescore_seconds", 0.0))
        self.n_rescores = int(state.get("n_rescores", 0))
        if self.observer is not None:
            self.observer.seen = set(state.get("trained_rows") or [])

