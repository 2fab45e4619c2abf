"""Routing as configuration (rules, weighted split), daily budgets that hold under concurrency in
the limiter's Durable Object, caching decisions, and exact cost on every answer.

What the engine decides with a provider's limits (a target over its rate skipped for the next,
every target over its limits a 429 naming each) is the engine simulation's
(crates/core/tests/simulation: `a_provider_over_its_rate_is_left_for_the_next_then_all_are_a_429`);
the rules and the split themselves are `gateway_core::config`'s unit tests. Here: that the
runtime feeds them (the request's size, tools and agent; a random roll per request), and that
the Durable Object holds a budget under concurrent requests."""

import json
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal

from conftest import BUDGET_USD, ROOT
from helpers import CHAT, GEMINI, body, limits_of, settled

PRICES = {
    (row["provider"], row["model"]): row for row in json.loads((ROOT / "prices.json").read_text())["models"]
}


def expected_cost(provider: str, model: str, usage: dict) -> Decimal:
    """The price table applied independently: USD per million tokens, exact decimals; the
    thinking a usage reports apart from `completion_tokens` is output too (Gemini's)."""
    row = PRICES[(provider, model)]
    cached = (usage.get("prompt_tokens_details") or {}).get("cached_tokens", 0)
    thinking = (usage.get("completion_tokens_details") or {}).get("reasoning_tokens", 0)
    output = max(usage["completion_tokens"] + thinking, usage["total_tokens"] - usage["prompt_tokens"])
    million = Decimal(1_000_000)
    return (
        Decimal(usage["prompt_tokens"] - cached) * Decimal(row["input"]) + Decimal(output) * Decimal(row["output"])
    ) / million


# --- cost ------------------------------------------------------------------------------------

def test_every_answer_says_what_it_cost(client):
    r = client.post(CHAT, json=body(model="openai/gpt-4o-mini"))
    assert r.status_code == 200
    usage = r.json()["usage"]
    assert Decimal(r.headers["x-gateway-cost-usd"]) == expected_cost("openai", "gpt-4o-mini", usage)
    r = client.post(CHAT, json=body())
    assert Decimal(r.headers["x-gateway-cost-usd"]) == expected_cost(
        "google-ai-studio", "gemini-3.5-flash-lite", r.json()["usage"]
    )


# --- caching ---------------------------------------------------------------------------------

def test_triage_answers_come_from_the_cache_at_no_cost(client, sim):
    first = client.post(CHAT, json=body(text="Label: crash on start"))
    second = client.post(CHAT, json=body(text="Label: crash on start"))
    assert first.headers["cf-aig-cache-status"] == "MISS"
    assert second.headers["cf-aig-cache-status"] == "HIT"
    assert second.headers["x-gateway-cost-usd"] == "0"
    assert Decimal(first.headers["x-gateway-cost-usd"]) > 0
    sent = sim.requests()[0]["headers"]
    assert sent["cf-aig-cache-ttl"] == "3600"
    assert "cf-aig-cache-key" not in sent


def test_caller_can_skip_the_cache(client, sim):
    client.post(CHAT, json=body(text="fresh please"))
    for headers in ({"cf-aig-skip-cache": "true"}, {"cache-control": "no-cache"}):
        r = client.post(CHAT, json=body(text="fresh please"), headers=headers)
        assert r.headers["cf-aig-cache-status"] == "MISS"
        assert sim.requests()[-1]["headers"]["cf-aig-skip-cache"] == "true"


def test_reviews_are_cached_only_per_commit(client, sim):
    # No scope: a review is never served from the cache, even if the gateway caches by default.
    r1 = client.post(CHAT, json=body(model="review", text="review the diff"))
    r2 = client.post(CHAT, json=body(model="review", text="review the diff"))
    assert r2.headers["cf-aig-cache-status"] == "MISS"
    assert all(q["headers"].get("cf-aig-skip-cache") == "true" for q in sim.requests())
    # Scoped to a commit: cached; a new commit is a new entry.
    scope_a = {"x-gateway-cache-scope": "octo-org/octo-repo@1111111"}
    scope_b = {"x-gateway-cache-scope": "octo-org/octo-repo@2222222"}
    a1 = client.post(CHAT, json=body(model="review", text="review the diff"), headers=scope_a)
    a2 = client.post(CHAT, json=body(model="review", text="review the diff"), headers=scope_a)
    b1 = client.post(CHAT, json=body(model="review", text="review the diff"), headers=scope_b)
    assert [x.headers["cf-aig-cache-status"] for x in (a1, a2, b1)] == ["MISS", "HIT", "MISS"]
    keys = [q["headers"]["cf-aig-cache-key"] for q in sim.requests()[2:]]
    assert keys[0] == keys[1] != keys[2]
    assert r1.status_code == 200


