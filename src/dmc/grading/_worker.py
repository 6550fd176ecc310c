"""The math-verify worker process: `python -m dmc.grading._worker`.

Reads one JSON request per line on stdin, ``{"items": [[id, "module:function", [args...]], ...]}``,
runs the items in order and writes one JSON line per item on stdout as soon as it finishes:
``{"id": id, "ok": true, "value": ...}`` or ``{"id": id, "ok": false, "error": "..."}``.
The first line written is ``{"ready": true, ...}`` once math-verify is imported. Exits on EOF.

math-verify is not thread-safe and can hang inside sympy, so the parent talks to this process
only, one request at a time, and kills it when an item runs past its deadline.
"""

from __future__ import annotations

import importlib
import json
import os
import sys
from typing import Any

from dmc.memo import Memo

_PARSE_CACHE: Memo[list] = Memo(4096)
_FUNCS: dict[str, Any] = {}


def _has_math_delimiters(s: str) -> bool:
    return any(tok in s for tok in ("$", "\\(", "\\[", "\\boxed"))


def _is_sympy(x: Any) -> bool:
    from sympy import Basic
    from sympy.matrices import MatrixBase

    return isinstance(x, (Basic, MatrixBase))


def _parse(s: str, timeout: int) -> list:
    """math-verify's parse of `s`, read as LaTeX math ($...$) unless it carries its own delimiters."""
    from math_verify import parse

    key = (s, timeout)
    cached = _PARSE_CACHE.get(key)
    if cached is not None:
        return cached
    result: list = []
    for cand in ([s] if _has_math_delimiters(s) else [f"${s}$", s]):
        result = parse(cand, parsing_timeout=timeout, raise_on_error=True)
        if any(_is_sympy(x) for x in result):
            break
    _PARSE_CACHE.put(key, result)
    return result


def _err(e: BaseException) -> str:
    # str() of a huge sympy object can itself hang: keep it short.
    return f"{type(e).__name__}: {str(e)[:300]}"


def verify_pair(gold: str, answer: str, timeout: int = 5) -> dict[str, Any]:
    """Grade `answer` against `gold` with math-verify: {"status": ..., "reason": ...}.

    `timeout` (whole seconds) bounds each math-verify step through its own signal alarm; the
    parent's hard deadline covers what an alarm cannot interrupt.
    """
    from math_verify import verify
    from math_verify.errors import TimeoutException

    try:
        g = _parse(gold, timeout)
    except TimeoutException:
        return {"status": "ungradable", "reason": "timeout: math-verify while parsing the gold"}
    except Exception as e:
        return {"status": "ungradable", "reason": f"math-verify failed to parse the gold: {_err(e)}"}
    g = [x for x in g if _is_sympy(x)] + [x for x in g if not _is_sympy(x)]
    if not any(_is_sympy(x) for x in g):
        return {"status": "ungradable", "reason": f"math-verify could not parse the gold {gold[:200]!r}"}
    try:
        a = _parse(answer, timeout)
    except TimeoutException:
        return {"status": "ungradable", "reason": "timeout: math-verify while parsing the answer"}
    except Exception as e:
        return {"status": "ungradable", "reason": f"math-verify failed to parse the answer: {_err(e)}"}
    if not any(_is_sympy(x) for x in a):
        return {"status": "wrong", "reason": "answer is not parsable as math"}
    errors: list[str] = []
    for gi in g:
        for ai in a:
            try:
                if verify(gi, ai, timeout_seconds=timeout, raise_on_error=True):
                    return {"status": "correct", "reason": None}
            except TimeoutException:
                errors.append("timeout: math-verify while comparing")
            except Exception as e:
                errors.append(f"math-verify failed to compare: {_err(e)}")
    if errors:  # some comparison could not finish: no verdict either way
        return {"status": "ungradable", "reason": errors[0]}
    return {"status": "wrong", "reason": None}


def _resolve(spec: str) -> Any:
    if spec not in _FUNCS:
        module, _, name = spec.partition(":")
        obj: Any = importlib.import_module(module)
        for part in name.split("."):
            obj = getattr(obj, part)
        _FUNCS[spec] = obj
    return _FUNCS[spec]


def main() -> None:
    # The protocol owns the original stdout; anything printed by libraries goes to stderr.
    out = os.fdopen(os.dup(1), "w", encoding="utf-8", buffering=1)
    os.dup2(2, 1)
    sys.stdout = sys.stderr

    def send(obj: dict[str, Any]) -> None:
        out.write(json.dumps(obj, ensure_ascii=True) + "\n")
        out.flush()

    ready: dict[str, Any] = {"ready": True, "pid": os.getpid()}
    try:
        import logging

        import math_verify

        logging.getLogger("math_verify").setLevel(logging.ERROR)  # its timeout warnings are reported
        # Warm up now (imports, parser tables) so that the first item's deadline excludes it.
        math_verify.verify(math_verify.parse("$\\frac{1}{2}$"), math_verify.parse("$0.5$"))
        ready["math_verify"] = True
    except Exception as e:  # the parent decides what an unavailable math-verify means
        ready["math_verify"] = False
        ready["error"] = _err(e)
    send(ready)
    for line in sys.stdin:
        if not line.strip():
            continue
        request = json.loads(line)
        for rid, spec, args in request["items"]:
            try:
                value = _resolve(spec)(*args)
                send({"id": rid, "ok": True, "value": value})
            except BaseException as e:  # math-verify's TimeoutException derives from BaseException
                if isinstance(e, (KeyboardInterrupt, SystemExit)):
                    raise
                send({"id": rid, "ok": False, "error": _err(e)})


if __name__ == "__main__":
    main()
