"""Books that balance, end to end: after a mixed run (answers, streams, failovers, cache hits,
native calls, callers that hang up mid-stream), the ledger's total equals the sum of what every
response said it was charged (`x-gateway-cost-usd`, a stream's `usage.cost`) plus what the
requests that could say nothing (the callers that left) were charged, and equals what the
provider limiters recorded as spent — to the picodollar. The concurrent part of the run is
busy enough for the isolate to admit requests under its leases of the limiters (reported,
and counted, when `/limits` asks)."""

from __future__ import annotations

import json
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal

from conftest import AGENT_TOKEN
from helpers import CHAT, PICO, body, hang_up_mid_stream, header_of, limits_of, pico


def spent(worker) -> tuple[int, int, int]:
    """(picodollars spent over every provider today, reservations still open, requests admitted
    under leases)."""
    providers = limits_of(worker).values()
    return (
        sum(pico(p["spent_usd"]) for p in providers),
        sum(p["outstanding_reservations"] for p in providers),
        sum(p["admitted_under_leases"] for p in providers),
    )


def said_by_stream(raw: str) -> int | None:
    usage = [e for e in raw.split("\n\n") if '"usage":{' in e]
    if not usage:
        return None
    return pico(json.loads(usage[-1].removeprefix("data: "), parse_float=Decimal)["usage"]["cost"])


def test_the_ledger_the_responses_and_the_limiters_agree_to_the_picodollar(workers, sim):
    worker = workers["books"]
    said: dict[str, int] = {}  # request id → what its response said it was charged

    def answer(i: int) -> None:
        with worker.client() as c:
            r = c.post(CHAT, json=body(model=["triage", "review", "default"][i % 3], text=f"books {uuid.uuid4()}"))
        assert r.status_code == 200, r.text
        header = pico(r.headers["x-gateway-cost-usd"])
        assert pico(json.loads(r.text, parse_float=Decimal)["usage"]["cost"]) == header
        said[r.headers["x-gateway-request-id"]] = header

    def stream(i: int) -> None:
        with worker.client() as c, c.stream("POST", CHAT, json=body(text=f"books stream {uuid.uuid4()}", stream=True)) as r:
            assert r.status_code == 200
            raw = b"".join(r.iter_raw()).decode()
        cost = said_by_stream(raw)
        assert cost is not None, raw
        said[r.headers["x-gateway-request-id"]] = cost

    def native(i: int) -> None:
        request = {"model": "claude-haiku-4-5", "max_tokens": 64, "messages": [{"role": "user", "content": f"n{i}"}]}
        with worker.client() as c:
            r = c.post("/anthropic/v1/messages", json=request, headers={"x-api-key": AGENT_TOKEN})
        assert r.status_code == 200, r.text
        said[r.headers["x-gateway-request-id"]] = pico(r.headers["x-gateway-cost-usd"])

    with ThreadPoolExecutor(8) as pool:
        list(pool.map(answer, range(9)))
        list(pool.map(stream, range(6)))
        list(pool.map(native, range(3)))

    # Cache hits: the same triage request twice (the second is AI Gateway's cache, charged 0).
    repeat = body(text=f"books cached {uuid.uuid4()}")
    for _ in range(2):
        with worker.client() as c:
            r = c.post(CHAT, json=repeat)
        said[r.headers["x-gateway-request-id"]] = pico(r.headers["x-gateway-cost-usd"])
    assert r.headers["cf-aig-cache-status"] == "HIT"

    # Failovers, answered and streamed: Gemini fails twice, OpenAI answers.
    sim.fault("google-ai-studio", {"kind": "status", "status": 503}, times=2)
    answer(0)
    sim.fault("google-ai-studio", {"kind": "status", "status": 500}, times=2)
    stream(0)

    # A stream whose upstream stalls after its first content, its caller hanging up: its
    # response never got to say what it cost; the books charge its worst case.
    sim.fault("google-ai-studio", {"kind": "stall_after_first_chunk"})
    got = hang_up_mid_stream(worker, AGENT_TOKEN, body(text=f"books left {uuid.uuid4()}", stream=True))
    left = header_of(got, "x-gateway-request-id")
    assert left, got

    requests = set(said) | {left}
    deadline = time.monotonic() + 20
    while True:
        rows = worker.ledger()
        limiter, open_reservations, under_leases = spent(worker)
        if {r["request_id"] for r in rows} >= requests and open_reservations == 0 or time.monotonic() > deadline:
            break
        time.sleep(0.3)
    assert {r["request_id"] for r in rows} == requests, "one or more rows per request, no row of another"
    by_request: dict[str, int] = {}
    for r in rows:
        by_request[r["request_id"]] = by_request.get(r["request_id"], 0) + r["charged_pico"]
    for request_id, cost in said.items():
        assert by_request[request_id] == cost, (request_id, [r for r in rows if r["request_id"] == request_id])
    assert by_request[left] > 0, "a stream its caller left is charged, not forgotten"
    ledger_total = sum(by_request.values())
    assert ledger_total == sum(said.values()) + by_request[left]
    assert open_reservations == 0
    assert limiter == ledger_total, f"limiters {limiter} vs ledger {ledger_total} (pUSD)"
    assert under_leases > 0, "concurrent requests were admitted under the isolate's leases"
    assert ledger_total > 0 and ledger_total < 1000 * PICO
    # Failover attempts are rows of their own, charged nothing (an error status is not billed).
    failed = [r for r in rows if r["success"] == 0 and r["status"] in (500, 503)]
    assert len(failed) == 4 and all(r["charged_pico"] == 0 for r in failed)
