"""A persistent worker process with hard per-item deadlines (for math-verify).

math-verify can hang inside sympy, uses SIGALRM (main thread only) and is not thread-safe, so it
runs in a separate Python process (`dmc.grading._worker`) that is reused across calls. Items are
sent in batches; results stream back one by one, each with its own deadline. When an item runs
past its deadline the process is killed, the item is reported as a timeout and the rest of the
batch continues in a fresh process. A subprocess (not multiprocessing) is used so that the
caller's `__main__` is never re-imported and JSON, not pickle, crosses the process boundary.
"""

from __future__ import annotations

import atexit
import collections
import itertools
import json
import os
import queue
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

WorkerStatus = Literal["ok", "error", "timeout", "crash"]


@dataclass(frozen=True)
class WorkerResult:
    """`ok` with `value`; `error` (the function raised; `error` has the text); `timeout` (killed
    at the deadline); `crash` (the process died; `error` has its exit code and stderr tail)."""

    status: WorkerStatus
    value: Any = None
    error: str | None = None


class WorkerStartError(RuntimeError):
    """The worker process could not be started (bad environment, import failure)."""


class MathWorker:
    """Runs `module:function` calls in a persistent child process with a hard per-item timeout.

    Thread-safe (calls are serialized); a process forked from the owner starts its own child.
    """

    def __init__(self, startup_timeout: float = 120.0, chunk_size: int = 256) -> None:
        self.startup_timeout = startup_timeout
        self.chunk_size = chunk_size
        self.restarts = 0  # processes killed after a timeout or crash
        self.math_verify_available: bool | None = None  # known once the process has started
        self._proc: subprocess.Popen[str] | None = None
        self._lines: queue.Queue[str | None] = queue.Queue()
        self._stderr: collections.deque[str] = collections.deque(maxlen=40)
        self._ids = itertools.count()
        self._owner = os.getpid()
        self._lock = threading.Lock()

    # -- process management -------------------------------------------------------------------

    @property
    def pid(self) -> int | None:
        """The worker process id, or None when no worker is running."""
        return self._proc.pid if self._proc is not None and self._proc.poll() is None else None

    def _check_owner(self) -> None:
        if os.getpid() != self._owner:  # forked: the child process belongs to the parent
            self._proc = None
            self._owner = os.getpid()
            self._lock = threading.Lock()

    def _start(self) -> None:
        env = dict(os.environ)
        # The child must import this very `dmc`, even when it is not installed.
        src = str(Path(__file__).resolve().parents[2])
        env["PYTHONPATH"] = src + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
        env["PYTHONUNBUFFERED"] = "1"
        proc = subprocess.Popen(
            [sys.executable, "-m", "dmc.grading._worker"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=env,
            text=True,
            encoding="utf-8",
            bufsize=1,
        )
        lines: queue.Queue[str | None] = queue.Queue()
        stderr: collections.deque[str] = collections.deque(maxlen=40)

        def pump_stdout() -> None:
            assert proc.stdout is not None
            for line in proc.stdout:
                lines.put(line)
            lines.put(None)  # EOF: the process exited

        def pump_stderr() -> None:  # drained so a chatty child never blocks on a full pipe
            assert proc.stderr is not None
            for line in proc.stderr:
                stderr.append(line.rstrip("\n"))

        threading.Thread(target=pump_stdout, daemon=True, name="dmc-math-worker-out").start()
        threading.Thread(target=pump_stderr, daemon=True, name="dmc-math-worker-err").start()
        self._proc, self._lines, self._stderr = proc, lines, stderr
        try:
            line = lines.get(timeout=self.startup_timeout)
        except queue.Empty:
            line = None
        msg = json.loads(line) if line else None
        if not msg or not msg.get("ready"):
            self._kill()
            raise WorkerStartError(
                f"the math worker (python -m dmc.grading._worker) did not start within "
                f"{self.startup_timeout:.0f} s; stderr:\n" + "\n".join(stderr)
            )
        self.math_verify_available = bool(msg.get("math_verify"))

    def _kill(self) -> None:
        proc, self._proc = self._proc, None
        if proc is None:
            return
        if proc.poll() is None:
            proc.kill()
        proc.wait()
        for f in (proc.stdin, proc.stdout, proc.stderr):
            if f is not None:
                try:
                    f.close()
                except OSError:
                    pass

    def close(self) -> None:
        """Stop the worker process (it is restarted by the next call)."""
        with self._lock:
            self._check_owner()
            proc = self._proc
            if proc is None:
                return
            try:  # EOF on stdin ends the worker's loop; kill it if it does not leave promptly
                assert proc.stdin is not None
                proc.stdin.close()
                proc.wait(timeout=2)
            except (OSError, subprocess.TimeoutExpired):
                pass
            self._kill()

    # -- calls ----------------------------------------------------------------------------------

    def call(self, fn: str, args: Sequence[Any], timeout: float) -> WorkerResult:
        """Run `fn(*args)` in the worker; `fn` is "module:function" importable by the worker."""
        return self.call_many(fn, [args], timeout)[0]

    def call_many(self, fn: str, args_list: Sequence[Sequence[Any]], timeout: float) -> list[WorkerResult]:
        """Run `fn(*args)` for each args in order, each item within `timeout` seconds.

        Arguments and return values cross the process boundary as JSON.
        """
        if timeout <= 0:
            raise ValueError(f"timeout must be positive, got {timeout}")
        results: list[WorkerResult | None] = [None] * len(args_list)
        with self._lock:
            self._check_owner()
            pending = list(range(len(args_list)))
            while pending:
                if self._proc is None or self._proc.poll() is not None:
                    self._kill()
                    self._start()
                chunk = pending[: self.chunk_size]
                self._run_chunk(fn, args_list, chunk, results, timeout)
                pending = [i for i in pending if results[i] is None]
        return [r for r in results if r is not None]

    def _run_chunk(
        self,
        fn: str,
        args_list: Sequence[Sequence[Any]],
        chunk: list[int],
        results: list[WorkerResult | None],
        timeout: float,
    ) -> None:
        proc = self._proc
        assert proc is not None and proc.stdin is not None
        ids = {next(self._ids): i for i in chunk}
        request = {"items": [[rid, fn, list(args_list[i])] for rid, i in ids.items()]}
        try:
            # One line: the worker reads it whole before it runs anything, so this never blocks
            # behind an item that hangs.
            proc.stdin.write(json.dumps(request, ensure_ascii=True) + "\n")
            proc.stdin.flush()
        except (BrokenPipeError, OSError):
            pass  # the process died; the read below sees EOF and reports the crash
        for rid, i in ids.items():
            deadline = time.monotonic() + timeout
            try:
                line = self._lines.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                results[i] = WorkerResult("timeout", error=f"no result within {timeout:g} s")
                self.restarts += 1
                self._kill()
                return
            if line is None:
                code = proc.wait()
                tail = "\n".join(list(self._stderr)[-10:])
                error = f"math worker exited with code {code}; stderr: {tail}"
                results[i] = WorkerResult("crash", error=error)
                self.restarts += 1
                self._kill()
                return
            msg = json.loads(line)
            if msg.get("id") != rid:
                self._kill()
                raise RuntimeError(f"math worker protocol error: expected result id {rid}, got {line[:200]!r}")
            if msg["ok"]:
                results[i] = WorkerResult("ok", value=msg.get("value"))
            else:
                results[i] = WorkerResult("error", error=msg.get("error") or "unknown error")


_default: MathWorker | None = None
_default_lock = threading.Lock()


def default_worker() -> MathWorker:
    """The process-wide shared worker (started lazily, stopped at interpreter exit)."""
    global _default
    with _default_lock:
        if _default is None:
            _default = MathWorker()
            atexit.register(_default.close)
        return _default
