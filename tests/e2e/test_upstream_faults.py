"""Upstream faults as the runtime meets them: an error answer passed on, a first-byte deadline
that fires, a stream cut before its content (left for the next target unseen) or after it (an
explicit error event), a gateway that refuses the Worker's token or cannot be reached. Call
counts on the simulator side show what the Worker really did.

Which fault is retried, left for the next target or the answer is the engine's decision, and
the engine simulation's scripted cases (crates/core/tests/simulation/failures_and_limits.rs)
pin each one down; here one case of each kind proves the runtime wiring."""

import json
import time

from conftest import AIG_REFUSES_THE_TOKEN, SECRETS
from helpers import CHAT, body, sse_events

GEMINI = "google-ai-studio/gemini-3.5-flash-lite"


def error_of(r):
    return r.json()["error"]


# --- a single target: the upstream's answer is passed on -----------------------------------------

def test_upstream_error_status_is_passed_on(client, sim):
    sim.fault("google-ai-studio", {"kind": "status", "status": 503, "retry_after": "7"})
    r = client.post(CHAT, json=body(model=GEMINI))
    assert r.status_code == 503
    err = error_of(r)
    assert err["code"] == "upstream_error"
    assert "HTTP 503" in err["message"]
    assert r.headers["retry-after"] == "7"
    assert r.headers["x-gateway-provider"] == "google-ai-studio"
    assert r.headers["x-gateway-attempts"] == "1"
    assert sim.calls() == {"google-ai-studio": 1}


def test_first_byte_timeout_is_a_504(workers, sim):
    """The runtime's first-byte timer (3 s in the suite) fires: on the `tight` Worker, which makes
    one attempt per target, a native route's one target. (Retrying and failing over after a
    timeout are the simulation's.)"""
    sim.fault("workers-ai", {"kind": "stall"})
    started = time.monotonic()
    with workers["tight"].client() as c:
        r = c.post("/workers-ai/v1/chat/completions",
                   json={"model": "@cf/meta/llama-3.1-8b-instruct", "messages": [{"role": "user", "content": "x"}]})
    elapsed = time.monotonic() - started
    assert r.status_code == 504, r.text
    assert error_of(r)["code"] == "upstream_timeout"
    assert "3000 ms" in error_of(r)["message"]
    assert 3 <= elapsed < 10, elapsed


def test_a_short_delay_is_not_a_fault(client, sim):
    sim.fault("google-ai-studio", {"kind": "delay", "ms": 300})
    r = client.post(CHAT, json=body(model=GEMINI))
    assert r.status_code == 200
    assert r.headers["x-gateway-attempts"] == "1"


# --- a route: a transient fault is retried, then the next target answers -------------------------

def test_route_fails_over_to_openai(client, sim):
    sim.fault("google-ai-studio", {"kind": "status", "status": 503}, times=2)
    r = client.post(CHAT, json=body())
    assert r.status_code == 200, r.text
    assert r.headers["x-gateway-provider"] == "openai"
    assert r.headers["x-gateway-model"] == "gpt-4o-mini"
    assert r.headers["x-gateway-attempts"] == "3"
    assert r.headers["x-gateway-trace"] == f"{GEMINI}=503, {GEMINI}=503, openai/gpt-4o-mini=200"
    assert "openai/gpt-4o-mini" in r.json()["choices"][0]["message"]["content"]
    assert sim.calls() == {"google-ai-studio": 2, "openai": 1}
    # Each attempt tells AI Gateway which it is.
    attempts = [json.loads(q["headers"]["cf-aig-metadata"])["attempt"] for q in sim.requests()]
    assert attempts == [1, 2, 3]


def test_short_retry_after_is_waited_for(client, sim):
    """The runtime's sleep waits: a `Retry-After: 1` holds the retry back a second."""
    sim.fault("google-ai-studio", {"kind": "status", "status": 429, "retry_after": "1"})
    started = time.monotonic()
    r = client.post(CHAT, json=body())
    assert r.status_code == 200
    assert r.headers["x-gateway-provider"] == "google-ai-studio"
    assert time.monotonic() - started >= 1.0, "Retry-After: 1 was honoured"
    assert sim.calls() == {"google-ai-studio": 2}


# --- streams -----------------------------------------------------------------------------------

def test_stream_cut_before_content_fails_over_silently(client, sim):
    sim.fault("google-ai-studio", {"kind": "cut_before_first_chunk"}, times=2)
    with client.stream("POST", CHAT, json=body(stream=True)) as r:
        assert r.status_code == 200
        assert r.headers["x-gateway-provider"] == "openai"
        assert r.headers["x-gateway-attempts"] == "3"
        raw = r.read()
    events = sse_events(raw)
    assert events[-1] == "[DONE]"
    text = "".join((json.loads(e)["choices"] or [{}])[0].get("delta", {}).get("content") or "" for e in events[:-1])
    assert text.startswith("Simulated answer from openai/gpt-4o-mini")
    assert "Simulated answer from google" not in raw.decode()


def test_stream_cut_after_content_ends_with_an_error_event(client, sim):
    sim.fault("google-ai-studio", {"kind": "cut_after_first_chunk"})
    with client.stream("POST", CHAT, json=body(stream=True)) as r:
        assert r.status_code == 200
        raw = r.read()
    events = sse_events(raw)
    assert "[DONE]" not in events
    assert json.loads(events[1])["choices"][0]["delta"]["content"] == "Simulated"
    last = json.loads(events[-1])
    assert last["error"]["code"] == "upstream_malformed_response"
    assert sim.calls() == {"google-ai-studio": 1}, "no fallback once content was sent"


# --- the gateway's own credentials and reachability --------------------------------------------

def test_gateway_refusing_the_workers_token_is_a_502_for_the_operator(client, sim):
    sim.fault("*", AIG_REFUSES_THE_TOKEN, times=10)
    r = client.post(CHAT, json=body(model=GEMINI))
    assert r.status_code == 502
    err = error_of(r)
    assert err["code"] == "upstream_auth_failed"
    assert "CF_AIG_TOKEN" in err["message"]
    for s in SECRETS:
        assert s not in r.text


def test_unreachable_gateway_is_a_502(workers):
    with workers["unreachable"].client() as c:
        r = c.post(CHAT, json=body(model=GEMINI))
    assert r.status_code == 502
    assert error_of(r)["code"] == "upstream_unreachable"
