"""Routing as configuration (rules, weighted split), per-provider rate limits and daily budgets
that hold under concurrency, caching decisions, and exact cost on every answer."""

import json
import time
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal

from conftest import BUDGET_USD, ROOT
from test_chat import CHAT, body

GEMINI = "google-ai-studio/gemini-3.5-flash-lite"
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


# --- routing rules and split -----------------------------------------------------------------

def test_weighted_split_within_tolerance(workers, sim):
    n = 200
    with workers["routing"].client() as c:
        answers = [c.post(CHAT, json=body(text=f"q{i}")) for i in range(n)]
        failed = [(r.status_code, r.text) for r in answers if r.status_code != 200]
        assert not failed, failed[:3]
        firsts = [r.headers["x-gateway-provider"] for r in answers]
    gemini = firsts.count("google-ai-studio")
    # 80% of 200 = 160; the binomial standard deviation is 5.7, so ±20 is beyond 3.5 σ.
    assert 140 <= gemini <= 180, gemini
    assert firsts.count("openai") == n - gemini


def test_conditional_routes(workers, sim):
    with workers["routing"].client() as c:
        small = c.post(CHAT, json=body(model="review", text="short"))
        large = c.post(CHAT, json=body(model="review", text="x " * 4000))  # ~8 KB: over 2000 tokens
        tools = {"tools": [{"type": "function", "function": {"name": "add_label", "parameters": {"type": "object"}}}]}
        reviewer = c.post(CHAT, json=body(model="review", **tools), headers={"x-agent-name": "PRReviewAgent"})
        triager = c.post(CHAT, json=body(model="review", **tools), headers={"x-agent-name": "TriagingAgent"})
    assert small.headers["x-gateway-provider"] == "google-ai-studio"
    assert large.headers["x-gateway-provider"] == "anthropic"
    assert reviewer.headers["x-gateway-model"] == "gpt-4o"
    assert triager.headers["x-gateway-provider"] == "google-ai-studio"


# --- rate limits -----------------------------------------------------------------------------

def limits_of(worker) -> dict:
    with worker.client() as c:
        listing = json.loads(c.get("/limits").text, parse_float=Decimal)
    return {p["provider"]: p for p in listing["providers"]}


def test_rate_limited_provider_is_skipped_then_429(workers, sim):
    tight = workers["tight"]
    with tight.client() as c:
        answers = [c.post(CHAT, json=body(model="default", text=f"n{i}")) for i in range(7)]
    providers = [a.headers.get("x-gateway-provider") for a in answers[:6]]
    assert providers == ["google-ai-studio"] * 2 + ["openai"] * 2 + ["anthropic"] * 2
    assert "google-ai-studio/gemini-3.5-flash-lite=skipped:rate_limited" in answers[2].headers["x-gateway-trace"]
    last = answers[6]
    assert last.status_code == 429
    err = last.json()["error"]
    assert err["code"] == "gateway_limits_exhausted"
    assert "rate limit of 2 requests per minute" in err["message"]
    assert 1 <= int(last.headers["retry-after"]) <= 61
    assert last.headers["x-gateway-attempts"] == "0"
    # Only admitted requests reached AI Gateway.
    assert sim.calls() == {"google-ai-studio": 2, "openai": 2, "anthropic": 2}


# --- budgets under concurrency ---------------------------------------------------------------

def test_concurrent_requests_never_overspend_the_daily_budget(workers, sim):
    """60 simultaneous requests against a $0.001 Gemini budget. Each reserves its worst case
    before it is sent and settles its real cost after, in one Durable Object, so recorded spend
    stays within the budget, equals the sum of the answers' costs, and nothing stays reserved."""
    worker = workers["budget"]
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
    for _ in range(50):
        state = limits_of(worker)["google-ai-studio"]
        if state["outstanding_reservations"] == 0:
            break
        time.sleep(0.1)
    assert state["outstanding_reservations"] == 0, state
    spent = Decimal(state["spent_usd"])
    print(f"\nbudget: {len(answered)} answered, {len(refused)} refused (429), spent ${spent} of ${BUDGET_USD}")
    assert spent == sum(answered), (spent, sum(answered))
    assert spent <= Decimal(BUDGET_USD)
    assert sim.calls() == {"google-ai-studio": len(answered)}


def test_limits_route_reports_every_provider(worker):
    state = limits_of(worker)
    assert set(state) >= {"google-ai-studio", "openai", "anthropic"}
    for p in state.values():
        assert p["outstanding_reservations"] >= 0
        assert "daily_budget_usd" in p and "spent_usd" in p
