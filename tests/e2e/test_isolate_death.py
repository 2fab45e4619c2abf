"""Books that stay true when an isolate dies. A busy Worker leases a slice of Gemini's limiter and
admits a burst of `review` requests under it; its process is killed (SIGKILL, the whole group)
mid-burst, and started again on the same state. Once the lease and the reservations have expired:
the limiter charged what the ledger says (the rows are written after the limiter acknowledged
their settles) and, shown apart as charged for requests whose isolate died, the worst case of
each request that was still in flight — never the lease's unused rest.

The Worker's lease lives 3 s and its reservations 5 s (`LEASE_TTL_MS`, `RESERVATION_TTL_MS`),
so that the test waits seconds, not the defaults' 10 s and 15 minutes."""

from __future__ import annotations

import os
import signal
import threading
import time
import uuid
from decimal import Decimal

import httpx

from conftest import AGENT_TOKEN, base_values, running_worker
from helpers import CHAT, PICO, limits_of, pico

GEMINI = "google-ai-studio"
BURST = 48


def review(i: int) -> dict:
    # The same length for every request: the same worst case.
    return {"model": "review", "messages": [{"role": "user", "content": f"review {i:04d} {uuid.uuid4().hex}"}]}


def test_a_dead_isolate_is_charged_what_it_had_in_flight_and_says_so(sim):
    values = base_values(
        sim, LEASE_TTL_MS="3000", RESERVATION_TTL_MS="5000", UPSTREAM_FIRST_BYTE_TIMEOUT_MS="30000",
        REQUEST_DEADLINE_MS="60000",
    )
    with running_worker("isolate-death", values) as worker:
        # Gemini answers each in 400 ms: a burst keeps a few in flight at any time.
        sim.fault(GEMINI, {"kind": "delay", "ms": 400}, times=BURST)
        said: dict[str, int] = {}
        cut = threading.Event()

        def request(i: int) -> None:
            try:
                with httpx.Client(base_url=worker.url, headers={"authorization": f"Bearer {AGENT_TOKEN}"}, timeout=30) as c:
                    r = c.post(CHAT, json=review(i))
            except httpx.HTTPError:
                return
            assert r.status_code == 200, r.text
            said[r.headers["x-gateway-request-id"]] = pico(r.headers["x-gateway-cost-usd"])
            if len(said) >= BURST // 2:
                cut.set()

        threads = []
        for i in range(BURST):
            if cut.is_set():
                break
            threads.append(threading.Thread(target=request, args=(i,), daemon=True))
            threads[-1].start()
            time.sleep(0.05)
        cut.wait(30)
        os.killpg(worker.proc.pid, signal.SIGKILL)
        worker.proc.wait(10)
        killed_at = time.monotonic()
        for t in threads:
            t.join(5)
        answered = dict(said)
        sent = len(threads)
        assert len(answered) < sent, "requests were in flight at the kill"

        worker.start()
        worker.wait_ready()
        # The lease and the reservations run out (3 s and 5 s after they were last renewed).
        time.sleep(max(0.0, killed_at + 6.5 - time.monotonic()))
        after = limits_of(worker)[GEMINI]
        rows = worker.ledger()

        written = {r["request_id"] for r in rows}
        # Rows are written once the limiter acknowledged the request's settle, after its response
        # was handed to the runtime; the kill may still cut that response off on its way. Such a
        # request was served and charged, and its rows say so; only its answer was lost.
        lost = written - answered.keys()
        assert len(lost) <= sent - len(answered), (lost, sent, len(answered))
        told = sum(r["charged_pico"] for r in rows if r["request_id"] in answered)
        assert told == sum(answered[r] for r in written & answered.keys()), "each row says what its response said"
        ledger = sum(r["charged_pico"] for r in rows if r["provider"] == GEMINI)
        spent, died, died_requests = pico(after["spent_usd"]), pico(after["isolate_died_usd"]), after["isolate_died_requests"]
        assert (after["outstanding_reservations"], after["leases"], pico(after["leased_usd"])) == (0, 0, 0), after
        assert after["admitted_under_leases"] > 0, after
        # The books: what the ledger says, and apart, the worst case of each request the
        # limiter never heard settled. A request killed in the moment between its limiter's
        # acknowledgment and its rows' write is charged exactly and has no rows: answered, its
        # response says what; not, it cost what each of these identical requests costs.
        unwritten = sum(answered[r] for r in answered.keys() - written)
        unknown = sent - len(answered.keys() | written)
        each = max(answered.values())
        assert ledger <= spent - died <= ledger + unwritten + unknown * each, (spent, died, ledger, unwritten, unknown)
        in_flight = sent - len(written)
        assert died_requests <= in_flight, (after, sent, len(written))
        if died_requests:
            worst = died // died_requests
            assert worst * died_requests == died, "each charged the same worst case"
            assert worst < PICO // 20, f"a review request's worst case is ${Decimal(worst) / PICO}"
        print(
            f"\n{sent} sent, {len(answered)} answered, {len(written)} with rows; charged for requests whose isolate died:"
            f" ${Decimal(died) / PICO} for {died_requests}; ledger ${Decimal(ledger) / PICO}, limiter ${Decimal(spent) / PICO}"
        )
