"""AI Gateway's own refusals (reference §4a), told from a provider's errors by the code in AI
Gateway's error shape (and a DLP block by its header), read off the real answer: a spend limit
skips its target, a DLP block ends the request. Also: every error says what it cost, and a
request without an output limit is sent its route's.

What follows each refusal (skip, next target, retry, stop; the error when every target refuses,
on the unified route or a native one) is the classification table's and the engine's: the
simulation's `aig_refusals_skip_move_on_stop_or_retry_as_the_table_says` and
`when_ai_gateway_refuses_every_target_its_refusal_is_the_answer`."""

from __future__ import annotations

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


def test_a_dlp_block_is_told_by_its_header_and_fails_fast(client, sim):
    # AI Gateway's DLP block is a 400 told from a provider's by the `cf-aig-dlp` header the
    # runtime reads; nothing else is asked.
    sim.fault("*", refusal("dlp_blocked"), times=10)
    r = ask(client, "fail fast: dlp")
    assert r.status_code == 400
    err = r.json()["error"]
    assert err["code"] == "content_blocked" and "AI Gateway" in err["message"]
    assert r.headers["x-gateway-trace"] == f"{GEMINI}=content_blocked"
    assert r.headers["x-gateway-cost-usd"] == "0"
    assert providers(sim) == ["google-ai-studio"], "no other provider is asked"


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