def test_streams_are_not_cached(client, sim):
    client.post(CHAT, json=body(stream=True)).read()
    assert sim.requests()[0]["headers"]["cf-aig-skip-cache"] == "true"


# --- routing rules and split (the suite's `split` and `ruled` routes) ---------------------------

def test_the_split_rolls_for_each_request(client):
    # An 80/20 split: the share is the unit tests' (a roll of 0.8 and above is the 20%); here, that
    # the runtime rolls anew for each request. 60 requests all on one side: p < 1e-5.
    firsts = []
    for i in range(60):
        r = client.post(CHAT, json=body(model="split", text=f"q{i}"))
        assert r.status_code == 200, r.text
        firsts.append(r.headers["x-gateway-provider"])
    assert set(firsts) == {"google-ai-studio", "openai"}, firsts


def test_conditional_routes(client):
    small = client.post(CHAT, json=body(model="ruled", text="short"))
    large = client.post(CHAT, json=body(model="ruled", text="x " * 4000))  # ~8 KB: over 2000 tokens
    tools = {"tools": [{"type": "function", "function": {"name": "add_label", "parameters": {"type": "object"}}}]}
    reviewer = client.post(CHAT, json=body(model="ruled", **tools), headers={"x-agent-name": "PRReviewAgent"})
    triager = client.post(CHAT, json=body(model="ruled", **tools), headers={"x-agent-name": "TriagingAgent"})
    assert small.headers["x-gateway-provider"] == "google-ai-studio"
    assert large.headers["x-gateway-provider"] == "anthropic"
    assert reviewer.headers["x-gateway-model"] == "gpt-4o"
    assert triager.headers["x-gateway-provider"] == "google-ai-studio"


# --- budgets under concurrency ---------------------------------------------------------------

def test_concurrent_requests_never_overspend_the_daily_budget(workers, sim):
    """60 simultaneous requests against a $0.001 Gemini budget. Each reserves its worst case
    before it is sent and settles its real cost after, in one Durable Object, so recorded spend
    stays within the budget, grows by the sum of the answers' costs, and nothing stays reserved.
    (Other tests of the `budget` Worker spend some of it too: what they left is what this run
    must not overspend.)"""
    worker = workers["budget"]
    before = Decimal(settled(worker)["google-ai-studio"]["spent_usd"])
    request = body(model=GEMINI, text="Summarise this issue in one line", max_tokens=40)

    def one(i):
        with worker.client() as c:
            r = c.post(CHAT, json={**request, "user": f"u{i}"})
            return r.status_code, r.headers.get("x-gateway-cost-usd"), r.text

    with ThreadPoolExecutor(max_workers=60) as pool:
        results = list(pool.map(one, range(60)))
    answered = [Decimal(cost) for status, cost, _ in results if status == 200]
    refused = [text for status, _, text in results if status == 429]
    assert len(answered) + len(refused) == 60, [s for s, _, _ in results]
    assert answered, "some requests fit the budget"
    assert refused, "the budget was reached"
    assert all("daily budget of $0.001" in t for t in refused)

    # Settling happens just after each answer (waitUntil): wait for it.
    state = settled(worker)["google-ai-studio"]
    assert state["outstanding_reservations"] == 0, state
    spent = Decimal(state["spent_usd"])
    print(f"\nbudget: {len(answered)} answered, {len(refused)} refused (429), spent ${spent} of ${BUDGET_USD}")
    assert spent - before == sum(answered), (before, spent, sum(answered))
    assert spent <= Decimal(BUDGET_USD)
    assert sim.calls() == {"google-ai-studio": len(answered)}


def test_limits_route_reports_every_provider(worker):
    state = limits_of(worker)
    assert set(state) >= {"google-ai-studio", "openai", "anthropic"}
    for p in state.values():
        assert p["outstanding_reservations"] >= 0
        assert "daily_budget_usd" in p and "spent_usd" in p
