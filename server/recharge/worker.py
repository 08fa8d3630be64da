"""`alap worker`: the durable recharge queue's consumer.

    REDIS_URL=redis://... BDAPPS_APP_ID=... BDAPPS_PASSWORD=... ECARE_ACCESS_ID=... \
    ECARE_ACCESS_PASS=... alap worker

One loop per process:

- on start-up, `ledger.resume(worker_id)`: leases left by an earlier process with the same
  worker id are dropped (that process is gone: ids must be unique among live workers; the
  default is $DYNO, else host:pid), and every record in a non-final state that is missing from
  the queue is queued. Records leased by a crashed worker of another id come back by
  themselves when its lease (ALAP_WORKER_LEASE) runs out;
- claims due records (up to ALAP_WORKER_CONCURRENCY at a time) under a lease: a record is
  worked by one worker at a time, whatever the number of workers. The saga renews the lease
  before every outbound money call and stops, writing nothing more, when it lost it;
- runs one saga step per claim and gives the record back with the step's due time (MRCSTATUS
  polls back off; passing errors back off), or drops it from the queue when it is final and
  its receipts are out;
- every minute, puts back any non-final record missing from the queue; every 30 s, sends
  parked SMS that are due (receipts held back by a per-day limit);
- SIGTERM / SIGINT: claims nothing more, lets running steps finish (30 s at most), gives their
  records back, exits 0. A step cut short is safe: its state and keys were written before its
  call, and the next worker asks again under the same keys.
"""
from __future__ import annotations

import asyncio
import contextlib
import os
import signal
from dataclasses import KW_ONLY, dataclass, field
import socket
import time
from typing import Any

import structlog

from server.store.base import StoreUnavailable
from server.store.ledger import Ledger, LeaseLost, RechargeLease

from .lease_keeper import RechargeLeaseKeeper
from .saga import RechargeSaga
from .saga_policy import SagaPolicy

log = structlog.get_logger("alap.worker")

DRAIN_SECONDS = 30.0
SWEEP_SECONDS = 60.0
SMS_FLUSH_SECONDS = 30.0
ERROR_RETRY_SECONDS = 5.0


def default_worker_id() -> str:
    """$DYNO (stable across restarts on Heroku-like platforms), else host:pid."""
    dyno = os.environ.get("DYNO", "").strip()
    return dyno.replace("|", "_") if dyno else f"{socket.gethostname()}:{os.getpid()}"


