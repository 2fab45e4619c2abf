"""A provider failing 100% behind its circuit breaker, end to end: skipped once its failures pass
the threshold (`skipped:circuit_open`, no call made to it), shown open in `/limits`, then probed
after the cool-down and trusted again once a probe answers.

The breaker's decisions, in order (which failure opens it, one probe per cool-down, a failed
probe opening it again), are the engine simulation's
(`a_provider_that_is_down_is_skipped_then_probed_then_trusted_again`) and
`gateway_core::account::breaker`'s unit tests. Here: that its state lives in the provider's
Durable Object, across requests, and shows. The `rest` Worker's Anthropic has the breaker
(opens at 3 failures of 3, 1 s cool-down, one probe); its `guarded` route tries Anthropic, then
gpt-4o-mini, and no other test of that Worker calls Anthropic."""

from __future__ import annotations

import time
import uuid

import pytest

from helpers import CHAT, body

HAIKU = "anthropic/claude-haiku-4-5"
OPENAI = "openai/gpt-4o-mini"


@pytest.fixture(scope="module")
def guarded(workers):
    return workers["rest"]


def circuit(worker) -> dict:
    with worker.client() as c:
        listing = c.get("/limits").json()
    return {p["provider"]: p.get("circuit") for p in listing["providers"]}["anthropic"]


def ask(worker):
    with worker.client() as c:
        return c.post(CHAT, json=body(model="guarded", text=f"breaker {uuid.uuid4()}"))


def test_a_failing_provider_is_skipped_then_probed_then_trusted_again(guarded, sim):
    assert circuit(guarded)["state"] == "closed"
    sim.fault("anthropic", {"kind": "status", "status": 503}, times=1000)
    # Each request fails over to gpt-4o-mini; within a few, the failures open the breaker.
    for _ in range(4):
        r = ask(guarded)
        assert r.status_code == 200, r.text
        if "skipped:circuit_open" in r.headers["x-gateway-trace"]:
            break
    assert "skipped:circuit_open" in r.headers["x-gateway-trace"], r.headers["x-gateway-trace"]
    calls_when_open = sim.calls().get("anthropic", 0)
    state = circuit(guarded)
    assert state["state"] == "open" and state["open_for_secs"] >= 1, state
    for _ in range(3):
        r = ask(guarded)
        assert r.status_code == 200
        assert r.headers["x-gateway-trace"] == f"{HAIKU}=skipped:circuit_open, {OPENAI}=200"
    assert sim.calls().get("anthropic", 0) == calls_when_open, "an open breaker sends nothing"

    # It recovers; after the cool-down one probe goes to it, answers, and the breaker closes.
    sim.reset()
    time.sleep(1.3)
    r = ask(guarded)
    assert r.headers["x-gateway-trace"] == f"{HAIKU}=200", r.headers["x-gateway-trace"]
    deadline = time.monotonic() + 10
    while circuit(guarded)["state"] != "closed" and time.monotonic() < deadline:
        time.sleep(0.2)
    assert circuit(guarded)["state"] == "closed"
    r = ask(guarded)
    assert r.headers["x-gateway-trace"] == f"{HAIKU}=200"
