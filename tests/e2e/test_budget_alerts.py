"""Warnings before the money runs out, end to end: a webhook receiver sees exactly one post per
threshold crossed (50%, 80% of the day's spend, 100% when the budget first refuses), in a body
Slack and Discord both read; answers carry `x-gateway-budget-remaining-usd`; and a route rule
`budget_used_above` moves triage to a cheaper chain before the budget is gone.

When each threshold is crossed is the limiter's (`gateway_core::account::limits` unit tests, and
the engine simulation's `alerts_are_announced_once_per_threshold_under_concurrent_requests`);
here, that the runtime posts them, once, and reads the share a rule needs. On the `budget`
Worker (conftest.py): Anthropic's budget is this module's alone, Gemini's is shared with the
concurrency test of test_resilience.py, so the rule's test spends what it needs itself."""

from __future__ import annotations

import time
import uuid
from decimal import Decimal

import pytest

from conftest import ALERTED_BUDGET_USD, BUDGET_USD
from helpers import CHAT, GEMINI, body, limits_of, settled

HAIKU = "anthropic/claude-haiku-4-5"


@pytest.fixture(scope="module")
def alerting(workers):
    return workers["budget"]


def ask(worker, model: str):
    with worker.client() as c:
        return c.post(CHAT, json=body(model=model, text=f"a {uuid.uuid4()}", max_tokens=16))


def test_a_model_answered_unavailable_is_announced_once(alerting, webhook, sim):
    """A target its provider answers is gone is posted once, naming the model and what the
    provider said, however many requests follow (asked by name it has no other target: the
    first gets the provider's 404, those after the mark a 502 `model_unavailable`)."""
    sim.http.post("/__sim/models", json={"retired": ["gemini-3-flash-preview"]}).raise_for_status()

    def posts():
        return [p for p in webhook.posts if p.get("model_unavailable")]

    statuses = [ask(alerting, "google-ai-studio/gemini-3-flash-preview").status_code for _ in range(3)]
    assert statuses[0] == 404 and set(statuses) <= {404, 502}, statuses
    deadline = time.monotonic() + 20
    while not posts() and time.monotonic() < deadline:
        time.sleep(0.2)
    time.sleep(1.5)  # anything else that would (wrongly) follow
    assert len(posts()) == 1, webhook.posts
    (post,) = posts()
    assert post["limiter"] == "google-ai-studio", post
    assert post["model_unavailable"]["model"] == "gemini-3-flash-preview", post
    assert "gemini-3-flash-preview" in post["text"] and post["text"] == post["content"], post


def test_each_threshold_is_posted_once_and_answers_say_what_is_left(alerting, webhook):
    remaining = []
    for _ in range(80):
        r = ask(alerting, HAIKU)
        if r.status_code == 429:
            break
        assert r.status_code == 200, r.text
        remaining.append(Decimal(r.headers["x-gateway-budget-remaining-usd"]))
    assert r.status_code == 429 and len(remaining) >= 2, remaining
    assert remaining == sorted(remaining, reverse=True) and remaining[0] < Decimal(ALERTED_BUDGET_USD)
    for _ in range(3):
        ask(alerting, HAIKU)  # refused again: no new 100% post

    def posts():
        return [p for p in webhook.posts if p["limiter"] == "anthropic"]

    deadline = time.monotonic() + 20
    while len(posts()) < 3 and time.monotonic() < deadline:
        time.sleep(0.2)
    time.sleep(1.5)  # anything else that would (wrongly) follow
    assert sorted(p["threshold_percent"] for p in posts()) == [50, 80, 100], webhook.posts
    for post in posts():
        assert post["text"] == post["content"] and "provider `anthropic`" in post["text"]
        assert Decimal(str(post["daily_budget_usd"])) == Decimal(ALERTED_BUDGET_USD)
    log = alerting.log_path.read_text(errors="replace")
    assert "secret-part" not in log, "the webhook URL is a credential: never logged"


def test_a_rule_moves_triage_off_a_provider_past_its_budget_share(alerting):
    # Gemini past half of its budget (or spent out by the concurrency test already), then once
    # more: a reserve tells this isolate the share a rule reads.
    budget = Decimal(BUDGET_USD)
    for _ in range(40):
        if Decimal(settled(alerting)["google-ai-studio"]["spent_usd"]) > budget / 2:
            break
        assert ask(alerting, GEMINI).status_code in (200, 429)
    assert Decimal(limits_of(alerting)["google-ai-studio"]["spent_usd"]) > budget / 2
    ask(alerting, GEMINI)
    with alerting.client() as c:
        r = c.post(CHAT, json=body(text=f"triage {uuid.uuid4()}"))
    assert r.status_code == 200, r.text
    assert r.headers["x-gateway-trace"] == "openai/gpt-4o-mini=200", r.headers["x-gateway-trace"]
