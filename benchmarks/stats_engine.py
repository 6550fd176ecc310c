"""Benchmark of the token-statistics engine (dmc.stats) against the usual ways of computing the
same numbers, side by side in one process on the same model and the same token sequences:

  engine      dmc.stats: length-bucketed batches (batch_tokens), decoder once, the output head
              and the statistics in chunks over response positions only;
  bare        a plain forward pass (model(...).logits, nothing else) over the engine's batches:
              the floor that statistics are measured against;
  per-sample  batch 1, full logits, full log-softmax (how IFD scripts work);
  padded      fixed-size batches in data order, right-padded, full [batch x seq x vocab] logits
              and log-softmax (how the RSR script works).

All four compute log-prob, rank (1 + #logits strictly greater) and entropy of each response
token (bare computes only the logits); results are cross-checked before timing. Throughput is
non-padding input tokens per second. Peak memory is the extra memory a method needs above the
loaded model: on CUDA, torch's peak allocated bytes; on CPU, the peak resident set size sampled
every 0.5 ms, with glibc told to return every block of 1 MiB or more to the OS on free, so RSS
follows the live tensors.

Usage:
  python benchmarks/stats_engine.py                       # tiny random Llama, 50k vocabulary
  python benchmarks/stats_engine.py --student lab-small   # any name/path dmc.students.load_student takes,
                                                          # on a small generated lab pool
  python benchmarks/stats_engine.py --student lab-small --data LAB_DIR/datasets   # your samples
  python benchmarks/stats_engine.py --student smollm2-135m --samples 24 --check-only   # the cross-check alone

The student loads in --dtype (default "auto", the project's default), so the cross-check covers
the statistics as `dmc score` computes them; `--dtype bfloat16` shows what bfloat16 costs in
agreement.
"""

from __future__ import annotations

import argparse
import ctypes
import gc
import json
import math
import os
import platform
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from dmc.stats.core import Span, checked_split, plan_batches, score_batch  # noqa: E402

TINY = "tiny-llama-50k"


# --------------------------------------------------------------------------------------------
# Memory


def _glibc():
    if platform.system() != "Linux":
        return None
    try:
        return ctypes.CDLL("libc.so.6")
    except OSError:
        return None


_LIBC = _glibc()


def track_frees() -> None:
    """Make glibc mmap every block >= 1 MiB, so freeing it returns it to the OS and RSS follows
    the live tensors (set for the memory phase only: it also makes allocation slower)."""
    if _LIBC is not None:
        _LIBC.mallopt(-3, 1 << 20)  # M_MMAP_THRESHOLD


def _rss() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


class PeakMemory:
    """Peak extra memory (bytes) of the code run inside the context."""

    def __init__(self, device: torch.device):
        self.device = device
        self.peak = 0

    def __enter__(self):
        gc.collect()
        if self.device.type == "cuda":
            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats()
            self.base = torch.cuda.memory_allocated()
            return self
        if _LIBC is not None:
            _LIBC.malloc_trim(0)
        self.base = _rss()
        self._stop = threading.Event()
        self._max = self.base
        self._t = threading.Thread(target=self._sample, daemon=True)
        self._t.start()
        return self

    def _sample(self):
        while not self._stop.is_set():
            self._max = max(self._max, _rss())
            time.sleep(0.0005)

    def __exit__(self, *exc):
        if self.device.type == "cuda":
            torch.cuda.synchronize()
            self.peak = torch.cuda.max_memory_allocated() - self.base
        else:
            self._max = max(self._max, _rss())
            self._stop.set()
            self._t.join()
            self.peak = self._max - self.base
        return False


# --------------------------------------------------------------------------------------------
# Methods: each takes the spans and returns {span index: (logprob, rank, entropy)} tensors.


def _pad(spans: list[Span], pad_id: int, device):
    width = max(len(s.input_ids) for s in spans)
    ids = torch.full((len(spans), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(spans), width), dtype=torch.long)
    for b, s in enumerate(spans):
        ids[b, : len(s.input_ids)] = torch.tensor(s.input_ids)
        mask[b, : len(s.input_ids)] = 1
    return ids.to(device), mask.to(device)


def run_engine(model, spans, batches, chunk_elements, device):
    out = {}
    for idx in batches:
        for i, st in zip(idx, score_batch(model, [spans[i] for i in idx], chunk_elements=chunk_elements)):
            out[i] = (torch.from_numpy(st.logprob), torch.from_numpy(st.rank), torch.from_numpy(st.entropy))
    return out


def run_bare(model, spans, batches, device):
    with torch.inference_mode():
        for idx in batches:
            ids, mask = _pad([spans[i] for i in idx], 0, device)
            model(input_ids=ids, attention_mask=mask, use_cache=False).logits
    return {}


