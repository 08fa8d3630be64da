"""Work that continues after the HTTP answer (the ack), kept in a set the shutdown drains."""
from __future__ import annotations

import asyncio
from typing import Any, Coroutine


def spawn(tasks: set[asyncio.Task], work: Coroutine[Any, Any, None]) -> asyncio.Task:
    task = asyncio.create_task(work)
    tasks.add(task)
    task.add_done_callback(tasks.discard)
    return task
