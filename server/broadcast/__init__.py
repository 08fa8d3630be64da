"""Broadcasts: one SMS (or one USSD flow) to thousands of subscribers, throttled, resumable,
never twice.

    recipients.py     the FILE, streamed: numbers or a CSV with a header; bad lines by number
    loading.py        a broadcast's spec and fingerprint; the FILE copied into the store
    store.py          the progress interface (+ memory_store.py, redis_store.py)
    runner.py         the loop: lease, crash recovery, batches, halts
    sms_runner.py     SMS: batched BDApps /sms/send, the other routes through the SmsSender
    ussd_runner.py    USSD: mt-init per recipient, SMS fallback
    dry_run.py        --dry-run: recipients, encoding, parts per route
    scheduler.py      the `alap worker` hook: scheduled, parked and orphaned broadcasts
    context.py        the parts a runner needs, from settings
    progress.py       a tqdm bar on a terminal, plain lines otherwise
    arguments.py      the `alap broadcast` parser (light: loaded by every `alap` command)
    commands.py       `alap broadcast sms|ussd|status|cancel`
    reports.py        delivery reports -> recipients' statuses

Layering: like server/messaging/ and server/recharge/, this package uses the transport's
clients (server/bdapps/), the SMS sender and the store; nothing below it imports it.
"""