def _stats_from_full(logits, lsm, ids, s: Span, b: int):
    """Statistics of span s (row b) read off full float32 logits and their log-softmax."""
    pos = torch.arange(s.start - 1, s.end - 1, device=logits.device)
    tgt = ids[b, s.start : s.end, None]
    lg, ls = logits[b, pos], lsm[b, pos]
    lp = ls.gather(1, tgt).squeeze(1)
    rank = (lg > lg.gather(1, tgt)).sum(-1) + 1
    ent = -(ls.exp() * ls).sum(-1)
    return lp.cpu(), rank.cpu(), ent.cpu()


def run_per_sample(model, spans, device):
    """Batch 1; full logits upcast to float32 and log-softmax over every position, as a causal-LM
    loss with masked labels computes them (Cherry LLM's IFD script calls model(ids, labels=...))."""
    out = {}
    with torch.inference_mode():
        for i, s in enumerate(spans):
            ids = torch.tensor([list(s.input_ids)], device=device)
            logits = model(input_ids=ids, use_cache=False).logits.float()
            lsm = torch.log_softmax(logits, dim=-1)
            out[i] = _stats_from_full(logits, lsm, ids, s, 0)
    return out


def run_padded(model, spans, batch_size, device):
    """Fixed-size batches in data order, right-padded; full [batch, seq, vocab] float32 logits and
    log-softmax (how the RSR script scores a dataset)."""
    out = {}
    with torch.inference_mode():
        for start in range(0, len(spans), batch_size):
            chunk = spans[start : start + batch_size]
            ids, mask = _pad(chunk, 0, device)
            logits = model(input_ids=ids, attention_mask=mask, use_cache=False).logits.float()
            lsm = torch.log_softmax(logits, dim=-1)
            for b, s in enumerate(chunk):
                out[start + b] = _stats_from_full(logits, lsm, ids, s, b)
            del logits, lsm
    return out


# --------------------------------------------------------------------------------------------


