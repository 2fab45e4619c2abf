"""AI Gateway's own refusals (reference §4a), told from a provider's errors by the code in AI
Gateway's error shape: each gets its own status and error code, the trace names it, and the next
provider is tried (or not) as the classification table says. Also: every error says what it cost."""

from __future__ import annotations

import time

import pytest

from helpers import CHAT, body

GEMINI = "google-ai-studio/gemini-3.5-flash-lite"
# The `review` route: no cache by default, three providers.
REVIEW = [GEMINI, "openai/gpt-4o", "anthropic/claude-sonnet-4-5"]


def refusal(name: str, retry_after=None) -> dict:
    fault = {"kind": "aig_refusal", "refusal": name}
    if retry_after is not None:
        fault["retry_after"] = retry_after
    return fault


def providers(sim) -> list[str]:
    return [r["provider"] for r in sim.requests()]


def ask(client, text: str):
    return client.post(CHAT, json=body(model="review", text=text))


def test_spend_limit_skips_that_target_at_once(client, sim):
    sim.fault("google-ai-studio", refusal("spend_limit"), times=5)
    r = ask(client, "spend limit")
    assert r.status_code == 200
    assert r.headers["x-gateway-trace"] == f"{GEMINI}=skipped:aig_spend_limit, openai/gpt-4o=200"
    assert r.headers["x-gateway-provider"] == "openai"
    assert providers(sim) == ["google-ai-studio", "openai"], "never retried"


def test_every_target_over_its_spend_limit_names_it(client, sim):
    sim.fault("*", refusal("spend_limit"), times=10)
    r = ask(client, "all spent")
    assert r.status_code == 429
    err = r.json()["error"]
    assert (err["code"], err["type"]) == ("aig_spend_limit", "rate_limit_error")
    assert "spend limit" in err["message"]
    assert r.headers["x-gateway-trace"] == ", ".join(f"{t}=skipped:aig_spend_limit" for t in REVIEW)
    assert r.headers["x-gateway-cost-usd"] == "0"
    assert providers(sim) == ["google-ai-studio", "openai", "anthropic"]


def test_gateway_rate_limit_moves_on_at_once_and_passes_retry_after_on(client, sim):
    sim.fault("google-ai-studio", refusal("rate_limit", retry_after=1), times=5)
    started = time.monotonic()
    r = ask(client, "gateway rate limit")
    assert r.status_code == 200
    assert time.monotonic() - started < 1, "the Retry-After is not waited out on the same target"
    assert r.headers["x-gateway-trace"] == f"{GEMINI}=aig_rate_limited, openai/gpt-4o=200"
    assert providers(sim) == ["google-ai-studio", "openai"]

    sim.reset()
    sim.fault("*", refusal("rate_limit", retry_after=7), times=10)
    r = ask(client, "gateway rate limit everywhere")
    assert r.status_code == 429
    assert r.json()["error"]["code"] == "aig_rate_limited"
    assert r.headers["retry-after"] == "7"
    assert r.headers["x-gateway-cost-usd"] == "0"
    assert providers(sim) == ["google-ai-studio", "openai", "anthropic"]


@pytest.mark.parametrize("name,label", [
    ("insufficient_credits", "aig_insufficient_credits"),
    ("response_blocked", "aig_response_blocked"),
])
def test_refusals_another_provider_may_not_share_move_on(client, sim, name, label):
    sim.fault("google-ai-studio", refusal(name), times=5)
    r = ask(client, f"move on after {name}")
    assert r.status_code == 200
    assert r.headers["x-gateway-trace"] == f"{GEMINI}={label}, openai/gpt-4o=200"
    assert providers(sim) == ["google-ai-studio", "openai"]


@pytest.mark.parametrize("name,status,code", [
    ("insufficient_credits", 402, "aig_insufficient_credits"),
    ("response_blocked", 424, "aig_response_blocked"),
])
def test_the_last_such_refusal_is_what_the_client_gets(client, sim, name, status, code):
    sim.fault("*", refusal(name), times=10)
    r = ask(client, f"all refused: {name}")
    assert r.status_code == status
    assert r.json()["error"]["code"] == code
    assert r.headers["x-gateway-cost-usd"] == "0"
    assert providers(sim) == ["google-ai-studio", "openai", "anthropic"]


@pytest.mark.parametrize("name,status,code", [
    ("policy_denied", 403, "aig_policy_denied"),
    ("prompt_blocked", 400, "content_blocked"),
    ("dlp_blocked", 400, "content_blocked"),
])
def test_policy_and_content_blocks_fail_fast(client, sim, name, status, code):
    sim.fault("*", refusal(name), times=10)
    r = ask(client, f"fail fast: {name}")
    assert r.status_code == status
    err = r.json()["error"]
    assert err["code"] == code
    assert "AI Gateway" in err["message"]
    assert r.headers["x-gateway-trace"] == f"{GEMINI}={code}"
    assert r.headers["x-gateway-cost-usd"] == "0"
    assert providers(sim) == ["google-ai-studio"], "no other provider is asked"


def test_guardrail_service_down_is_transient(client, sim):
    sim.fault("google-ai-studio", refusal("guardrail_unavailable"), times=1)
    r = ask(client, "guardrails down")
    assert r.status_code == 200
    assert r.headers["x-gateway-trace"] == f"{GEMINI}=aig_guardrail_unavailable, {GEMINI}=200"
    assert providers(sim) == ["google-ai-studio", "google-ai-studio"]


