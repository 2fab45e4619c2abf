"""Warnings before the money runs out, end to end: a webhook receiver sees exactly one post per
threshold crossed (50%, 80% of the day's spend, 100% when the budget first refuses), in a body
Slack and Discord both read; answers carry `x-gateway-budget-remaining-usd`; and a route rule
`budget_used_above` moves triage to a cheaper chain before the budget is gone."""

from __future__ import annotations

import json
import threading
import time
import uuid
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest

from conftest import base_values, free_port, gateway_config, running_worker, SHIPPED_CONFIG
from test_chat import CHAT, body

BUDGET = "0.001"  # a request costs about $0.00004 on Gemini here, and reserves about $0.00005


class Receiver:
    """An incoming-webhook endpoint: keeps every JSON body posted to it."""

    def __init__(self):
        self.posts: list[dict] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802
                length = int(self.headers.get("content-length", 0))
                receiver.posts.append(json.loads(self.rfile.read(length)))
                self.send_response(200)
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = HTTPServer(("127.0.0.1", free_port()), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/hook/secret-part"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


@pytest.fixture(scope="module")
def receiver():
    r = Receiver()
    yield r
    r.server.shutdown()


@pytest.fixture(scope="module")
def alerting(sim, receiver):
    generous = {"requests_per_minute": 100000, "daily_budget_usd": 1000}
    providers = {p: dict(generous) for p in SHIPPED_CONFIG["providers"]}
    providers["google-ai-studio"]["daily_budget_usd"] = BUDGET
    routes = json.loads(json.dumps(SHIPPED_CONFIG["routes"]))
    routes["triage"] = {
        "targets": ["google-ai-studio/gemini-3.5-flash-lite", "openai/gpt-4o-mini"],
        "rules": [{"when": {"budget_used_above": 0.5}, "targets": ["openai/gpt-4o-mini"]}],
    }
    with running_worker("alerts", base_values(sim, ALERT_WEBHOOK_URL=receiver.url, GATEWAY_CONFIG=gateway_config(
        providers=providers, routes=routes,
    ))) as w:
        yield w


def gemini(worker):
    with worker.client() as c:
        return c.post(CHAT, json=body(model="google-ai-studio/gemini-3.5-flash-lite", text=f"a {uuid.uuid4()}", max_tokens=16))


def test_each_threshold_is_posted_once_and_answers_say_what_is_left(alerting, receiver):
    remaining = []
    for _ in range(80):
        r = gemini(alerting)
        if r.status_code == 429:
            break
        assert r.status_code == 200, r.text
        remaining.append(Decimal(r.headers["x-gateway-budget-remaining-usd"]))
    assert r.status_code == 429 and len(remaining) >= 2, remaining
    assert remaining == sorted(remaining, reverse=True) and remaining[0] < Decimal(BUDGET)
    for _ in range(3):
        gemini(alerting)  # refused again: no new 100% post
    deadline = time.monotonic() + 20
    while len(receiver.posts) < 3 and time.monotonic() < deadline:
        time.sleep(0.2)
    time.sleep(1.5)  # anything else that would (wrongly) follow
    thresholds = [p["threshold_percent"] for p in receiver.posts]
    assert sorted(thresholds) == [50, 80, 100], receiver.posts
    for post in receiver.posts:
        assert post["limiter"] == "google-ai-studio"
        assert post["text"] == post["content"] and "provider `google-ai-studio`" in post["text"]
        assert Decimal(str(post["daily_budget_usd"])) == Decimal(BUDGET)
    log = alerting.log_path.read_text(errors="replace")
    assert "secret-part" not in log, "the webhook URL is a credential: never logged"


def test_a_rule_moves_triage_off_a_provider_past_its_budget_share(alerting):
    # The previous test spent past 50% of Gemini's budget: triage now starts at gpt-4o-mini.
    with alerting.client() as c:
        r = c.post(CHAT, json=body(text=f"triage {uuid.uuid4()}"))
    assert r.status_code == 200, r.text
    assert r.headers["x-gateway-trace"] == "openai/gpt-4o-mini=200", r.headers["x-gateway-trace"]
