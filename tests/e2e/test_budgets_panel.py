"""The dashboard's "Budgets today" panel end to end: after calls from two repositories, the panel
shows each scope's spend, reservations and daily budget with exactly the digits `/limits` gives,
a row per configured provider (a circuit breaker's state where it has one), and a caller-supplied
name escaped (a ledger row whose repository is a `<script>` tag)."""

from __future__ import annotations

import html
import json
import re
import time
import uuid
from decimal import Decimal

import pytest

from conftest import SHIPPED_CONFIG, base_values, gateway_config, running_worker
from test_chat import CHAT, body

HOSTILE = "octo-org/<script>alert(1)</script>"
BREAKER = {"window_seconds": 60, "min_attempts": 10, "failure_ratio": 0.5, "cooldown_seconds": 30, "probes": 2}


@pytest.fixture(scope="module")
def panel_worker(sim):
    providers = {name: {"requests_per_minute": 100000, "daily_budget_usd": 1000} for name in SHIPPED_CONFIG["providers"]}
    providers["google-ai-studio"]["circuit_breaker"] = BREAKER
    # The write path validates the repository header, so the hostile name can only come from
    # the ledger: a row of today, as if written by an older Worker or by hand.
    seeded = [{"request_id": "seeded-hostile", "ts_ms": int(time.time() * 1000), "provider": "openai",
               "model": "gpt-4o-mini", "agent": "TriagingAgent", "repository": HOSTILE}]
    with running_worker("budgets-panel", base_values(sim, GATEWAY_CONFIG=gateway_config(
        providers=providers,
        scopes={
            "repositories": {"default": {"daily_budget_usd": 5}, "octo-org/api": {"daily_budget_usd": "0.5"}},
            "agents": {"TriagingAgent": {"daily_budget_usd": 3, "requests_per_minute": 1000}},
        },
    )), ledger_rows=seeded) as w:
        yield w


def ask(worker, repo: str, agent: str):
    with worker.client() as c:
        r = c.post(CHAT, json=body(text=f"panel {uuid.uuid4()}"),
                   headers={"x-github-repository": repo, "x-agent-name": agent})
    assert r.status_code == 200, r.text


def settled_limits(worker, repos: set[str]) -> dict:
    """`/limits` once every repository is listed and nothing is reserved any more (books are
    settled after the answer)."""
    deadline = time.time() + 30
    while True:
        with worker.client() as c:
            r = c.get("/limits")
        assert r.status_code == 200, r.text
        listing = json.loads(r.text, parse_float=Decimal)
        rows = listing["providers"] + listing["scopes"]
        names = {s["name"] for s in listing["scopes"] if s["scope"] == "repository"}
        if repos <= names and all(Decimal(str(s["reserved_usd"])) == 0 for s in rows):
            return listing
        assert time.time() < deadline, listing
        time.sleep(0.3)


def panel_rows(page: str) -> dict[str, dict[str, str]]:
    """The panel's rows by key (`provider:openai`, `repository:owner/name`): field → exact value."""
    start = page.index('<section id="budgets">')
    section = page[start:page.index("</section>", start)]
    rows = {}
    for key, cells in re.findall(r'<tr data-key="([^"]*)"[^>]*>(.*?)</tr>', section):
        rows[html.unescape(key)] = {f: html.unescape(v) for f, v in re.findall(r'data-field="(\w+)" data-value="([^"]*)"', cells)}
    return rows


def test_the_panel_shows_what_limits_shows(panel_worker):
    ask(panel_worker, "octo-org/app", "TriagingAgent")
    ask(panel_worker, "octo-org/app", "TriagingAgent")
    ask(panel_worker, "octo-org/api", "PRReviewAgent")
    listing = settled_limits(panel_worker, {"octo-org/app", "octo-org/api", HOSTILE})

    with panel_worker.client() as c:
        r = c.get("/analytics", params={"format": "html", "cache": "off"})
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
    page = r.text
    rows = panel_rows(page)

    # Every scope, with /limits' exact digits; both repositories spent, the busier one more.
    for s in listing["scopes"]:
        row = rows[f'{s["scope"]}:{s["name"]}']
        for field in ("spent_usd", "reserved_usd", "daily_budget_usd"):
            assert Decimal(row[field]) == Decimal(str(s[field])), (s, row)
        assert int(row["used_bp"]) == int(Decimal(str(s["spent_usd"])) * 10_000 / Decimal(str(s["daily_budget_usd"])))
    spent = {name: Decimal(rows[f"repository:{name}"]["spent_usd"]) for name in ("octo-org/app", "octo-org/api")}
    assert spent["octo-org/app"] > spent["octo-org/api"] > 0, spent
    assert rows["repository:octo-org/api"]["daily_budget_usd"] == "0.5"
    assert Decimal(rows["agent:TriagingAgent"]["spent_usd"]) == spent["octo-org/app"]
    assert "agent:PRReviewAgent" not in rows  # no budget of its own

    # Every configured provider; the breaker's state where there is one.
    assert {k for k in rows if k.startswith("provider:")} == {f'provider:{p["provider"]}' for p in listing["providers"]}
    for p in listing["providers"]:
        row = rows[f'provider:{p["provider"]}']
        assert Decimal(row["spent_usd"]) == Decimal(str(p["spent_usd"]))
        assert Decimal(row["daily_budget_usd"]) == Decimal(str(p["daily_budget_usd"]))
        assert row["circuit"] == (p["circuit"]["state"] if "circuit" in p else "")
    assert rows["provider:google-ai-studio"]["circuit"] == "closed"
    assert sum(Decimal(rows[f'provider:{p["provider"]}']["spent_usd"]) for p in listing["providers"]) > 0

    # The caller-supplied name is text, never markup.
    assert rows[f"repository:{HOSTILE}"]["spent_usd"] == "0"
    assert "<script" not in page
    assert "octo-org/&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert 'id="budgets-warning"' not in page


def test_json_and_csv_keep_their_schema(panel_worker):
    with panel_worker.client() as c:
        j = c.get("/analytics", params={"format": "json", "cache": "off"})
        csv = c.get("/analytics", params={"format": "csv", "cache": "off"})
    assert j.status_code == 200 and "budgets_today" not in j.json()
    assert csv.status_code == 200 and "Budgets today" not in csv.text
