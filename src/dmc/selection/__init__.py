"""Static selection from scores: top datasets, DMC-weighted mixtures, top samples by m_i.

`select` is pure (scores and samples in, a `Selection` of samples plus a manifest out);
`write_selection` writes it as chat-format JSONL with a manifest.
"""

from dmc.selection.allocate import proportional_weights, round_counts, softmax_weights, water_fill
from dmc.selection.io import manifest_path_for, selection_records, write_selection
from dmc.selection.select import POLICIES, Selection, parse_policy, select

__all__ = [
    "POLICIES", "Selection", "manifest_path_for", "parse_policy", "proportional_weights", "round_counts",
    "select", "selection_records", "softmax_weights", "water_fill", "write_selection",
]
