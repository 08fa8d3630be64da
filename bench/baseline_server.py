"""The baseline: a bare aiohttp handler doing one Redis GET and one SET per request."""
from __future__ import annotations

import asyncio
import sys

import redis.asyncio as aioredis
from aiohttp import web

try:
    import uvloop
except ImportError:  # pragma: no cover
    uvloop = None

REDIS = web.AppKey("redis", aioredis.Redis)


async def handle(request: web.Request) -> web.Response:
    body = await request.json()
    key = f"bench:{body['sessionId']}"
    value = await request.app[REDIS].get(key)
    await request.app[REDIS].set(key, b"x" * 200 if value is None else value, ex=60)
    return web.json_response({"statusCode": "S1000", "statusDetail": "Success"})


async def _redis(app: web.Application):
    app[REDIS] = aioredis.from_url(sys.argv[2])
    yield
    await app[REDIS].aclose()


def main() -> None:
    if uvloop:
        asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
    app = web.Application()
    app.cleanup_ctx.append(_redis)
    app.router.add_post("/bdapps/ussd", handle)
    app.router.add_get("/healthz", lambda r: web.Response(text="ok"))
    web.run_app(app, host="127.0.0.1", port=int(sys.argv[1]), access_log=None, print=None)


if __name__ == "__main__":
    main()
