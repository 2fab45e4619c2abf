"""GET /analytics from the ledger (the default source) end to end: Workers whose local D1 ledger
is seeded (before they start, or as they run), every number checked against an independent
computation made here from the seeded rows; with AI Gateway's Logs API unreachable or not
configured (the view is the same, with a warning), and against the simulator's Logs API, where
the join by log id finds the rows missing on either side, the token counts that differ and the
cost that drifts.
"""

from __future__ import annotations

import csv
import io
import json
import secrets
from collections import defaultdict
from datetime import datetime, timedelta, timezone
from decimal import Decimal

import pytest

from conftest import AGENT_TOKEN, base_values, declare_worker, ROOT, SECRETS, seed_ledger, Sim, Worker
from helpers import pico_nearest

ANALYTICS_TOKEN = "ana-" + secrets.token_hex(16)
SECRETS.append(ANALYTICS_TOKEN)

NOW = datetime.now(timezone.utc).replace(microsecond=0)
END = NOW - timedelta(hours=1)
FROM = END - timedelta(days=3)
TO = NOW
PRICES = {(p["provider"], p["model"]): p for p in json.loads((ROOT / "prices.json").read_text())["models"]}


def iso(t: datetime) -> str:
    return t.strftime("%Y-%m-%dT%H:%M:%S.") + f"{t.microsecond // 1000:03d}Z"


def ms(t: datetime) -> int:
    return int(t.timestamp() * 1000)


def our_cost(provider: str, model: str, tin: int, tout: int) -> int | None:
    p = PRICES.get((provider, model))
    if p is None:
        return None
    return pico_nearest((tin * Decimal(p["input"]) + tout * Decimal(p["output"])) / Decimal(1_000_000))


# The canonical name of each spelling the seed uses (the ledger may hold any of them).
CANONICAL = {
    "gemini-3.5-flash-lite": "gemini-3.5-flash-lite",
    "google/gemini-3.5-flash-lite": "gemini-3.5-flash-lite",
    "gpt-4o-mini": "gpt-4o-mini",
    "gpt-4o-mini-2024-07-18": "gpt-4o-mini",
    "claude-haiku-4-5": "claude-haiku-4-5",
    "anthropic/claude-haiku-4.5": "claude-haiku-4-5",
    "claude-haiku-4-5-20251001": "claude-haiku-4-5",
    "@cf/meta/llama-3.1-8b-instruct": "@cf/meta/llama-3.1-8b-instruct",
}
TARGETS = [
    ("google-ai-studio", ["gemini-3.5-flash-lite", "google/gemini-3.5-flash-lite"]),
    ("openai", ["gpt-4o-mini", "gpt-4o-mini-2024-07-18"]),
    ("anthropic", ["claude-haiku-4-5", "anthropic/claude-haiku-4.5", "claude-haiku-4-5-20251001"]),
    ("workers-ai", ["@cf/meta/llama-3.1-8b-instruct"]),
]


