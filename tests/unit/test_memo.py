"""The bounded memo behind the scoring path's memoized encodings, masks, verdicts and parses."""

import pytest

from dmc.memo import Memo


def test_memo_drops_the_least_recently_used_value():
    m: Memo[str] = Memo(2)
    m.put("a", "A")
    m.put("b", "B")
    assert m.get("a") == "A"  # now "b" is the least recently used
    m.put("c", "C")
    assert (m.get("a"), m.get("b"), m.get("c"), len(m)) == ("A", None, "C", 2)
    m.put("a", "A2")  # a new value for a kept key replaces it
    assert m.get("a") == "A2" and len(m) == 2
    with pytest.raises(ValueError, match="at least one"):
        Memo(0)