def test_provider_errors_sharing_a_status_keep_their_behaviour(client, sim):
    # A provider's own 429 (OpenAI shape) is retried on the same target, as before.
    sim.fault("google-ai-studio", {"kind": "status", "status": 429}, times=1)
    r = ask(client, "provider 429")
    assert r.headers["x-gateway-trace"] == f"{GEMINI}=429, {GEMINI}=200"
    # A provider's 403 is still the Worker's credentials, not a policy.
    sim.reset()
    sim.fault("*", {"kind": "status", "status": 403}, times=10)
    r = ask(client, "provider 403")
    assert r.status_code == 502
    assert r.json()["error"]["code"] == "upstream_auth_failed"
    assert r.headers["x-gateway-cost-usd"] == "0"


def test_native_route_refusals_name_themselves(client, sim):
    sim.fault("openai", refusal("spend_limit"), times=5)
    r = client.post("/openai/v1/chat/completions", json={
        "model": "gpt-4o-mini", "messages": [{"role": "user", "content": "native spend limit"}],
    })
    assert r.status_code == 429
    assert r.json()["error"]["code"] == "aig_spend_limit"
    assert r.headers["x-gateway-trace"] == "openai/gpt-4o-mini=skipped:aig_spend_limit"
    assert r.headers["x-gateway-cost-usd"] == "0"
    assert providers(sim) == ["openai"], "never another provider"


# --- x-gateway-cost-usd on every error -----------------------------------------------------------

def test_every_error_says_what_it_cost(client, workers, sim):
    # The `tokens` Worker's `octo-org/budgeted` has a budget no attempt fits in.
    broke = {"x-github-repository": "octo-org/budgeted"}
    with workers["tokens"].client() as c:
        r = c.post(CHAT, json=body(model="review", text="over budget"), headers=broke)
        assert r.status_code == 429
        assert r.json()["error"]["code"] == "repository_budget_exhausted"
        assert r.headers["x-gateway-cost-usd"] == "0"
        r = c.post("/openai/v1/chat/completions", headers=broke, json={
            "model": "gpt-4o-mini", "messages": [{"role": "user", "content": "over budget"}],
        })
        assert r.status_code == 429
        assert r.headers["x-gateway-cost-usd"] == "0"
    assert sim.requests() == [], "nothing was sent"
    # Errors before any attempt (the request's, the route's, the caller's), and upstream errors.
    with workers["main"].client(token="wrong-token") as stranger:
        unauthorized = stranger.post(CHAT, json=body())
    for r in [
        client.post(CHAT, content=b"{not json", headers={"content-type": "application/json"}),
        client.post(CHAT, json=body(model="no-such-route")),
        client.post(CHAT, content=b"x", headers={"content-type": "text/plain"}),
        client.get(CHAT),
        client.get("/no/such/path"),
        unauthorized,
    ]:
        assert r.status_code in (400, 401, 404, 405, 415), r.text
        assert r.headers["x-gateway-cost-usd"] == "0", (r.status_code, dict(r.headers))
    sim.fault("*", {"kind": "status", "status": 400}, times=2)
    r = ask(client, "bad request upstream")
    assert r.status_code == 400
    assert r.headers["x-gateway-cost-usd"] == "0"
    r = client.post("/openai/v1/chat/completions", json={
        "model": "gpt-4o-mini", "messages": [{"role": "user", "content": "bad"}],
    })
    assert r.status_code == 400
    assert r.headers["x-gateway-cost-usd"] == "0"


# --- true worst cases: a request without an output limit is sent the route's -----------------------

def sent_body(sim) -> dict:
    import json
    return json.loads(sim.requests()[-1]["body"])


def test_a_request_without_an_output_limit_gets_the_routes(client, sim):
    r = client.post(CHAT, json=body(model="triage", text="worst case: triage"))
    assert r.status_code == 200
    assert sent_body(sim)["max_tokens"] == 1024, "triage's max_output_tokens"
    r = client.post(CHAT, json=body(model="review", text="worst case: review", stream=True))
    assert r.status_code == 200
    sent = sent_body(sim)
    assert sent["max_tokens"] == 8192 and sent["stream_options"] == {"include_usage": True}
    # An explicit provider/model, and a route without its own: `estimates.max_output_tokens`.
    for model in ["openai/gpt-4o-mini", "default"]:
        client.post(CHAT, json=body(model=model, text=f"worst case: {model}"))
        assert sent_body(sim)["max_tokens"] == 4096, model
        assert "max_completion_tokens" not in sent_body(sim)


def test_a_callers_own_output_limit_is_kept(client, sim):
    for field, value in [("max_tokens", 50000), ("max_completion_tokens", 7), ("max_tokens", 3)]:
        r = client.post(CHAT, json=body(model="triage", text=f"own limit {field} {value}", **{field: value}))
        assert r.status_code == 200
        sent = sent_body(sim)
        assert sent[field] == value
        assert len([k for k in sent if k in ("max_tokens", "max_completion_tokens")]) == 1, sent
    r = client.post(CHAT, json=body(model="triage", text="null limit", max_tokens=None))
    assert r.status_code == 200
    assert sent_body(sim)["max_tokens"] == 1024