@dataclass(eq=False)
class RechargeWorker:
    """Claims due ledger records and runs saga steps on them; usable in-process too (e.g. in
    `alap dev` with the memory ledger: `asyncio.create_task(worker.run(stop_event))`)."""

    ledger: Ledger
    saga: RechargeSaga
    _: KW_ONLY
    worker_id: str | None = None  # None: default_worker_id()
    concurrency: int = 8  # steps at once (at least 1)
    lease: float = 60.0
    poll_interval: float = 1.0
    sweep_interval: float = SWEEP_SECONDS
    sms_sender: Any | None = None
    flush_interval: float = SMS_FLUSH_SECONDS
    drain: float = DRAIN_SECONDS
    tasks: set[asyncio.Task[None]] = field(default_factory=set, init=False)
    steps: int = field(default=0, init=False)  # steps run (metrics, tests)

    def __post_init__(self) -> None:
        self.worker_id = self.worker_id or default_worker_id()
        self.concurrency = max(1, self.concurrency)

    async def resume(self) -> int:
        resumed = await self.ledger.resume(self.worker_id)
        log.info("worker_resumed", worker=self.worker_id, records=resumed)
        return resumed

    async def run(self, stop: asyncio.Event) -> None:
        """Until `stop` is set; then drain the running steps."""
        while not stop.is_set():
            try:
                await self.resume()
                break
            except StoreUnavailable as exc:
                log.error("worker_store_unavailable", worker=self.worker_id, detail=str(exc))
                await _wait(stop, self.poll_interval * 5)
        next_sweep = time.monotonic() + self.sweep_interval
        next_flush = time.monotonic() + self.flush_interval
        stop_wait = asyncio.ensure_future(stop.wait())
        try:
            while not stop.is_set():
                claimed = 0
                free = self.concurrency - len(self.tasks)
                if free > 0:
                    try:
                        leases = await self.ledger.claim(self.worker_id, free, self.lease)
                    except StoreUnavailable as exc:
                        log.error("worker_store_unavailable", worker=self.worker_id, detail=str(exc))
                        leases = []
                    for lease in leases:
                        self._start(lease)
                    claimed = len(leases)
                now = time.monotonic()
                if now >= next_sweep:
                    next_sweep = now + self.sweep_interval
                    await self._quietly(self.ledger.resume(), "worker_sweep_failed")
                if self.sms_sender is not None and now >= next_flush:
                    next_flush = now + self.flush_interval
                    await self._quietly(self.sms_sender.flush_parked(), "worker_sms_flush_failed")
                if claimed and claimed == free:
                    await asyncio.sleep(0)  # more may be due: claim again at once (after a yield)
                    continue
                waiters: set[asyncio.Future[Any]] = {stop_wait, *self.tasks}
                await asyncio.wait(waiters, timeout=self.poll_interval, return_when=asyncio.FIRST_COMPLETED)
        finally:
            stop_wait.cancel()
            await self._drain()

    async def run_once(self, limit: int | None = None) -> int:
        """Claim what is due now and run those steps to their end (tests, scripts)."""
        leases = await self.ledger.claim(self.worker_id, limit or self.concurrency, self.lease)
        await asyncio.gather(*(self._work(lease) for lease in leases))
        return len(leases)

    def _start(self, lease: RechargeLease) -> None:
        task = asyncio.create_task(self._work(lease), name=f"recharge:{lease.record_id}")
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    async def _work(self, lease: RechargeLease) -> None:
        keeper = RechargeLeaseKeeper(self.ledger, lease, self.lease)
        due: float | None = time.time()
        try:
            result = await self.saga.step(lease.record_id, keeper)
            due = result.due_at
            self.steps += 1
        except LeaseLost:
            log.warning("worker_lease_lost", worker=self.worker_id, id=lease.record_id)
            return  # someone else may be working on it: touch nothing
        except asyncio.CancelledError:
            # Stopped mid-step: the state written before the call tells the next worker what to do.
            await asyncio.shield(self._release(keeper.lease, time.time()))
            raise
        except StoreUnavailable as exc:
            log.error("worker_store_unavailable", worker=self.worker_id, id=lease.record_id, detail=str(exc))
            due = time.time() + ERROR_RETRY_SECONDS
        except Exception as exc:
            log.exception("worker_step_failed", worker=self.worker_id, id=lease.record_id)
            due = time.time() + ERROR_RETRY_SECONDS
            # Counted on the record: a record that fails every step goes to NEEDS_REVIEW after
            # SagaPolicy.max_step_errors in a row instead of being retried forever.
            try:
                moved = await self.saga.step_failed(lease.record_id, exc, keeper)
                if moved is not None:
                    due = moved.due_at
            except LeaseLost:
                log.warning("worker_lease_lost", worker=self.worker_id, id=lease.record_id)
                return
            except Exception:
                log.exception("worker_step_failure_not_recorded", worker=self.worker_id, id=lease.record_id)
        await self._release(keeper.lease, due)

    async def _release(self, lease: RechargeLease, due: float | None) -> None:
        try:
            if not await self.ledger.release(lease, due):
                log.warning("worker_lease_expired", worker=self.worker_id, id=lease.record_id)
        except StoreUnavailable as exc:  # the lease runs out and the queue entry brings it back
            log.error("worker_release_failed", worker=self.worker_id, id=lease.record_id, detail=str(exc))

    async def _drain(self) -> None:
        tasks = list(self.tasks)
        if not tasks:
            return
        log.info("worker_draining", worker=self.worker_id, steps=len(tasks))
        _, pending = await asyncio.wait(tasks, timeout=self.drain)
        for task in pending:
            task.cancel()
        if pending:
            await asyncio.gather(*pending, return_exceptions=True)

    @staticmethod
    async def _quietly(awaitable: Any, event: str) -> None:
        try:
            await awaitable
        except Exception as exc:
            log.warning(event, detail=f"{type(exc).__name__}: {exc}"[:200])


async def _wait(stop: asyncio.Event, seconds: float) -> None:
    with contextlib.suppress(asyncio.TimeoutError):
        await asyncio.wait_for(stop.wait(), seconds)


