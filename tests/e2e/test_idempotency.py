"""A repeated request with the same Idempotency-Key (or a redelivered GitHub webhook) does not
spend twice: it gets the first answer, or waits for it while it is still running."""

import uuid
from concurrent.futures import ThreadPoolExecutor

from helpers import CHAT, body, sse_events

GEMINI = "google-ai-studio/gemini-3.5-flash-lite"


def test_repeat_gets_the_first_answer_without_calling_again(client, sim):
    key = {"idempotency-key": f"triage-{uuid.uuid4()}"}
    req = body(model=GEMINI, text="label issue 42")
    first = client.post(CHAT, json=req, headers=key)
    second = client.post(CHAT, json=req, headers=key)
    assert first.status_code == second.status_code == 200
    assert second.content == first.content
    assert second.headers["x-gateway-idempotent-replay"] == "true"
    assert second.headers["x-gateway-cost-usd"] == "0"
    assert second.headers["x-gateway-provider"] == first.headers["x-gateway-provider"]
    assert "x-gateway-idempotent-replay" not in first.headers
    assert sim.calls() == {"google-ai-studio": 1}


def test_same_key_different_body_is_a_conflict(client, sim):
    key = {"idempotency-key": f"op-{uuid.uuid4()}"}
    assert client.post(CHAT, json=body(model=GEMINI, text="a"), headers=key).status_code == 200
    r = client.post(CHAT, json=body(model=GEMINI, text="b"), headers=key)
    assert r.status_code == 409
    assert r.json()["error"]["code"] == "idempotency_conflict"
    assert sim.calls() == {"google-ai-studio": 1}


def test_concurrent_repeats_wait_for_the_first(client, worker, sim):
    sim.fault("google-ai-studio", {"kind": "delay", "ms": 800})
    key = {"idempotency-key": f"slow-{uuid.uuid4()}"}
    req = body(model=GEMINI, text="slow one")

    def one(_):
        with worker.client() as c:
            r = c.post(CHAT, json=req, headers=key)
            return r.status_code, r.content

    with ThreadPoolExecutor(max_workers=5) as pool:
        results = list(pool.map(one, range(5)))
    assert {status for status, _ in results} == {200}
    assert len({content for _, content in results}) == 1
    assert sim.calls() == {"google-ai-studio": 1}


def test_github_redelivery_repeats_each_call_once(client, sim):
    delivery = {"x-github-delivery": str(uuid.uuid4())}
    triage = body(model=GEMINI, text="triage this issue")
    summary = body(model=GEMINI, text="summarise this issue")
    # One delivery, two different calls: both run.
    a1 = client.post(CHAT, json=triage, headers=delivery)
    b1 = client.post(CHAT, json=summary, headers=delivery)
    # The webhook is redelivered: both calls repeat and are answered from their first runs.
    a2 = client.post(CHAT, json=triage, headers=delivery)
    b2 = client.post(CHAT, json=summary, headers=delivery)
    assert a2.content == a1.content and b2.content == b1.content
    assert a1.content != b1.content
    assert sim.calls() == {"google-ai-studio": 2}


def test_a_failed_first_run_is_not_replayed(client, sim):
    sim.fault("google-ai-studio", {"kind": "status", "status": 400})
    key = {"idempotency-key": f"fail-{uuid.uuid4()}"}
    req = body(model=GEMINI, text="x")
    assert client.post(CHAT, json=req, headers=key).status_code == 400
    r = client.post(CHAT, json=req, headers=key)
    assert r.status_code == 200
    assert "x-gateway-idempotent-replay" not in r.headers
    assert sim.calls() == {"google-ai-studio": 2}


def test_streams_are_replayed_whole(client, sim):
    key = {"idempotency-key": f"stream-{uuid.uuid4()}"}
    req = body(model=GEMINI, text="stream me", stream=True)
    first = client.post(CHAT, json=req, headers=key)
    second = client.post(CHAT, json=req, headers=key)
    assert second.headers["x-gateway-idempotent-replay"] == "true"
    assert second.headers["content-type"].startswith("text/event-stream")
    assert second.content == first.content
    assert sse_events(second.content)[-1] == "[DONE]"
    assert sim.calls() == {"google-ai-studio": 1}


def test_bad_keys_are_refused(client, sim):
    r = client.post(CHAT, json=body(), headers={"idempotency-key": "has space"})
    assert r.status_code == 400
    r = client.post(CHAT, json=body(), headers={"x-github-delivery": "../../etc"})
    assert r.status_code == 400
    assert sim.requests() == []


def test_another_callers_replay_is_never_served(workers, sim):
    """A replay is its caller's own: the same key and body from another scoped token, or from
    AGENT_TOKEN, runs its own request; each caller's repeat gets its own first answer."""
    from conftest import AGENT_TOKEN, REVIEW, TRIAGE

    tokens = workers["tokens"]
    key = {"idempotency-key": f"shared-{uuid.uuid4()}", "x-github-repository": "octo-org/app"}
    req = body(model=GEMINI, text=f"label issue {uuid.uuid4()}")

    def post(token):
        with tokens.client(token=token) as c:
            return c.post(CHAT, json=req, headers=key)

    first = {token: post(token) for token in (REVIEW, TRIAGE, AGENT_TOKEN)}
    for r in first.values():
        assert r.status_code == 200, r.text
        assert "x-gateway-idempotent-replay" not in r.headers
    assert sim.calls() == {"google-ai-studio": 3}, "each caller ran its own request"
    ids = {r.headers["x-gateway-request-id"] for r in first.values()}
    assert len(ids) == 3
    for token, r in first.items():
        again = post(token)
        assert again.headers["x-gateway-idempotent-replay"] == "true"
        assert again.headers["x-gateway-request-id"] == r.headers["x-gateway-request-id"], "its own answer"
        assert again.content == r.content
    assert sim.calls() == {"google-ai-studio": 3}
