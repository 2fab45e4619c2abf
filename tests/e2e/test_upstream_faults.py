"""Every upstream fault has a defined outcome: passed on with its status, failed over to the next
target of the route, or — once a stream has delivered content — ended with an explicit error event.
Call counts on the simulator side show what the Worker really did."""

import json

import pytest

from conftest import SECRETS
from test_chat import CHAT, body, sse_events

GEMINI = "google-ai-studio/gemini-2.5-flash"


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
    })
    r = client.post(CHAT, json=body(model=GEMINI))
    assert r.status_code == 429
    assert "Resource has been exhausted" in error_of(r)["message"]


def test_malformed_200_is_a_502(client, sim):
    sim.fault("google-ai-studio", {"kind": "malformed"})
    r = client.post(CHAT, json=body(model=GEMINI))
    assert r.status_code == 502
    assert error_of(r)["code"] == "upstream_malformed_response"


def test_first_byte_timeout_is_a_504(client, sim):
    sim.fault("google-ai-studio", {"kind": "stall"})
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
    "fault, label",
    [
        ({"kind": "status", "status": 429, "retry_after": "30"}, "429"),
        ({"kind": "status", "status": 500}, "500"),
        ({"kind": "status", "status": 503}, "503"),
        ({"kind": "status", "status": 529}, "529"),
        ({"kind": "malformed"}, "malformed"),
        ({"kind": "content_filter"}, "content_filter"),
    ],
)
def test_route_fails_over_to_openai(client, sim, fault, label):
    sim.fault("google-ai-studio", fault)
    r = client.post(CHAT, json=body())
    assert r.status_code == 200, r.text
    assert r.headers["x-gateway-provider"] == "openai"
    assert r.headers["x-gateway-model"] == "gpt-4o-mini"
    assert r.headers["x-gateway-attempts"] == "2"
    assert r.headers["x-gateway-trace"] == f"{GEMINI}={label}, openai/gpt-4o-mini=200"
    assert "openai/gpt-4o-mini" in r.json()["choices"][0]["message"]["content"]
    assert sim.calls() == {"google-ai-studio": 1, "openai": 1}
    attempts = [json.loads(q["headers"]["cf-aig-metadata"])["attempt"] for q in sim.requests()]
    assert attempts == [1, 2]


def test_stall_fails_over_after_the_first_byte_deadline(client, sim):
    sim.fault("google-ai-studio", {"kind": "stall"})
    r = client.post(CHAT, json=body())
    assert r.status_code == 200
    assert r.headers["x-gateway-trace"] == f"{GEMINI}=timeout, openai/gpt-4o-mini=200"


def test_client_errors_fail_fast(client, sim):
    sim.fault("google-ai-studio", {"kind": "status", "status": 400,
                                   "body": {"error": {"message": "Invalid value for temperature"}}})
    r = client.post(CHAT, json=body())
    assert r.status_code == 400
    assert "Invalid value for temperature" in error_of(r)["message"]
    assert sim.calls() == {"google-ai-studio": 1}


def test_every_target_failing_returns_the_last_error(client, sim):
    sim.fault("*", {"kind": "status", "status": 503}, times=3)
    r = client.post(CHAT, json=body())
    assert r.status_code == 503
    assert r.headers["x-gateway-attempts"] == "3"
    assert r.headers["x-gateway-provider"] == "anthropic"
    assert sim.calls() == {"google-ai-studio": 1, "openai": 1, "anthropic": 1}


# --- streams -----------------------------------------------------------------------------------

@pytest.mark.parametrize("kind", ["cut_before_first_chunk", "malformed", "stall"])
def test_stream_failing_before_content_fails_over_silently(client, sim, kind):
    sim.fault("google-ai-studio", {"kind": kind})
    with client.stream("POST", CHAT, json=body(stream=True)) as r:
        assert r.status_code == 200
        assert r.headers["x-gateway-provider"] == "openai"
        assert r.headers["x-gateway-attempts"] == "2"
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
    sim.fault("google-ai-studio", {"kind": "status", "status": 503})
    with client.stream("POST", CHAT, json=body(stream=True)) as r:
        assert r.status_code == 200
        assert r.headers["x-gateway-trace"] == f"{GEMINI}=503, openai/gpt-4o-mini=200"
        r.read()


# --- the gateway's own credentials and reachability --------------------------------------------

def test_gateway_refusing_the_workers_token_is_a_502_for_the_operator(workers, sim):
    with workers["badgateway"].client() as c:
        r = c.post(CHAT, json=body(model=GEMINI))
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
