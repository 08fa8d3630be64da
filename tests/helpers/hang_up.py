"""An HTTP "upstream" on a real socket that reads each request whole, then hangs up without an
answer: the request was delivered, the client learns nothing (a dropped connection)."""
from __future__ import annotations

import asyncio
import contextlib


class HangUpServer:
    def __init__(self) -> None:
        self.requests = 0
        self.server: asyncio.base_events.Server | None = None

    @classmethod
    async def start(cls) -> "HangUpServer":
        hang_up = cls()
        hang_up.server = await asyncio.start_server(hang_up._serve, "127.0.0.1", 0)
        return hang_up

    @property
    def url(self) -> str:
        assert self.server is not None
        return f"http://127.0.0.1:{self.server.sockets[0].getsockname()[1]}"

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(OSError, asyncio.IncompleteReadError):
            head = await reader.readuntil(b"\r\n\r\n")
            length = next((int(line.split(b":", 1)[1]) for line in head.split(b"\r\n")
                           if line.lower().startswith(b"content-length:")), 0)
            await reader.readexactly(length)
            self.requests += 1
        writer.close()

    async def close(self) -> None:
        if self.server is not None:
            self.server.close()
            await self.server.wait_closed()
