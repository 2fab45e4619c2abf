"""Every upstream fault has a defined outcome: passed on with its status, failed over to the next
target of the route, or — once a stream has delivered content — ended with an explicit error event.
Call counts on the simulator side show what the Worker really did."""

import json

import pytest

from conftest import AIG_REFUSES_THE_TOKEN, SECRETS
from helpers import CHAT, body, sse_events

GEMINI = "google-ai-studio/gemini-3.5-flash-lite"


def error_of(r):
    return r.json()["error"]


# --- a single target: the upstream's answer is passed on -----------------------------------------

@pytest.mark.parametrize("status", [429, 500, 502, 503, 529])
def test_upstream_error_status_is_passed_on(client, sim, status):
    sim.fault("google-ai-studio", {"kind": "status", "status": status, "retry_after": "7"})
    r = client.post(CHAT, json=body(model=GEMINI))
    assert r.status_code == status
    err = error_of(r)
    assert err["code"] == ("upstream_rate_limited" if status == 429 else "upstream_error")
    assert f"HTTP {status}" in err["message"]
    assert r.headers["retry-after"] == "7"
    assert r.headers["x-gateway-provider"] == "google-ai-studio"
    assert r.headers["x-gateway-attempts"] == "1"
    assert sim.calls() == {"google-ai-studio": 1}


def test_upstream_message_is_kept(client, sim):
    sim.fault("google-ai-studio", {
        "kind": "status", "status": 429,
        "body": {"error": {"code": 429, "message": "Resource has been exhausted (e.g. check quota).", "status": "RESOURCE_EXHAUSTED"}},
    }, times=2)  # the first try and its retry
    r = client.post(CHAT, json=body(model=GEMINI))
    assert r.status_code == 429
    assert "Resource has been exhausted" in error_of(r)["message"]


def test_malformed_200_is_a_502(client, sim):
    sim.fault("google-ai-studio", {"kind": "malformed"})
    r = client.post(CHAT, json=body(model=GEMINI))
    assert r.status_code == 502
    assert error_of(r)["code"] == "upstream_malformed_response"


def test_first_byte_timeout_is_a_504(client, sim):
    sim.fault("google-ai-studio", {"kind": "stall"}, times=2)  # the first try and its retry
    r = client.post(CHAT, json=body(model=GEMINI))
    assert r.status_code == 504
    assert error_of(r)["code"] == "upstream_timeout"
    assert "3000 ms" in error_of(r)["message"]


def test_a_short_delay_is_not_a_fault(client, sim):
    sim.fault("google-ai-studio", {"kind": "delay", "ms": 300})
    r = client.post(CHAT, json=body(model=GEMINI))
    assert r.status_code == 200
    assert r.headers["x-gateway-attempts"] == "1"


def test_content_filter_on_the_last_target_is_returned_as_is(client, sim):
    sim.fault("google-ai-studio", {"kind": "content_filter"})
    r = client.post(CHAT, json=body(model=GEMINI))
    assert r.status_code == 200
    assert r.json()["choices"][0]["finish_reason"] == "content_filter"


# --- a route: retryable faults fail over to the next target -------------------------------------

@pytest.mark.parametrize(
    "fault, times, trace",
    [
        # A Retry-After longer than the gateway waits (2 s in the suite): straight to the next target.
        ({"kind": "status", "status": 429, "retry_after": "30"}, 1, ["429"]),
        # Transient faults are retried once on the same target, then fail over.
        ({"kind": "status", "status": 500}, 2, ["500", "500"]),
        ({"kind": "status", "status": 503}, 2, ["503", "503"]),
        ({"kind": "status", "status": 529}, 2, ["529", "529"]),
        # Faults that would repeat fail over at once.
        ({"kind": "malformed"}, 1, ["malformed"]),
        ({"kind": "content_filter"}, 1, ["content_filter"]),
    ],
)
def test_route_fails_over_to_openai(client, sim, fault, times, trace):
    sim.fault("google-ai-studio", fault, times=times)
    r = client.post(CHAT, json=body())
    assert r.status_code == 200, r.text
    assert r.headers["x-gateway-provider"] == "openai"
    assert r.headers["x-gateway-model"] == "gpt-4o-mini"
    assert r.headers["x-gateway-attempts"] == str(times + 1)
    expected = ", ".join([f"{GEMINI}={t}" for t in trace] + ["openai/gpt-4o-mini=200"])
    assert r.headers["x-gateway-trace"] == expected
    assert "openai/gpt-4o-mini" in r.json()["choices"][0]["message"]["content"]
    assert sim.calls() == {"google-ai-studio": times, "openai": 1}
    attempts = [json.loads(q["headers"]["cf-aig-metadata"])["attempt"] for q in sim.requests()]
    assert attempts == list(range(1, times + 2))


