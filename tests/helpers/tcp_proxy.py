"""A TCP proxy (asyncio, real sockets) between a client and a real server that can hold the
server's replies back, as a Redis that answers late does.

    proxy = await ReplyDelayProxy.start("127.0.0.1", redis_port)
    store = RedisStore(connect(f"redis://127.0.0.1:{proxy.port}/0"))
    proxy.reply_delay = 2.5   # replies read from now on reach the client 2.5 s late

Requests always pass at once (the server executes them); only the bytes coming back wait, in
order. A client that gives up and closes its connection closes the server side too.
"""
from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass, field


@dataclass
class ReplyDelayProxy:
    upstream_host: str
    upstream_port: int
    reply_delay: float = 0.0
    server: asyncio.base_events.Server | None = None
    port: int = 0
    _pipes: set[asyncio.Task] = field(default_factory=set)

    @classmethod
    async def start(cls, upstream_host: str, upstream_port: int) -> "ReplyDelayProxy":
        proxy = cls(upstream_host, upstream_port)
        proxy.server = await asyncio.start_server(proxy._serve, "127.0.0.1", 0)
        proxy.port = proxy.server.sockets[0].getsockname()[1]
        return proxy

    async def close(self) -> None:
        if self.server is not None:
            self.server.close()
        for task in list(self._pipes):
            task.cancel()
        for task in list(self._pipes):
            with contextlib.suppress(BaseException):
                await task
        if self.server is not None:
            await self.server.wait_closed()

    async def _serve(self, client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter) -> None:
        try:
            server_reader, server_writer = await asyncio.open_connection(self.upstream_host, self.upstream_port)
        except OSError:
            client_writer.close()
            return
        requests = asyncio.create_task(self._forward(client_reader, server_writer))
        replies = asyncio.create_task(self._forward_late(server_reader, client_writer))
        self._pipes.update((requests, replies))
        try:
            await asyncio.wait((requests, replies), return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in (requests, replies):
                task.cancel()
                self._pipes.discard(task)
            for writer in (server_writer, client_writer):
                writer.close()

    @staticmethod
    async def _forward(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(OSError):
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()

    async def _forward_late(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """Each chunk leaves `reply_delay` seconds (as set when it arrived) after it arrived."""
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[tuple[float, bytes]] = asyncio.Queue()

        async def deliver() -> None:
            with contextlib.suppress(OSError):
                while True:
                    due, data = await queue.get()
                    if not data:  # the server closed: everything before it was delivered
                        return
                    await asyncio.sleep(max(0.0, due - loop.time()))
                    writer.write(data)
                    await writer.drain()

        sender = asyncio.create_task(deliver())
        try:
            with contextlib.suppress(OSError):
                while data := await reader.read(65536):
                    queue.put_nowait((loop.time() + self.reply_delay, data))
            queue.put_nowait((loop.time(), b""))
            await sender
        finally:
            sender.cancel()