def seed_rows() -> list[dict]:
    """300 attempts over three days: four providers under several spellings of their models,
    failures and fallbacks, cache hits, agents and repositories, one model nobody prices."""
    rows = []
    start = ms(FROM) + 60_000
    step = (ms(END) - start) // 300
    for i in range(300):
        provider, spellings = TARGETS[i % 4]
        model = spellings[i // 4 % len(spellings)]
        canonical = CANONICAL[model]
        failed = i % 13 == 0
        hit = not failed and i % 9 == 0
        tin, tout = (None, None) if failed else (200 + i * 7, 30 + i % 50)
        cost = None if failed else (0 if hit else our_cost(provider, canonical, tin, tout))
        rows.append({
            "request_id": f"req-{i}",
            "attempt": 2 if i % 10 == 3 else 1,
            "ts_ms": start + i * step,
            "provider": provider,
            "model": model,
            "agent": [None, "TriagingAgent", "PRReviewAgent"][i % 3],
            "repository": ["octo-org/docs", "octo-org/api"][i % 2],
            "outcome": "503" if failed else "200",
            "status": [503, 429][i % 2] if failed else 200,
            "success": 0 if failed else 1,
            "tokens_in": tin,
            "tokens_out": tout,
            "cost_pico": cost,
            "charged_pico": cost or 0,
            "cache": "HIT" if hit else "MISS",
            "log_id": f"log-{i}",
            "latency_ms": 20 + i * 17 % 3000,
        })
    return rows


def expected(rows: list[dict], key) -> dict:
    out: dict = defaultdict(lambda: {
        "requests": 0, "successes": 0, "errors_by_status": defaultdict(int), "cached_requests": 0, "tokens_in": 0,
        "tokens_out": 0, "cost": 0, "unpriced_requests": 0, "cache_savings": 0, "fallback_attempts": 0,
        "fallback_cost": 0,
    })
    for r in rows:
        m = out[key(r)]
        m["requests"] += 1
        if r["success"]:
            m["successes"] += 1
        else:
            m["errors_by_status"][str(r["status"])] += 1
        hit = r["cache"] == "HIT"
        m["cached_requests"] += hit
        m["tokens_in"] += r["tokens_in"] or 0
        m["tokens_out"] += r["tokens_out"] or 0
        m["cost"] += r["charged_pico"]
        if r["success"] and not hit and r["cost_pico"] is None:
            m["unpriced_requests"] += 1
        if hit:
            m["cache_savings"] += our_cost(r["provider"], CANONICAL[r["model"]], r["tokens_in"], r["tokens_out"]) or 0
        if r["attempt"] > 1:
            m["fallback_attempts"] += 1
            m["fallback_cost"] += r["charged_pico"]
    return out


def assert_metrics(got: dict, want: dict, label: str) -> None:
    for field in ["requests", "successes", "cached_requests", "tokens_in", "tokens_out", "unpriced_requests",
                  "fallback_attempts"]:
        assert got[field] == want[field], f"{label}: {field} {got[field]} != {want[field]}"
    assert got["errors_by_status"] == dict(want["errors_by_status"]), label
    for field in ["cost", "cache_savings", "fallback_cost"]:
        assert pico_nearest(got[field]) == want[field], f"{label}: {field}"
    assert got["cost_reported"] == got["cost"] and pico_nearest(got["cost_estimated"]) == 0, label
    assert got["latency_ms"]["samples"] == want["requests"], label


ROWS = seed_rows()


@pytest.fixture(scope="module")
def offline(workers):
    """Two Workers of the session with the same ledger, seeded here with rows older than anything
    the session writes, and no Logs API to cross-check against: `unreachable` (its Cloudflare
    API URL is where nothing listens) and `no-limiter` (no CF_API_TOKEN at all)."""
    for name in ("unreachable", "no-limiter"):
        seed_ledger(workers[name].ledger_file(), ROWS)
    return {"unreachable": workers["unreachable"], "unconfigured": workers["no-limiter"]}


def view(worker, token: str = AGENT_TOKEN, **params) -> tuple:
    with worker.client(token=token, timeout=60) as c:
        r = c.get("/analytics", params={"from": iso(FROM), "to": iso(TO), "cache": "off", **params})
    assert r.status_code == 200, r.text
    return r, (json.loads(r.text, parse_float=Decimal) if params.get("format", "json") == "json" else None)


def test_ledger_view_without_any_logs_api(offline):
    for name, needle in [("unreachable", "could not be reached"), ("unconfigured", "CF_API_TOKEN are not all set")]:
        r, v = view(offline[name], group_by="provider,day")
        assert r.headers["x-analytics-source"] == "ledger"
        assert v["source"]["name"] == "ledger" and v["source"]["ledger_attempts"] == len(ROWS)
        assert v["complete"] is True
        assert any("cross-check with AI Gateway's logs did not run" in w and needle in w for w in v["warnings"]), v["warnings"]
        assert v["cross_check"]["ran"] is False and needle in v["cross_check"]["skipped"]
        want = expected(ROWS, lambda r: (r["provider"], datetime.fromtimestamp(r["ts_ms"] / 1000, timezone.utc).strftime("%Y-%m-%d")))
        got = {(g["key"]["provider"], g["key"]["day"]): g for g in v["groups"]}
        assert set(got) == set(want)
        for k in want:
            assert_metrics(got[k], want[k], f"{name} {k}")
        assert_metrics(v["totals"], expected(ROWS, lambda r: "all")["all"], name)
    # AI Gateway's own view needs its logs: with none reachable it is an error, as before.
    with offline["unreachable"].client() as c:
        r = c.get("/analytics", params={"source": "aig", "from": iso(FROM), "to": iso(TO)})
        assert r.status_code == 502 and r.json()["error"]["code"] == "upstream_unreachable", r.text
        r = c.get("/analytics", params={"source": "logs"})
        assert r.status_code == 400 and "ledger or aig" in r.json()["error"]["message"]


def test_models_are_one_whatever_their_spelling(offline):
    _, v = view(offline["unreachable"], group_by="model")
    want = expected(ROWS, lambda r: f"{r['provider']}/{CANONICAL[r['model']]}")
    got = {g["key"]["model"]: g for g in v["groups"]}
    assert set(got) == {
        "google-ai-studio/gemini-3.5-flash-lite", "openai/gpt-4o-mini", "anthropic/claude-haiku-4-5",
        "workers-ai/@cf/meta/llama-3.1-8b-instruct",
    }
    for k in want:
        assert_metrics(got[k], want[k], k)
    assert got["workers-ai/@cf/meta/llama-3.1-8b-instruct"]["unpriced_requests"] > 0


def test_ledger_csv_and_dashboard(offline):
    w = offline["unreachable"]
    _, v = view(w, group_by="agent")
    r, _ = view(w, group_by="agent", format="csv")
    table = {row["agent"]: row for row in csv.DictReader(io.StringIO(r.text))}
    for g in v["groups"]:
        assert int(table[g["key"]["agent"]]["requests"]) == g["requests"]
        assert Decimal(table[g["key"]["agent"]]["cost_usd"]) == g["cost"]
    assert Decimal(table["total"]["cost_usd"]) == v["totals"]["cost"]
    assert set(table) == {"(none)", "TriagingAgent", "PRReviewAgent", "total"}
    r, _ = view(w, format="html")
    assert r.headers["content-type"].startswith("text/html")
    html = r.text
    assert "AI cost (ledger)" in html and 'id="cross-check-skipped"' in html
    assert f'id="total-cost"><div class="label">Total cost</div><div class="value" data-value="{v["totals"]["cost"]}"' in html
    assert 'name="source" value="ledger"' in html


# ---------------------------------------------------------------------------------------------
# The cross-check against the simulator's Logs API


def logs_of(sim: Sim) -> list[dict]:
    return sim.logs()


def mirror(log: dict) -> dict:
    """The ledger row the Worker would have written for an AI Gateway log."""
    meta = json.loads(log["metadata"])
    created = int(datetime.fromisoformat(log["created_at"].replace("Z", "+00:00")).timestamp() * 1000)
    provider, model = log["provider"], log["model"]
    answered = log["success"]
    ours = None
    if answered and log["tokens_in"] is not None:
        ours = 0 if log["cached"] else our_cost(provider, model, log["tokens_in"], log["tokens_out"])
    return {
        "request_id": f"req-{log['id']}",
        "attempt": int(meta.get("attempt", 1)),
        "ts_ms": created - 25,  # the Worker stamps an attempt when it starts it
        "provider": provider,
        # The ledger spells Claude the new way: still the same model.
        "model": "anthropic/claude-haiku-4.5" if model == "claude-haiku-4-5" else model,
        "agent": meta.get("agent"),
        "repository": meta.get("repo"),
        "outcome": str(log["status_code"]),
        "status": log["status_code"],
        "success": int(answered),
        "tokens_in": log["tokens_in"],
        "tokens_out": log["tokens_out"],
        "cost_pico": ours,
        "charged_pico": ours or 0,
        "cache": "HIT" if log["cached"] else "MISS",
        "log_id": log["id"],
        "latency_ms": log["duration"],
    }


@declare_worker("ledger-joined")
def joined_worker(_sim) -> Worker:
    """A simulator of its own with 120 logs, and a Worker whose ledger mirrors them but for
    one log the ledger lacks (a failed write), one attempt AI Gateway has no log of, and one
    attempt whose tokens the two count differently (`.sim`, `.joined`: what was seeded)."""
    sim = Sim(name="sim-ledger")
    seeded = sim.http.post("/__sim/logs/seed", json={
        "count": 120, "days": 2, "seed": 77, "end": iso(END), "worker": True, "price_drift": {"gpt-4o": 1.1},
    })
    assert seeded.json() == {"added": 120}
    logs = logs_of(sim)
    ledger = [mirror(log) for log in logs]
    lost = next(r for r in ledger if r["success"] and r["cache"] == "MISS")
    ledger.remove(lost)
    unlogged = {**ledger[10], "request_id": "req-unlogged", "log_id": "log-unlogged", "ts_ms": ledger[10]["ts_ms"] + 7}
    ledger.append(unlogged)
    recounted = next(r for r in ledger if r["success"] and r["cache"] == "MISS" and r["model"] == "gemini-3.5-flash-lite")
    recounted["tokens_out"] += 40
    w = Worker("ledger-joined", base_values(sim, ANALYTICS_TOKEN=ANALYTICS_TOKEN), ledger_rows=ledger)
    w.sim = sim
    w.joined = {"worker": w, "logs": logs, "ledger": ledger, "lost": lost, "unlogged": unlogged, "recounted": recounted}
    return w


@pytest.fixture(scope="module")
def joined(workers):
    return workers["ledger-joined"].joined


def test_the_join_finds_missing_rows_tokens_and_drift(joined):
    w, ledger = joined["worker"], joined["ledger"]
    window = {"from": iso(END - timedelta(days=3)), "to": iso(NOW)}
    r, v = view(w, ANALYTICS_TOKEN, **window)
    assert v["complete"] is True and v["warnings"] == [], v["warnings"]
    c = v["cross_check"]
    assert c["against"] == "aig_logs" and c["ran"] is True and c["complete"] is True
    assert c["logs_read"] == len(joined["logs"]) == v["source"]["logs_read"]
    assert c["ledger_attempts"] == len(ledger) and c["matched"] == len(ledger) - 1
    assert c["missing_in_ledger"]["count"] == 1
    assert c["missing_in_ledger"]["examples"][0]["log_id"] == joined["lost"]["log_id"]
    assert c["missing_in_aig"]["count"] == 1
    assert c["missing_in_aig"]["examples"][0]["log_id"] == "log-unlogged"
    assert c["token_mismatches"]["count"] == 1
    [m] = c["token_mismatches"]["examples"]
    rc = joined["recounted"]
    assert m["log_id"] == rc["log_id"] and m["ledger"]["tokens_out"] == m["aig"]["tokens_out"] + 40
    # Cost per provider and model: AI Gateway prices gpt-4o 10 % above us; everything else agrees.
    rows = {(x["provider"], x["model"]): x for x in c["rows"]}
    assert rows[("openai", "gpt-4o")]["flagged"] is True and rows[("openai", "gpt-4o")]["drift_percent"] == 10
    haiku = rows[("anthropic", "claude-haiku-4-5")]
    assert haiku["flagged"] is False and haiku["aig_cost"] == haiku["our_cost"], "one model under both spellings"
    for k, x in rows.items():
        if k != ("openai", "gpt-4o"):
            assert x["flagged"] is False, k
    assert c["flagged"] is True
    # The ledger's own totals are the ledger's, whatever AI Gateway says.
    assert v["totals"]["requests"] == len(ledger)
    assert pico_nearest(v["totals"]["cost"]) == sum(r["charged_pico"] for r in ledger)

    # The dashboard says so.
    r, _ = view(w, ANALYTICS_TOKEN, **window, format="html")
    html = r.text
    assert 'id="disagreement"' in html and 'id="drift"' in html and "openai/gpt-4o" in html
    assert 'data-field="missing-in-ledger" data-value="1"' in html
    assert f'<tr data-key="{joined["lost"]["log_id"]}">' in html
    assert 'data-field="token-mismatches" data-value="1"' in html
    assert 'id="cross-check-skipped"' not in html


def test_a_real_chat_call_is_in_the_ledger_view_and_matched(joined):
    """Through the write path: a chat call's own ledger row shows up in the view, at what the
    response said it was charged, and the join finds AI Gateway's log of it."""
    import time

    w = joined["worker"]
    headers = {"x-agent-name": "LiveLedgerAgent", "x-github-repository": "octo-org/live"}
    body = {"model": "triage", "messages": [{"role": "user", "content": "Ledger or logs, which is right?"}]}
    with w.client() as chat:
        r = chat.post("/v1/chat/completions", json=body, headers=headers)
    assert r.status_code == 200, r.text
    charged, request_id = Decimal(r.headers["x-gateway-cost-usd"]), r.headers["x-gateway-request-id"]
    deadline = time.time() + 20
    while not (rows := w.ledger("SELECT * FROM attempts WHERE request_id = ?", (request_id,))):
        assert time.time() < deadline, "the ledger row was never written"
        time.sleep(0.2)
    assert all(row["log_id"] for row in rows)
    window = {"from": iso(END - timedelta(days=3)), "to": iso(datetime.now(timezone.utc) + timedelta(minutes=1))}
    _, v = view(w, ANALYTICS_TOKEN, group_by="agent", **window)
    [live] = [g for g in v["groups"] if g["key"]["agent"] == "LiveLedgerAgent"]
    assert live["requests"] == len(rows) and live["cost"] == charged
    c = v["cross_check"]
    assert c["ran"] is True and c["matched"] == len(joined["ledger"]) - 1 + len(rows)
    # Too recent to be called missing anywhere; its tokens agree with AI Gateway's log.
    assert (c["missing_in_aig"]["count"], c["missing_in_ledger"]["count"], c["token_mismatches"]["count"]) == (1, 1, 1)
