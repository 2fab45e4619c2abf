"""The dashboard's "Budgets today" panel end to end: after calls from two repositories, the panel
shows each scope's spend, reservations and daily budget with exactly the digits `/limits` gives,
a row per configured provider (a circuit breaker's state where it has one), and a caller-supplied
name escaped (a ledger row whose repository is a `<script>` tag). Past the subrequest limit, the
dashboard and `/limits` leave scopes out and say so, and never make more subrequests than allowed."""

from __future__ import annotations

import html
import json
import re
import time
import uuid
from decimal import Decimal

import pytest

from conftest import PANEL_SUBREQUEST_LIMIT as SUBREQUEST_LIMIT, SHIPPED_CONFIG, seed_ledger
from helpers import CHAT, body

HOSTILE = "octo-org/<script>alert(1)</script>"
PROVIDERS = len(SHIPPED_CONFIG["providers"])


@pytest.fixture(scope="module")
def panel_worker(workers):
    """The `rest` Worker (conftest.py): SUBREQUEST_LIMIT below what a full view makes once many
    scopes spent today, budgets per repository and agent, a circuit breaker on Anthropic."""
    w = workers["rest"]
    # The write path validates the repository header, so the hostile name can only come from
    # the ledger: a row of today, as if written by an older Worker or by hand.
    seed_ledger(w.ledger_file(), [{"request_id": f"seeded-hostile-{uuid.uuid4()}", "ts_ms": int(time.time() * 1000),
                                  "provider": "openai", "model": "gpt-4o-mini", "agent": "TriagingAgent",
                                  "repository": HOSTILE}])
    return w


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


def test_the_panel_shows_what_limits_shows_then_stays_within_the_subrequest_limit(panel_worker, sim):
    """Two phases, in this order: a few scopes, all shown with /limits' digits; then ten, more
    than the subrequest limit leaves room for, the rest said."""
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
    assert rows["provider:anthropic"]["circuit"] == "closed"
    assert sum(Decimal(rows[f'provider:{p["provider"]}']["spent_usd"]) for p in listing["providers"]) > 0

    # The caller-supplied name is text, never markup.
    assert rows[f"repository:{HOSTILE}"]["spent_usd"] == "0"
    assert "<script" not in page
    assert "octo-org/&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert 'id="budgets-warning"' not in page

    views_stay_within_the_subrequest_limit(panel_worker, sim)


def test_json_and_csv_keep_their_schema(panel_worker):
    with panel_worker.client() as c:
        j = c.get("/analytics", params={"format": "json", "cache": "off"})
        csv = c.get("/analytics", params={"format": "csv", "cache": "off"})
    assert j.status_code == 200 and "budgets_today" not in j.json()
    assert csv.status_code == 200 and "Budgets today" not in csv.text


def views_stay_within_the_subrequest_limit(panel_worker, sim):
    # Ten scopes spent today: the panel (the ledger's callers, six providers, ten scopes) and the
    # cross-check cannot all fit in SUBREQUEST_LIMIT.
    for i in range(6):
        ask(panel_worker, f"octo-org/many-{i}", "TriagingAgent")
    deadline = time.time() + 30
    while True:
        with panel_worker.client() as c:
            limits = c.get("/limits")
        assert limits.status_code == 200, limits.text
        if limits.json().get("warnings") or time.time() > deadline:
            break
        time.sleep(0.3)
    # /limits: the callers, every provider, then as many used scopes as fit; the rest said.
    listing = limits.json()
    assert limits.headers["x-limits-subrequests"] == f"{SUBREQUEST_LIMIT}/{SUBREQUEST_LIMIT}"
    assert len(listing["providers"]) == PROVIDERS
    assert len(listing["scopes"]) == SUBREQUEST_LIMIT - 1 - PROVIDERS
    assert any("scopes used today are not shown" in w and "SUBREQUEST_LIMIT" in w for w in listing["warnings"])

    def log_requests() -> int:
        return len(sim.http.get("/__sim/logs/requests").json())

    for fmt, source in (("html", "ledger"), ("json", "ledger"), ("json", "aig")):
        before = log_requests()
        with panel_worker.client() as c:
            r = c.get("/analytics", params={"format": fmt, "source": source, "cache": "off"})
        assert r.status_code == 200, r.text
        used, limit = map(int, r.headers["x-analytics-subrequests"].split("/"))
        assert limit == SUBREQUEST_LIMIT and used <= limit
        assert log_requests() - before <= used, "every log page asked for is counted"
        if fmt == "html":
            # The panel came before the cross-check: every provider, some scopes, and the rest said.
            rows = panel_rows(r.text)
            assert len([k for k in rows if k.startswith("provider:")]) == PROVIDERS
            assert 0 < len([k for k in rows if not k.startswith("provider:")]) < 10
            assert 'id="budgets-warning"' in r.text and "SUBREQUEST_LIMIT" in r.text
            assert log_requests() == before, "no room was left for the cross-check"
        elif source == "ledger":
            v = r.json()
            assert v["complete"] is True
            assert v["cross_check"]["ran"] is True, v["cross_check"]
        else:
            # AI Gateway's logs take what is left; a view they do not fit in says it is partial.
            v = r.json()
            cut = [w for w in v["warnings"] if "SUBREQUEST_LIMIT" in w]
            assert v["complete"] is (not cut), v["warnings"]
            assert r.headers["x-analytics-complete"] == ("false" if cut else "true")
