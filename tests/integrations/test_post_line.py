"""The keep-alive client of `/ussd/send` (server/integrations/post_line.py) against real HTTP
servers: answers with a length, in chunks, or ended by closing; kept-alive connections reused;
failures named by whether the request may have left."""
from __future__ import annotations

import asyncio

import pytest
from aiohttp import web

from server.integrations.post_line import PostFailed, PostLine

from ..conftest import free_port


async def _app_server(aiohttp_server):
    peers: list[object] = []

    async def plain(request: web.Request) -> web.Response:
        peers.append(request.transport.get_extra_info("peername"))
        return web.json_response({"echo": (await request.json())["n"]})

    async def chunked(request: web.Request) -> web.StreamResponse:
        await request.read()
        response = web.StreamResponse()
        response.enable_chunked_encoding()
        await response.prepare(request)
        for part in (b'{"statusCode"', b':"S1000"}'):
            await response.write(part)
        await response.write_eof()
        return response

    async def slow(request: web.Request) -> web.Response:
        await asyncio.sleep(1.0)
        return web.json_response({})

    app = web.Application()
    app.router.add_post("/bd/plain", plain)
    app.router.add_post("/bd/chunked", chunked)
    app.router.add_post("/bd/slow", slow)
    server = await aiohttp_server(app)
    return str(server.make_url("/bd")), peers


async def test_answers_with_a_length_or_in_chunks_and_connections_are_reused(aiohttp_server):
    base, peers = await _app_server(aiohttp_server)
    line = PostLine(base, 4)
    try:
        for n in range(3):
            assert await line.post(line.request_head("/plain"), b'{"n": %d}' % n, 2.0) == (200, b'{"echo": %d}' % n)
        assert len(set(peers)) == 1  # one connection, kept alive
        status, body = await line.post(line.request_head("/chunked"), b"{}", 2.0)
        assert (status, body) == (200, b'{"statusCode":"S1000"}')
        status, _ = await line.post(line.request_head("/missing"), b"{}", 2.0)
        assert status == 404
    finally:
        await line.aclose()


async def test_an_answer_ended_by_closing_the_connection():
    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(b"HTTP/1.0 200 OK\r\nContent-Type: application/json\r\n\r\n{\"ok\": true}")
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(answer, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    line = PostLine(f"http://127.0.0.1:{port}", 2)
    try:
        for _ in range(2):  # not kept: the second request opens a new connection
            assert await line.post(line.request_head("/x"), b"{}", 2.0) == (200, b'{"ok": true}')
    finally:
        await line.aclose()
        server.close()


async def test_failures_say_whether_the_request_may_have_left(aiohttp_server):
    line = PostLine(f"http://127.0.0.1:{free_port()}", 2)
    with pytest.raises(PostFailed) as refused:
        await line.post(line.request_head("/x"), b"{}", 2.0)
    assert refused.value.code == "connect"  # never left: safe to send again

    base, _ = await _app_server(aiohttp_server)
    line = PostLine(base, 2)
    try:
        with pytest.raises(PostFailed) as late:
            await line.post(line.request_head("/slow"), b"{}", 0.2)
        assert late.value.code == "timeout"  # written: may have been delivered
    finally:
        await line.aclose()