def test_transient_fault_is_retried_on_the_same_target(client, sim):
    sim.fault("google-ai-studio", {"kind": "status", "status": 503})
    r = client.post(CHAT, json=body())
    assert r.status_code == 200
    assert r.headers["x-gateway-provider"] == "google-ai-studio"
    assert r.headers["x-gateway-trace"] == f"{GEMINI}=503, {GEMINI}=200"
    assert sim.calls() == {"google-ai-studio": 2}


def test_short_retry_after_is_waited_for(client, sim):
    import time

    sim.fault("google-ai-studio", {"kind": "status", "status": 429, "retry_after": "1"})
    started = time.monotonic()
    r = client.post(CHAT, json=body())
    assert r.status_code == 200
    assert r.headers["x-gateway-provider"] == "google-ai-studio"
    assert time.monotonic() - started >= 1.0, "Retry-After: 1 was honoured"
    assert sim.calls() == {"google-ai-studio": 2}


def test_stall_fails_over_after_the_first_byte_deadline(client, sim):
    sim.fault("google-ai-studio", {"kind": "stall"}, times=2)
    r = client.post(CHAT, json=body())
    assert r.status_code == 200
    assert r.headers["x-gateway-trace"] == f"{GEMINI}=timeout, {GEMINI}=timeout, openai/gpt-4o-mini=200"


def test_an_error_body_that_never_ends_does_not_hold_the_request(client, sim):
    # Headers and half an error body, then silence: the body is read for at most the idle
    # deadline (2 s here), and the status is passed on with what came.
    sim.fault("google-ai-studio", {"kind": "status", "status": 400, "stall": True,
                                   "body": {"error": {"message": "Invalid value for temperature"}}})
    r = client.post(CHAT, json=body(model=GEMINI), timeout=20)
    assert r.status_code == 400
    assert error_of(r)["code"] == "upstream_error"
    assert sim.calls() == {"google-ai-studio": 1}


def test_client_errors_fail_fast(client, sim):
    sim.fault("google-ai-studio", {"kind": "status", "status": 400,
                                   "body": {"error": {"message": "Invalid value for temperature"}}})
    r = client.post(CHAT, json=body())
    assert r.status_code == 400
    assert "Invalid value for temperature" in error_of(r)["message"]
    assert sim.calls() == {"google-ai-studio": 1}


def test_every_target_failing_returns_the_last_error(client, sim):
    sim.fault("*", {"kind": "status", "status": 503}, times=6)
    r = client.post(CHAT, json=body())
    assert r.status_code == 503
    assert r.headers["x-gateway-attempts"] == "6"
    assert r.headers["x-gateway-provider"] == "anthropic"
    assert sim.calls() == {"google-ai-studio": 2, "openai": 2, "anthropic": 2}


# --- streams -----------------------------------------------------------------------------------

@pytest.mark.parametrize("kind", ["cut_before_first_chunk", "malformed", "stall"])
def test_stream_failing_before_content_fails_over_silently(client, sim, kind):
    sim.fault("google-ai-studio", {"kind": kind}, times=2)
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


@pytest.mark.parametrize("kind, code", [("cut_after_first_chunk", "upstream_malformed_response"),
                                        ("stall_after_first_chunk", "upstream_timeout")])
def test_stream_failing_after_content_ends_with_an_error_event(client, sim, kind, code):
    sim.fault("google-ai-studio", {"kind": kind})
    with client.stream("POST", CHAT, json=body(stream=True)) as r:
        assert r.status_code == 200
        raw = r.read()
    events = sse_events(raw)
    assert "[DONE]" not in events
    assert json.loads(events[1])["choices"][0]["delta"]["content"] == "Simulated"
    last = json.loads(events[-1])
    assert last["error"]["code"] == code
    assert sim.calls() == {"google-ai-studio": 1}, "no fallback once content was sent"


def test_stream_upstream_error_status_before_content_fails_over(client, sim):
    sim.fault("google-ai-studio", {"kind": "status", "status": 503}, times=2)
    with client.stream("POST", CHAT, json=body(stream=True)) as r:
        assert r.status_code == 200
        assert r.headers["x-gateway-trace"] == f"{GEMINI}=503, {GEMINI}=503, openai/gpt-4o-mini=200"
        r.read()


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