def check_worker_settings(settings: Any) -> None:
    """What `alap worker` cannot run without; raises ConfigError naming the variable."""
    from server.config import ConfigError

    if not settings.redis_url:
        raise ConfigError("REDIS_URL is required by `alap worker` (the recharge ledger and its queue live in Redis)")
    for name, value in (("BDAPPS_APP_ID", settings.bdapps_app_id), ("BDAPPS_PASSWORD", settings.bdapps_password),
                        ("ECARE_ACCESS_ID", settings.ecare_access_id), ("ECARE_ACCESS_PASS", settings.ecare_access_pass)):
        if not value:
            raise ConfigError(f"{name} is required by `alap worker` (CAAS debits, eCare recharges, SMS receipts)")
    # Between two lease renewals a step makes at most two upstream calls (a read retried once,
    # or a read then a money call): the lease must outlast them, or a second worker could take
    # the record while the first is still waiting for an answer.
    if settings.worker_lease < 3 * settings.recharge_http_timeout:
        raise ConfigError(f"ALAP_WORKER_LEASE must be at least 3 x ALAP_RECHARGE_HTTP_TIMEOUT "
                          f"({3 * settings.recharge_http_timeout:g} s), got {settings.worker_lease:g}")


async def run_worker(settings: Any, *, stop_event: asyncio.Event | None = None,
                     worker_id: str | None = None) -> int:
    """Run the recharge worker until SIGTERM/SIGINT (or `stop_event`). Returns the exit code."""
    import aiohttp

    from server.integrations.base import Timeouts
    from server.integrations.caas import CaasClient
    from server.integrations.ecare import ECareClient
    from server.messaging import build_sms_sender
    from server.render.environment import Renderer
    from server.store import open_store
    from server.store.ledger import open_ledger

    check_worker_settings(settings)
    wid = worker_id or settings.worker_id or default_worker_id()
    timeout = float(settings.recharge_http_timeout)
    timeouts = Timeouts(connect=min(2.0, timeout), read=timeout, write=min(2.0, timeout), pool=timeout)
    renderer = Renderer(settings.templates_dir, settings.locales_dir)
    store = open_store(settings.redis_url, settings.redis_prefix)
    ledger = open_ledger(store)
    caas = CaasClient(settings.bdapps_base_url, settings.bdapps_app_id, settings.bdapps_password,
                      payment_instrument=settings.payment_instrument, timeouts=timeouts)
    ecare = ECareClient(settings.ecare_url, settings.ecare_access_id, settings.ecare_access_pass, timeouts=timeouts)
    http = aiohttp.ClientSession()
    sender = build_sms_sender(settings, http, store)
    saga = RechargeSaga(ledger, caas, ecare, sender, renderer, SagaPolicy.from_settings(settings), worker_id=wid)
    worker = RechargeWorker(ledger, saga, worker_id=wid, concurrency=settings.worker_concurrency,
                            lease=settings.worker_lease, poll_interval=settings.worker_poll_interval,
                            sms_sender=sender)
    stop = stop_event or asyncio.Event()
    # Scheduled, parked and orphaned broadcasts (server/broadcast/scheduler.py) run here too.
    from server.broadcast.context import BroadcastContext
    from server.broadcast.scheduler import BroadcastScheduler

    broadcasts = BroadcastContext(settings, store, http, sender=sender)
    broadcast_task = asyncio.create_task(BroadcastScheduler(broadcasts).run(stop))
    loop = asyncio.get_running_loop()
    installed: list[int] = []
    for sig in (signal.SIGTERM, signal.SIGINT):
        try:
            loop.add_signal_handler(sig, stop.set)
            installed.append(sig)
        except (NotImplementedError, RuntimeError, ValueError):  # not the main thread / platform
            pass
    print(f"alap worker {wid}: recharge queue and broadcasts (store: {store.name}, concurrency {worker.concurrency}, "
          f"lease {worker.lease:g}s)", flush=True)
    try:
        await worker.run(stop)
        await broadcast_task
    finally:
        broadcast_task.cancel()
        await broadcasts.aclose()
        for sig in installed:
            loop.remove_signal_handler(sig)
        await sender.aclose()
        await http.close()
        await caas.aclose()
        await ecare.aclose()
        await ledger.close()
        await store.close()
    log.info("worker_stopped", worker=wid, steps=worker.steps)
    print(f"alap worker {wid}: stopped", flush=True)
    return 0


__all__ = ["RechargeWorker", "check_worker_settings", "default_worker_id", "run_worker"]
