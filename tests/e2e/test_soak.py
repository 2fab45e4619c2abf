"""Soak: a few thousand requests while the simulator injects random faults at a set rate.
Every request ends with a valid answer or a well-formed error, no reservation is left behind in
the budget Durable Objects, and recorded spend equals the sum of what the answers say they cost."""

import json
import random
import time
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal

from test_chat import CHAT, body, sse_events
from test_resilience import limits_of

FAULT_RATE = 0.3
FAULTS = [
    {"kind": "status", "status": 429, "retry_after": "30"},
    {"kind": "status", "status": 500},
    {"kind": "status", "status": 503},
    {"kind": "status", "status": 529},
    {"kind": "status", "status": 400},
    {"kind": "malformed"},
    {"kind": "content_filter"},
    {"kind": "delay", "ms": 50},
]
STREAM_FAULTS = FAULTS + [{"kind": "cut_before_first_chunk"}, {"kind": "cut_after_first_chunk"}]
NO_FAULT = {"kind": "delay", "ms": 0}


def queue_faults(sim, rng, count, kinds):
    """Scripts `count` upstream calls: each faulty with probability FAULT_RATE."""
    for _ in range(count):
        sim.fault("*", rng.choice(kinds) if rng.random() < FAULT_RATE else NO_FAULT)


def well_formed_error(r) -> bool:
    err = r.json().get("error", {})
    return isinstance(err.get("message"), str) and isinstance(err.get("code"), str) and r.status_code >= 400


def spent(worker) -> Decimal:
    return sum((Decimal(p["spent_usd"]) for p in limits_of(worker).values()), Decimal(0))


def settled(worker):
    for _ in range(100):
        state = limits_of(worker)
        if all(p["outstanding_reservations"] == 0 for p in state.values()):
            return state
        time.sleep(0.1)
    raise AssertionError(f"reservations left behind: {state}")


def test_soak_non_streaming(workers, sim):
    worker = workers["soak"]
    rng = random.Random(20261128)
    n = 1000
    # Up to 3 targets × 2 tries per request; more scripted calls than can be used is fine.
    queue_faults(sim, rng, n * 2, FAULTS)
    before = spent(worker)
    models = ["default", "triage", "review", "google-ai-studio/gemini-3.5-flash-lite", "openai/gpt-4o-mini"]

    def one(i):
        with worker.client(timeout=120) as c:
            return c.post(CHAT, json=body(model=models[i % len(models)], text=f"soak {i} {i * 7919 % 1000}"))

    started = time.monotonic()
    with ThreadPoolExecutor(max_workers=8) as pool:
        responses = list(pool.map(one, range(n)))
    elapsed = time.monotonic() - started

    answered = [r for r in responses if r.status_code == 200]
    failed = [r for r in responses if r.status_code != 200]
    for r in answered:
        assert r.json()["choices"], r.text
    for r in failed:
        assert well_formed_error(r), (r.status_code, r.text)
    total = sum(Decimal(r.headers["x-gateway-cost-usd"]) for r in responses)
    settled(worker)
    after = spent(worker)
    print(f"\nsoak: {n} requests in {elapsed:.1f}s, {len(answered)} answered, {len(failed)} errors "
          f"({sorted({r.status_code for r in failed})}), charged ${total}")
    assert after - before == total
    assert len(answered) > n * 0.8


def test_soak_streaming(workers, sim):
    worker = workers["soak"]
    rng = random.Random(7)
    n = 200
    queue_faults(sim, rng, n * 2, STREAM_FAULTS)

    def one(i):
        with worker.client(timeout=120) as c:
            return c.post(CHAT, json=body(model="default", text=f"stream soak {i}", stream=True))

    with ThreadPoolExecutor(max_workers=8) as pool:
        responses = list(pool.map(one, range(n)))
    complete = broken = 0
    for r in responses:
        if r.status_code != 200:
            assert well_formed_error(r), r.text
            continue
        events = sse_events(r.content)
        if events[-1] == "[DONE]":
            complete += 1
        else:
            # A stream that broke after its first content ends with an error event, never quietly.
            assert "error" in json.loads(events[-1]), events[-1]
            broken += 1
    settled(worker)
    print(f"\nstream soak: {n} streams, {complete} complete, {broken} ended with an error event")
    assert complete > n * 0.7
