"""Example: add the DMC curriculum to your own TRL `SFTTrainer` (four lines marked "DMC").

The curriculum serves the pool's rows through its mixture sampler and re-scores the candidate
datasets with the current weights every `rescore_every` steps; the rest is plain TRL::

    from dmc.data import load_pool, load_eval_set
    from dmc.students import load_student
    from dmc.training.example_sfttrainer import run

    pool = load_pool(["data/r1.jsonl", "data/gpt4o.jsonl", "data/small-teacher.jsonl"])
    student = load_student("smollm2-135m", dtype="float32")
    curriculum = run(pool, student.model, student.tokenizer, "runs/sft-dmc", steps=400,
                     target=load_eval_set("data/eval.jsonl"))
    curriculum.history   # one event per re-score: DMC per dataset and the mixture chosen

Resuming (`trainer.train(resume_from_checkpoint=True)`) restores the curriculum from the
checkpoint, so the resumed run draws the same batches as an uninterrupted one.
"""

from __future__ import annotations

from collections.abc import Sequence

from dmc.data.schema import CandidateDataset, EvalItem
from dmc.curriculum.callback import DMCCurriculumCallback, RescoreFn
from dmc.curriculum.settings import CurriculumSettings


def run(
    pool: Sequence[CandidateDataset],
    model,
    tokenizer,
    output_dir: str,
    *,
    steps: int = 400,
    batch_size: int = 8,
    learning_rate: float = 2e-4,
    rescore_every: int | str = CurriculumSettings.rescore_every,
    probe_size: int | str | None = CurriculumSettings.probe_size,
    policy: str = CurriculumSettings.policy,
    target: Sequence[EvalItem] | None = None,
    rescore_fn: RescoreFn | None = None,
    save_steps: int | None = None,
    resume: bool = False,
    use_cpu: bool = True,
) -> DMCCurriculumCallback:
    """Fine-tune `model` with TRL's SFTTrainer under the dynamic DMC curriculum; returns the curriculum.

    `rescore_fn` defaults to DMC v1 (dmc.curriculum.rescore.DMCRescorer with `target` for C_T).
    """
    from trl import SFTConfig, SFTTrainer

    # DMC: the curriculum over the candidate datasets (DMC re-scoring unless rescore_fn is given).
    curriculum = DMCCurriculumCallback(pool, rescore_every=rescore_every, probe_size=probe_size, policy=policy,
                                       rescore_fn=rescore_fn, target=target)
    args = SFTConfig(
        output_dir=output_dir,
        max_steps=steps,  # the curriculum needs a fixed number of steps
        per_device_train_batch_size=batch_size,
        learning_rate=learning_rate,
        save_strategy="steps" if save_steps else "no",
        save_steps=save_steps or 500,
        report_to=[],
        use_cpu=use_cpu,
    )
    trainer = SFTTrainer(
        model=model,
        args=args,
        train_dataset=curriculum.hf_dataset(),  # DMC: the pool, with the column the sampler reads
        processing_class=tokenizer,
        callbacks=[curriculum],  # DMC: re-scoring and checkpointed curriculum state
    )
    curriculum.attach(trainer)  # DMC: serve batches from the curriculum's mixture sampler
    trainer.train(resume_from_checkpoint=True if resume else None)
    return curriculum
