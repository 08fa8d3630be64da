"""Progress of a running broadcast: a tqdm bar on a terminal, plain lines otherwise (a log file
or CI keeps one line every 10% or 10 seconds)."""
from __future__ import annotations

import sys
import time
from typing import TextIO

from .store import Broadcast


def summary(b: Broadcast) -> str:
    t = b.totals
    parts = [f"sent {t.sent:,}", f"delivered {t.delivered:,}", f"pending {t.pending:,}", f"failed {t.failed:,}",
             f"opted out {t.opted_out:,}", f"unknown {t.unknown:,}", f"queued {t.queued:,}"]
    if b.slowed:
        parts.append(f"slowed {b.slowed}x (E1318)")
    return ", ".join(parts)


class Progress:
    def __init__(self, name: str, total: int, done: int = 0, stream: TextIO | None = None,
                 tty: bool | None = None) -> None:
        self.name = name
        self.stream = stream or sys.stderr
        self.tty = self.stream.isatty() if tty is None else tty
        self.total = total
        self.last_line = 0.0
        self.last_done = done
        self.bar = None
        if self.tty:
            from tqdm import tqdm

            self.bar = tqdm(total=total, initial=done, unit="rcpt", desc=name, file=self.stream,
                            dynamic_ncols=True, smoothing=0.1)

    def __call__(self, b: Broadcast) -> None:
        done = min(b.cursor, b.total)
        if self.bar is not None:
            self.bar.update(done - self.last_done)
            self.bar.set_postfix_str(f"sent {b.totals.sent:,} opted-out {b.totals.opted_out:,} "
                                     f"unknown {b.totals.unknown:,}", refresh=False)
            self.last_done = done
            return
        now = time.monotonic()
        step = max(1, self.total // 10)
        if done >= self.total or now - self.last_line >= 10 or done // step > self.last_done // step:
            pct = 100 * done // max(1, self.total)
            print(f"{self.name}: {done:,}/{self.total:,} ({pct}%) {summary(b)}", file=self.stream, flush=True)
            self.last_line = now
        self.last_done = done

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
