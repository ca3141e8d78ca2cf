"""The progress line of a running campaign, on stderr.

One line every ``interval`` seconds: evaluations (of the budget), evaluations per second, best
search and held-out scores, cache hit rate, failures, invalid children, (when there are any)
children stopped at the hurdle and restarts, and the search time left, or, once a budget is
spent, the evaluations in flight it waits for.  Each new best program is printed in full.  On a terminal the line is
rewritten in place; elsewhere (a log file, CI) each one is a new line.
"""

from __future__ import annotations

import sys
import time
from typing import TextIO


def _clock(seconds: float) -> str:
    """``1h02m``, ``3m05s`` or ``42s``."""
    seconds = round(seconds)
    if seconds >= 3600:
        return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"
    if seconds >= 60:
        return f"{seconds // 60}m{seconds % 60:02d}s"
    return f"{seconds}s"


def format_score(score: float | None) -> str:
    return "-" if score is None else f"{score:+.4f}"


class Progress:
    def __init__(self, interval: float, stream: TextIO | None = None):
        self.stream = stream if stream is not None else sys.stderr
        self.tty = hasattr(self.stream, "isatty") and self.stream.isatty()
        # A log file gets a line every 5 intervals: it keeps every one.
        self.interval = interval if self.tty else 5 * interval
        self.start = time.monotonic()
        self.last = self.start
        self.first_count: int | None = None
        self._open_line = False

    def line(self, *, evaluations: int, done_here: int, best: float | None,
             best_held_out: float | None, hit_rate: float, failed: int, invalid: int,
             restarts: int, rejected: int = 0, max_evals: int | None = None,
             time_left: float | None = None, stopping: str | None = None,
             in_flight: int = 0) -> str:
        elapsed = time.monotonic() - self.start
        rate = done_here / elapsed if elapsed > 0 else 0.0
        budget = "" if max_evals is None else f"/{max_evals}"
        if stopping is not None:
            left = (f"  stopping ({stopping.replace('_', ' ')}): waiting for {in_flight} "
                    f"evaluation{'' if in_flight == 1 else 's'} in flight")
        elif time_left is not None:
            left = f"  {_clock(max(0.0, time_left))} of search left"
        else:
            left = ""
        return (f"[{elapsed:7.1f}s] {evaluations}{budget} evals ({rate:.2f}/s)  "
                f"best {format_score(best)}  held-out {format_score(best_held_out)}  "
                f"cache hits {100 * hit_rate:.0f}%  failed {failed}  invalid {invalid}"
                + (f"  rejected {rejected}" if rejected else "")
                + (f"  restarts {restarts}" if restarts else "") + left)

    def best_program(self, score: float, text: str) -> None:
        """A new best program, printed in full (simplified) below the progress line."""
        if self.interval <= 0:
            return
        if self._open_line:
            self.stream.write("\n")
            self._open_line = False
        body = "\n".join("    " + line for line in text.rstrip().splitlines())
        self.stream.write(f"new best search score {format_score(score)}:\n{body}\n")
        self.stream.flush()

    def update(self, force: bool = False, **fields) -> None:
        """Print the line if ``interval`` seconds have passed (or ``force``)."""
        if self.interval <= 0:
            return
        now = time.monotonic()
        if not force and now - self.last < self.interval:
            return
        self.last = now
        text = self.line(**fields)
        if self.tty:
            self.stream.write("\r\x1b[K" + text)
            self._open_line = True
        else:
            self.stream.write(text + "\n")
        self.stream.flush()

    def close(self) -> None:
        if self._open_line:
            self.stream.write("\n")
            self.stream.flush()
            self._open_line = False
