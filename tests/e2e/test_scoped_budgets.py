"""Budgets that follow the caller, end to end: two repositories share a provider; one exhausts its
own daily budget and is refused with `repository_budget_exhausted` (the scope and the limit
named, `Retry-After` until the next UTC day), under any spelling of its name, while the other
keeps being answered; `/limits` shows every scope that spent today, and one nobody used from its
configuration alone.

What the engine does with a scope's refusal (every target tried against a budget, a cheaper one
might fit; a rate ends the request at once) is the engine simulation's
(`a_repository_over_its_budget_tries_every_target_then_names_itself`); each scope's code and
message are `gateway_core::account::scopes`' unit tests (an agent's, `agent_budget_exhausted`,
included); a rate in the limiter's Durable Object is test_native_routes.py's (a provider's; a
scope's limiter is the same object). Here: that each scope is a limiter of its own, keyed by its
canonical name, in the runtime. On the session's `tokens` Worker (conftest.TOKENS_SCOPES)."""

from __future__ import annotations

import json
import uuid
from datetime import datetime, timezone
from decimal import Decimal

import pytest

from conftest import gateway_config
from helpers import CHAT, body

# A triage request reserves about $0.0026 on Gemini (1024 output tokens at its price), $0.0006 on
# gpt-4o-mini, $0.005 on Claude Haiku, and costs a few hundred-thousandths of a dollar. A repository
# with $0.0008 a day never fits Gemini's worst case: it is answered by the cheaper gpt-4o-mini
# until what it spent leaves no room for that either, then refused.
REPO_BUDGET = "0.0008"
DEFAULT_REPO_BUDGET = 50


@pytest.fixture(scope="module")
def scoped(workers):
    return workers["tokens"]


def ask(worker, repo: str, agent: str = "TriagingAgent"):
    with worker.client() as c:
        return c.post(CHAT, json=body(text=f"scoped {uuid.uuid4()}"),
                      headers={"x-github-repository": repo, "x-agent-name": agent})


def test_one_repository_over_its_budget_is_refused_and_the_other_is_not(scoped):
    runaway, quiet = "octo-org/runaway", "octo-org/quiet"
    codes = []
    for _ in range(60):
        r = ask(scoped, runaway)
        codes.append(r.status_code)
        if r.status_code == 429:
            break
    assert codes[0] == 200 and codes[-1] == 429 and len(codes) > 3, codes
    err = r.json()["error"]
    assert err["code"] == "repository_budget_exhausted", err
    assert err["type"] == "rate_limit_error"
    assert "repository `octo-org/runaway`" in err["message"] and f"${REPO_BUDGET}" in err["message"], err
    # Until the next UTC day.
    now = datetime.now(timezone.utc)
    midnight = datetime(now.year, now.month, now.day, tzinfo=timezone.utc).timestamp() + 86_400
    assert abs(int(r.headers["retry-after"]) - (midnight - now.timestamp())) < 120
    assert r.headers["x-gateway-cost-usd"] == "0"
    # Every target was tried against the repository's budget (a cheaper one might have fit).
    assert "skipped:repository_budget_exhausted" in r.headers["x-gateway-trace"]
    assert r.headers["x-gateway-trace"].count("skipped:repository_budget_exhausted") == 3, r.headers["x-gateway-trace"]
    # The other repository, same provider, same agent: answered.
    for _ in range(3):
        assert ask(scoped, quiet).status_code == 200

    with scoped.client() as c:
        listing = json.loads(c.get("/limits").text, parse_float=Decimal)
    repos = {s["name"]: s for s in listing["scopes"] if s["scope"] == "repository"}
    assert {runaway, quiet} <= set(repos), listing["scopes"]
    assert repos[runaway]["daily_budget_usd"] == Decimal(REPO_BUDGET)
    assert Decimal(0) < repos[runaway]["spent_usd"] + repos[runaway]["reserved_usd"] <= Decimal(REPO_BUDGET)
    assert repos[quiet]["spent_usd"] < repos[runaway]["spent_usd"]
    with scoped.client() as c:
        only = c.get("/limits", params={"repository": quiet}).json()["scopes"]
        assert [(s["scope"], s["name"]) for s in only] == [("repository", quiet), ("owner", "octo-org")]
        assert c.get("/limits", params={"nonsense": "1"}).status_code == 400

    # GitHub's names are one whatever their case: another spelling is the same exhausted budget,
    # never a fresh one.
    for spelling in ("Octo-Org/Runaway", "OCTO-ORG/RUNAWAY"):
        r = ask(scoped, spelling)
        assert r.status_code == 429, r.text
        assert r.json()["error"]["code"] == "repository_budget_exhausted"
        assert "repository `octo-org/runaway`" in r.json()["error"]["message"]
    with scoped.client() as c:
        r = c.get("/limits", params={"repository": "Octo-Org/RunAway"})
    assert [s["name"] for s in r.json()["scopes"]] == [runaway, "octo-org"]
    assert r.json()["scopes"][0]["spent_usd"] > 0


def test_a_name_nobody_uses_is_answered_without_its_limiter(scoped):
    # Asked for by name, an unused repository is its configuration: nothing spent. No limiter is
    # asked for it (nor created): the ledger's callers and one limiter per provider are all the
    # subrequests the answer made.
    providers = len(json.loads(gateway_config())["providers"])
    with scoped.client() as c:
        r = c.get("/limits", params={"repository": f"nobody-{uuid.uuid4().hex[:8]}/never-used"})
    assert r.status_code == 200, r.text
    [row] = r.json()["scopes"]
    assert (row["spent_usd"], row["reserved_usd"], row["requests_last_minute"]) == (0, 0, 0)
    assert Decimal(str(row["daily_budget_usd"])) == DEFAULT_REPO_BUDGET
    assert r.headers["x-limits-subrequests"] == f"{1 + providers}/50"
