"""Accuracy of a student on an eval set (greedy pass@1; pass@k and maj@k from k samples)."""

from dmc.evaluation.evaluate import EVAL_BATCH_SIZE, EVAL_MAX_NEW_TOKENS, EvalResult, evaluate, majority, pass_status, save_eval, summary_rows

__all__ = ["EVAL_BATCH_SIZE", "EVAL_MAX_NEW_TOKENS", "EvalResult", "evaluate", "majority", "pass_status", "save_eval", "summary_rows"]
