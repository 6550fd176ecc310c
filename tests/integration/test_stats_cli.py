"""`dmc stats`: datasets + student in, tokens.parquet and attempts.parquet out."""

from __future__ import annotations

import pandas as pd
import pyarrow.parquet as pq
import pytest
import torch
from typer.testing import CliRunner

from dmc.cli import app
from dmc.data import load_pool, write_jsonl
from dmc.data.schema import Sample
from dmc.stats import ATTEMPTS_SCHEMA, TOKENS_SCHEMA
from dmc.stats.subsample import subsample
from dmc.students.tiny import tiny_student


@pytest.fixture(autouse=True, scope="module")
def _one_torch_thread():
    """Tiny models run fastest on one thread, and the CPU is shared."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


@pytest.fixture(scope="module")
def workspace(tmp_path_factory):
    root = tmp_path_factory.mktemp("stats_cli")
    st = tiny_student("chatml", seed=4)
    st.model.save_pretrained(root / "student")
    st.tokenizer.save_pretrained(root / "student")
    rows = [{"id": f"q{i}", "question": f"What is {i} + {2 * i}?",
             "response": f"{i} + {2 * i} = {3 * i}. The answer is {3 * i}.", "gold": str(3 * i)} for i in range(8)]
    write_jsonl(root / "data" / "stepwise.jsonl", rows)
    write_jsonl(root / "data" / "terse.jsonl", [dict(r, response=f"The answer is {r['gold']}.") for r in rows])
    write_jsonl(root / "eval.jsonl", [{"id": f"e{i}", "question": f"What is {i} + 1?", "gold": str(i + 1)} for i in range(3)])
    return root


def run(args):
    result = CliRunner().invoke(app, ["stats", *map(str, args)])
    return result


def test_stats_writes_both_tables_and_summaries(workspace):
    out = workspace / "out"
    args = [workspace / "data", "--student", workspace / "student", "--out", out, "--eval", workspace / "eval.jsonl",
            "--max-samples", 5, "--seed", 1, "--attempt-k", 2, "--attempt-temperature", 0.8, "--attempt-max-new-tokens", 6, "--ifd",
            "--no-progress"]
    res = run(args)
    assert res.exit_code == 0, res.output
    tokens = pd.read_parquet(out / "tokens.parquet")
    attempts = pd.read_parquet(out / "attempts.parquet")
    assert pq.read_schema(out / "tokens.parquet").remove_metadata().equals(TOKENS_SCHEMA)
    assert pq.read_schema(out / "attempts.parquet").remove_metadata().equals(ATTEMPTS_SCHEMA)
    assert tokens.groupby("dataset").size().to_dict() == {"stepwise": 5, "terse": 5}
    # Subsampling keeps the same questions in both datasets, so 5 shared questions + 3 eval ones.
    by_ds = tokens.groupby("dataset")["question_hash"].apply(set)
    assert by_ds["stepwise"] == by_ds["terse"]
    assert attempts["question_hash"].nunique() == 5 + 3 and len(attempts) == 8 * 2
    assert tokens["logprob_noq"].notna().all()
    # One summary line per dataset, with the numbers of the tables.
    for name, g in tokens.groupby("dataset"):
        line = next(ln for ln in res.output.splitlines() if ln.startswith(f"{name}:"))
        assert f"{len(g)} samples" in line and f"{int(g.n_tokens.sum()):,} tokens" in line
        mean_lp = sum(float(x.sum()) for x in g.logprob) / g.n_tokens.sum()
        assert f"mean logprob {mean_lp:.3f}" in line and "pass rate" in line
    assert "eval set eval.jsonl: 3 questions" in res.output
    assert "token statistics: 10 samples computed, 0 reused" in res.output

    again = run(args)
    assert again.exit_code == 0, again.output
    assert "token statistics: 0 samples computed, 10 reused" in again.output
    assert "student attempts: 0 questions computed, 8 reused" in again.output
    pd.testing.assert_frame_equal(pd.read_parquet(out / "tokens.parquet"), tokens)


def test_likelihood_capability_writes_the_answers_table(workspace, tmp_path):
    out = tmp_path / "out"
    res = run([workspace / "data", "--student", workspace / "student", "--out", out, "--eval", workspace / "eval.jsonl",
               "--capability", "likelihood", "--no-attempts", "--no-progress"])
    assert res.exit_code == 0, res.output
    answers = pd.read_parquet(out / "answers.parquet")
    # one row per distinct question: the 8 shared by both datasets and the 3 eval ones
    assert len(answers) == 8 + 3 and answers["gold_logprob"].lt(0).all() and answers["n_gold_tokens"].ge(1).all()
    # the terse traces ("The answer is X.") are the probes of their questions: the tokens pass scored them
    assert "answer likelihoods: 3 answer probes computed, 8 reused from cache" in res.output
    assert "wrote tokens.parquet, answers.parquet to" in res.output
    assert not (out / "attempts.parquet").exists()


def test_no_attempts_and_errors(workspace, tmp_path):
    out = tmp_path / "o"
    common = [workspace / "data" / "terse.jsonl", "--student", workspace / "student", "--out", out,
              "--no-progress", "--cache", tmp_path / "c", "--max-samples", 2]
    assert run([*common, "--attempt-max-new-tokens", 4]).exit_code == 0
    assert (out / "attempts.parquet").exists()
    res = run([*common, "--no-attempts"])
    assert res.exit_code == 0, res.output
    # The earlier run's attempts table is removed: it would not match a later tokens table.
    assert (out / "tokens.parquet").exists() and not (out / "attempts.parquet").exists()
    assert any((tmp_path / "c" / "tokens").iterdir())
    assert "student pass rate n/a" in res.output

    bad = run([tmp_path / "missing.jsonl", "--student", workspace / "student", "--out", out])
    assert bad.exit_code == 2 and "missing.jsonl" in bad.output
    nostudent = run([workspace / "data", "--student", "no-such-student", "--out", out])
    assert nostudent.exit_code == 2 and "no-such-student" in nostudent.output


def test_subsample_picks_shared_questions_deterministically(workspace):
    pool = load_pool([workspace / "data"])
    a, b = (subsample(ds.samples, 4, seed=7) for ds in pool)
    assert [s.question_hash for s in a] == [s.question_hash for s in b]
    assert subsample(pool[0].samples, 4, seed=7) == a  # deterministic
    assert [s.question_hash for s in subsample(pool[0].samples, 4, seed=8)] != [s.question_hash for s in a]
    ids = [s.id for s in a]
    assert ids == [s.id for s in pool[0].samples if s.id in ids]  # original order kept
    assert subsample(pool[0].samples, None) == pool[0].samples
    assert len(subsample([Sample(id="x", prompt=({"role": "user", "content": "q"},), response="r")], 5)) == 1
