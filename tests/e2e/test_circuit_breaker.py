"""A provider failing 100% behind its circuit breaker, end to end: skipped once its failures pass
the threshold (`skipped:circuit_open`, no time spent on it), shown open in `/limits`, then probed
after the cool-down and trusted again once a probe answers."""

from __future__ import annotations

import time
import uuid

import pytest

from conftest import base_values, gateway_config, running_worker, SHIPPED_CONFIG
from test_chat import CHAT, body

GEMINI = "google-ai-studio/gemini-3.5-flash-lite"
OPENAI = "openai/gpt-4o-mini"


@pytest.fixture(scope="module")
def guarded(sim):
    generous = {"requests_per_minute": 100000, "daily_budget_usd": 1000}
    providers = {p: dict(generous) for p in SHIPPED_CONFIG["providers"]}
    providers["google-ai-studio"]["circuit_breaker"] = {
        "window_seconds": 60, "min_attempts": 3, "failure_ratio": 0.5, "cooldown_seconds": 2, "probes": 1,
    }
    with running_worker("breaker", base_values(sim, GATEWAY_CONFIG=gateway_config(
        providers=providers,
        retry={"attempts_per_target": 2, "base_delay_ms": 20, "max_delay_ms": 200, "max_retry_after_ms": 2000},
    ))) as w:
        yield w


def circuit(worker) -> dict:
    with worker.client() as c:
        listing = c.get("/limits").json()
    return {p["provider"]: p.get("circuit") for p in listing["providers"]}["google-ai-studio"]


def ask(worker):
    with worker.client() as c:
        started = time.monotonic()
        r = c.post(CHAT, json=body(text=f"breaker {uuid.uuid4()}"))
        return r, time.monotonic() - started


def test_a_failing_provider_is_skipped_then_probed_then_trusted_again(guarded, sim):
    assert circuit(guarded)["state"] == "closed"
    sim.fault("google-ai-studio", {"kind": "status", "status": 503}, times=1000)
    r, _ = ask(guarded)
    assert r.status_code == 200
    assert r.headers["x-gateway-trace"] == f"{GEMINI}=503, {GEMINI}=503, {OPENAI}=200"
    r, _ = ask(guarded)
    # The third failure of three opens it: the retry is refused at once, no backoff spent.
    assert r.headers["x-gateway-trace"] == f"{GEMINI}=503, {GEMINI}=skipped:circuit_open, {OPENAI}=200"
    calls_when_open = sim.calls().get("google-ai-studio", 0)
    state = circuit(guarded)
    assert state["state"] == "open" and state["open_for_secs"] >= 1, state
    for _ in range(5):
        r, _ = ask(guarded)
        assert r.status_code == 200
        assert r.headers["x-gateway-trace"] == f"{GEMINI}=skipped:circuit_open, {OPENAI}=200"
        assert r.headers["x-gateway-provider"] == "openai"
    assert sim.calls().get("google-ai-studio", 0) == calls_when_open, "an open breaker sends nothing"

    # It recovers; after the cool-down one probe goes to it, answers, and the breaker closes.
    sim.reset()
    time.sleep(2.3)
    r, _ = ask(guarded)
    assert r.headers["x-gateway-trace"] == f"{GEMINI}=200", r.headers["x-gateway-trace"]
    deadline = time.monotonic() + 10
    while circuit(guarded)["state"] != "closed" and time.monotonic() < deadline:
        time.sleep(0.2)
    assert circuit(guarded)["state"] == "closed"
    r, _ = ask(guarded)
    assert r.headers["x-gateway-trace"] == f"{GEMINI}=200"


def test_a_probe_that_fails_opens_it_again(guarded, sim):
    sim.fault("google-ai-studio", {"kind": "status", "status": 503}, times=1000)
    for _ in range(3):
        ask(guarded)
    deadline = time.monotonic() + 10
    while circuit(guarded)["state"] != "open" and time.monotonic() < deadline:
        time.sleep(0.2)
    assert circuit(guarded)["state"] == "open"
    time.sleep(2.3)
    r, _ = ask(guarded)
    # The probe fails (and its retry is refused: open again), the next provider answers.
    assert r.headers["x-gateway-trace"] == f"{GEMINI}=503, {GEMINI}=skipped:circuit_open, {OPENAI}=200"
    assert circuit(guarded)["state"] == "open"
