"""Progress: a tqdm bar on a terminal, plain lines (every 10%, or 10 s) when not a TTY."""
from __future__ import annotations

import io

from server.broadcast.progress import Progress
from server.broadcast.store import Broadcast, Spec


def at(cursor: int, sent: int) -> Broadcast:
    return Broadcast(spec=Spec(name="p", kind="sms"), state="running", total=100, cursor=cursor, counts={"S": sent})


def test_plain_lines_when_not_a_terminal():
    out = io.StringIO()
    progress = Progress("p", 100, stream=out, tty=False)
    for cursor in range(5, 101, 5):
        progress(at(cursor, cursor))
    progress.close()
    lines = out.getvalue().splitlines()
    assert lines[0].startswith("p: 5/100 (5%) sent 5, delivered 0, pending 5")
    assert lines[-1].startswith("p: 100/100 (100%) sent 100") and "queued 0" in lines[-1]
    assert len(lines) <= 12  # one line per 10%, not one per batch
    assert "\r" not in out.getvalue()


def test_a_bar_on_a_terminal():
    out = io.StringIO()
    progress = Progress("p", 100, done=20, stream=out, tty=True)
    progress(at(60, 58))
    progress.close()
    text = out.getvalue()
    assert "\r" in text and "60/100" in text and "rcpt" in text
