"""Static selection from scores: top datasets, DMC-weighted mixtures, top samples by m_i.

`select` is pure (scores and samples in, a `Selection` of samples plus a manifest out);
`write_selection` writes it as chat-format JSONL with a manifest. `dmc.selection.weights` holds the
mixture weights and the NAME[:ARG] policy syntax shared with the curriculum.
"""

from dmc.selection.allocate import round_counts, water_fill
from dmc.selection.io import manifest_path_for, selection_records, write_selection
from dmc.selection.select import POLICIES, Selection, parse_policy, select
from dmc.selection.weights import (
    NoFiniteScore,
    PolicyArg,
    PolicySpec,
    parse_policy_spec,
    proportional_weights,
    rank_by_score,
    softmax_weights,
    top1,
)

__all__ = [
    "POLICIES", "NoFiniteScore", "PolicyArg", "PolicySpec", "Selection", "manifest_path_for", "parse_policy",
    "parse_policy_spec", "proportional_weights", "rank_by_score", "round_counts", "select", "selection_records",
    "softmax_weights", "top1", "water_fill", "write_selection",
]
