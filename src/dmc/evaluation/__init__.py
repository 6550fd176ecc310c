"""Accuracy of a student on an eval set (greedy pass@1; pass@k and maj@k from k samples)."""

from dmc.evaluation.evaluate import EvalResult, evaluate, majority, pass_status, save_eval, summary_rows

__all__ = ["EvalResult", "evaluate", "majority", "pass_status", "save_eval", "summary_rows"]