def build_model(spec: str, device: str, vocab: int, hidden: int, layers: int, dtype: str = "auto"):
    """(model, description, student or None)."""
    if spec == TINY:
        from transformers import LlamaConfig, LlamaForCausalLM

        torch.manual_seed(0)
        cfg = LlamaConfig(vocab_size=vocab, hidden_size=hidden, intermediate_size=4 * hidden, num_hidden_layers=layers,
                          num_attention_heads=max(1, hidden // 32), num_key_value_heads=max(1, hidden // 64),
                          max_position_embeddings=4096, tie_word_embeddings=True)
        model = LlamaForCausalLM(cfg).eval().to(device)
        return model, f"random Llama (vocab {vocab}, hidden {hidden}, {layers} layers)", None
    from dmc.students import load_student

    st = load_student(spec, device=device, dtype=dtype)
    return st.model, f"{st.name} ({type(st.model).__name__}, {st.model.dtype})", st


def data_spans(student, paths: list[str], n: int, max_length: int) -> list[Span]:
    """Real samples, templated and masked by the student as dmc.stats does (first n of the pool,
    spread evenly over its datasets)."""
    from dmc.data import load_pool

    pool = load_pool(paths)
    per = max(1, n // len(pool))
    spans = []
    for ds in pool:
        for s in ds.samples[:per]:
            e = student.encode(s.prompt, s.response, max_length=max_length)
            if e.response_end > e.response_start >= 1:
                spans.append(Span(e.input_ids, e.response_start, e.response_end))
    return spans


def lab_pool(out: Path, n: int) -> list[str]:
    """A small generated pool (the lab's arith family, n samples per dataset) under `out`."""
    from dmc.lab import build_lab

    return [str(p) for p in build_lab(out, family="arith", n=n, n_eval=1)["arith"].pool.values()]


def make_spans(n: int, vocab: int, prompt: tuple[int, int], response: tuple[int, int], seed: int) -> list[Span]:
    g = torch.Generator().manual_seed(seed)
    spans = []
    for _ in range(n):
        p = int(torch.randint(prompt[0], prompt[1] + 1, (1,), generator=g))
        r = int(torch.randint(response[0], response[1] + 1, (1,), generator=g))
        ids = torch.randint(0, vocab, (p + r,), generator=g).tolist()
        spans.append(Span(ids, p, p + r))
    return spans


@dataclass
class Result:
    name: str
    seconds: float
    tokens: int
    peak_bytes: int | None = None

    @property
    def tok_s(self) -> float:
        return self.tokens / self.seconds


def time_all(methods: dict, tokens: int, repeat: int, device: torch.device) -> dict[str, Result]:
    """Best of `repeat` runs per method, the methods interleaved so that load changes hit all alike.

    On CPU the clock is the main thread's CPU time (torch runs inline with one thread), which a
    machine shared with other jobs disturbs far less than wall time; on CUDA it is wall time.
    """
    clock = time.perf_counter if device.type == "cuda" else time.thread_time
    best = {name: math.inf for name in methods}
    for _ in range(repeat):
        for name, fn in methods.items():
            t0 = clock()
            fn()
            if device.type == "cuda":
                torch.cuda.synchronize()
            best[name] = min(best[name], clock() - t0)
    return {name: Result(name, sec, tokens) for name, sec in best.items()}


def measure_memory(fn, device) -> int:
    with PeakMemory(device) as pm:
        fn()
    return pm.peak


def check_equal(ref: dict, got: dict, label: str, tol: float = 1e-4) -> str:
    """Agreement with the per-sample reference. Ranks may differ where two logits lie within float
    rounding of each other (batched and unbatched matmuls round differently): a few, by little."""
    worst_lp = worst_ent = 0.0
    rank_mismatch = total = worst_rank = 0
    for i, (lp, rk, en) in ref.items():
        glp, grk, gen = got[i]
        worst_lp = max(worst_lp, float((lp.double() - glp.double()).abs().max()))
        worst_ent = max(worst_ent, float((en.double() - gen.double()).abs().max()))
        d = (rk.long() - grk.long()).abs()
        rank_mismatch += int((d > 0).sum())
        worst_rank = max(worst_rank, int(d.max()))
        total += len(rk)
    ok = worst_lp <= tol and worst_ent <= tol and rank_mismatch <= max(1, total // 200)
    return (f"{label}: max |Δlogprob| {worst_lp:.1e}, max |Δentropy| {worst_ent:.1e}, "
            f"ranks differing {rank_mismatch}/{total} (max |Δrank| {worst_rank}) {'OK' if ok else 'MISMATCH'}")


def mib(b: int | None) -> str:
    return "-" if b is None else f"{b / 2**20:,.0f} MiB"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--student", default=TINY, help=f"'{TINY}' (default) or a name/path for dmc.students.load_student")
    ap.add_argument("--vocab", type=int, default=50_000, help="vocabulary of the tiny random Llama")
    ap.add_argument("--hidden", type=int, default=64, help="hidden size of the tiny random Llama")
    ap.add_argument("--layers", type=int, default=2, help="layers of the tiny random Llama")
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    ap.add_argument("--samples", type=int, default=48, help="sequences in the throughput workload")
    ap.add_argument("--data", nargs="+", help="candidate datasets (files/directories) to take the throughput workload "
                    "from, encoded by --student (default: a small generated lab pool for a --student, random token "
                    "ids with --prompt/--response lengths for the tiny random model)")
    ap.add_argument("--dtype", default="auto", choices=("auto", "float32", "bfloat16", "float16"),
                    help="dtype of --student (default: auto, as dmc loads students)")
    ap.add_argument("--check-only", action="store_true", help="run the cross-check only (no timing, no memory)")
    ap.add_argument("--max-length", type=int, default=1024, help="with --data: max tokens per sample")
    ap.add_argument("--prompt", type=int, nargs=2, default=(16, 96), metavar=("MIN", "MAX"), help="prompt tokens")
    ap.add_argument("--response", type=int, nargs=2, default=(32, 480), metavar=("MIN", "MAX"), help="response tokens")
    ap.add_argument("--batch-tokens", type=int, default=8192, help="engine: padded tokens per batch")
    ap.add_argument("--chunk-elements", type=int, default=None, help="engine: float32 logits alive at once (default: per device)")
    ap.add_argument("--padded-batch", type=int, default=8, help="padded reference: sequences per batch")
    ap.add_argument("--mem-seq", type=int, default=2048, help="memory workload: tokens per sequence")
    ap.add_argument("--mem-batch", type=int, default=2, help="memory workload: sequences per batch (all methods)")
    ap.add_argument("--repeat", type=int, default=2, help="timed repetitions (best is kept)")
    ap.add_argument("--json", type=Path, help="also write the figures here")
    args = ap.parse_args(argv)

    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    model, desc, student = build_model(args.student, args.device, args.vocab, args.hidden, args.layers, args.dtype)
    vocab = checked_split(model).vocab
    print(f"model: {desc}; vocab {vocab}; device {device}; torch threads {torch.get_num_threads()}")

    # Throughput workload: real samples, or random ids with varied prompt and response lengths.
    if args.data and student is None:
        ap.error("--data needs a --student with a tokenizer")
    if student is not None:
        with tempfile.TemporaryDirectory() as tmp:
            paths = args.data or lab_pool(Path(tmp), args.samples)
            spans = data_spans(student, paths, args.samples, args.max_length)
    else:
        spans = make_spans(args.samples, vocab, tuple(args.prompt), tuple(args.response), seed=0)
    tokens = sum(len(s.input_ids) for s in spans)
    batches = plan_batches([len(s.input_ids) for s in spans], args.batch_tokens)
    print(f"throughput workload: {len(spans)} sequences, {tokens:,} tokens "
          f"({sum(s.end - s.start for s in spans):,} response tokens); engine batches {len(batches)}, "
          f"padded reference batch {args.padded_batch}")

    methods = {
        "engine": lambda: run_engine(model, spans, batches, args.chunk_elements, device),
        "bare forward": lambda: run_bare(model, spans, batches, device),
        "per-sample ref": lambda: run_per_sample(model, spans, device),
        "padded ref": lambda: run_padded(model, spans, args.padded_batch, device),
    }
    # Warm up and cross-check on the full workload (also the first, untimed pass).
    outs = {name: fn() for name, fn in methods.items() if not (args.check_only and name == "bare forward")}
    checks = {name: check_equal(outs["per-sample ref"], outs[name], name) for name in ("engine", "padded ref")}
    for line in checks.values():
        print("  check " + line)
    del outs
    if args.check_only:
        return 0 if checks["engine"].endswith("OK") else 1
    results = time_all(methods, tokens, args.repeat, device)

    # Memory workload: long sequences, the same batch composition for every method.
    max_pos = getattr(getattr(model, "config", None), "max_position_embeddings", None)
    if max_pos and args.mem_seq > max_pos:
        print(f"memory workload: the model takes at most {max_pos} positions; using {max_pos}-token sequences")
        args.mem_seq = max_pos
    mem_spans = make_spans(args.mem_batch, vocab, (args.mem_seq // 8, args.mem_seq // 8),
                           (args.mem_seq - args.mem_seq // 8,) * 2, seed=1)
    mem_batches = [list(range(len(mem_spans)))]
    mem_methods = {
        "engine": lambda: run_engine(model, mem_spans, mem_batches, args.chunk_elements, device),
        "bare forward": lambda: run_bare(model, mem_spans, mem_batches, device),
        "per-sample ref": lambda: run_per_sample(model, mem_spans, device),
        "padded ref": lambda: run_padded(model, mem_spans, args.mem_batch, device),
    }
    track_frees()
    for name, fn in mem_methods.items():
        results[name].peak_bytes = measure_memory(fn, device)
    print(f"memory workload: {args.mem_batch} x {args.mem_seq} tokens in one batch, vocab {vocab}")

    e, bare, ps, pad = (results[k] for k in ("engine", "bare forward", "per-sample ref", "padded ref"))
    print(f"\ntimes: best of {args.repeat}, {'wall' if device.type == 'cuda' else 'CPU'} seconds")
    print(f"{'method':<16}{'seconds':>10}{'tokens/s':>12}{'engine speed-up':>17}{'peak extra memory':>20}")
    for r in results.values():
        print(f"{r.name:<16}{r.seconds:>10.3f}{r.tok_s:>12,.0f}{e.tok_s / r.tok_s:>16.2f}x{mib(r.peak_bytes):>20}")
    figures = {
        "speedup_vs_per_sample": e.tok_s / ps.tok_s,
        "speedup_vs_padded": e.tok_s / pad.tok_s,
        "cost_vs_bare_forward": e.seconds / bare.seconds,
        "memory_vs_padded": e.peak_bytes / pad.peak_bytes if pad.peak_bytes else float("nan"),
    }
    targets = {
        "speedup_vs_per_sample": (">=", 5.0),
        "speedup_vs_padded": (">=", 1.5),
        "cost_vs_bare_forward": ("<=", 1.25),
        "memory_vs_padded": ("<=", 1 / 3),
    }
    print()
    for k, v in figures.items():
        op, t = targets[k]
        ok = v >= t if op == ">=" else v <= t
        print(f"{k:<24}{v:>8.2f}   target {op} {t:.2f}   {'met' if ok else 'NOT met'}")
    if args.json:
        args.json.write_text(json.dumps({
            "model": desc, "device": str(device), "threads": torch.get_num_threads(), "tokens": tokens,
            "results": {r.name: {"seconds": r.seconds, "tokens_per_s": r.tok_s, "peak_extra_bytes": r.peak_bytes}
                        for r in results.values()},
            "figures": figures,
        }, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
