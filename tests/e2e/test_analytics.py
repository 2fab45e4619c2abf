"""GET /analytics?source=aig end to end (AI Gateway's logs; the ledger's view, the default, is
tests/e2e/test_analytics_ledger.py): a simulator seeded with 4,000 logs over 30 days, the Worker
in `wrangler dev`, and every number checked against an independent computation made here from the
simulator's own logs (exact decimals, our price table applied in Python).

The module has its own simulator and Worker (started with the session's others): the rollups the
cron handler stores (a Durable Object) outlive a test, and the seeded logs must not be reset by
the suite's per-test `clean_sim`.
"""

from __future__ import annotations

import base64
import csv
import io
import json
import math
import re
import secrets
import shutil
import subprocess
import tempfile
import time
from collections import defaultdict
from datetime import datetime, timedelta, timezone
from decimal import ROUND_HALF_UP, Decimal
from html.parser import HTMLParser

import httpx
import pytest

from conftest import AGENT_TOKEN, ARTIFACTS, base_values, declare_worker, ROOT, SECRETS, Sim, Worker
from helpers import PICO, pico_nearest

ANALYTICS_TOKEN = "ana-" + secrets.token_hex(16)
SECRETS.append(ANALYTICS_TOKEN)  # the final secret scan covers it too

SEED_COUNT = 4_000
NOW = datetime.now(timezone.utc).replace(microsecond=0)
SEED_END = NOW - timedelta(minutes=5)
FROM = SEED_END - timedelta(days=30)
TO = SEED_END + timedelta(milliseconds=1)
PRICES = {(p["provider"], p["model"]): p for p in json.loads((ROOT / "prices.json").read_text())["models"]}
CRON = "/__scheduled?cron=17+*+*+*+*"
# Every view here is AI Gateway's logs (the default source is the ledger).
AIG = {"source": "aig"}


def iso(t: datetime) -> str:
    return t.strftime("%Y-%m-%dT%H:%M:%S.") + f"{t.microsecond // 1000:03d}Z"


def ms(text: str) -> int:
    t = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return int(t.timestamp() * 1000)


# ---------------------------------------------------------------------------------------------
# The independent computation


def our_cost(provider: str, model: str, tin: int, tout: int) -> int | None:
    p = PRICES.get((provider, model))
    if p is None:
        return None
    rate_in, rate_out = Decimal(p["input"]), Decimal(p["output"])
    lc = p.get("long_context")
    if lc and tin > lc["threshold_tokens"]:
        rate_in, rate_out = Decimal(lc["input"]), Decimal(lc["output"])
    return pico_nearest((tin * rate_in + tout * rate_out) / Decimal(1_000_000))


def expected(rows: list[dict], key) -> dict:
    """Metrics per key(row), computed from raw log rows exactly as docs/analytics.md documents them."""
    out: dict = defaultdict(lambda: {
        "requests": 0, "successes": 0, "errors_by_status": defaultdict(int), "cached_requests": 0,
        "tokens_in": 0, "tokens_out": 0, "cost_reported": 0, "cost_estimated": 0, "estimated_requests": 0,
        "unpriced_requests": 0, "cache_savings": 0, "fallback_attempts": 0, "fallback_cost": 0, "durations": [],
    })
    for r in rows:
        m = out[key(r)]
        m["requests"] += 1
        if r["success"]:
            m["successes"] += 1
        else:
            m["errors_by_status"][str(r.get("status_code") or "none")] += 1
        m["cached_requests"] += r["cached"]
        tin, tout = r.get("tokens_in"), r.get("tokens_out")
        m["tokens_in"] += tin or 0
        m["tokens_out"] += tout or 0
        m["durations"].append(r["duration"])
        ours = our_cost(r["provider"], r["model"], tin or 0, tout or 0) if (tin is not None or tout is not None) else None
        if r.get("cost") is not None:
            row_cost = pico_nearest(r["cost"])
            m["cost_reported"] += row_cost
        elif r["cached"] or not r["success"]:
            row_cost = 0
        elif ours is not None:
            row_cost = ours
            m["cost_estimated"] += ours
            m["estimated_requests"] += 1
        else:
            row_cost = 0
            m["unpriced_requests"] += 1
        if r["cached"] and ours is not None:
            m["cache_savings"] += ours
        meta = json.loads(r["metadata"]) if r.get("metadata") else {}
        if int(meta.get("attempt", 1)) > 1:
            m["fallback_attempts"] += 1
            m["fallback_cost"] += row_cost
    return out


def nearest_rank(values: list[int], q: float) -> int:
    s = sorted(values)
    return s[max(1, math.ceil(q * len(s))) - 1]


def assert_metrics_equal(got: dict, want: dict, label: str) -> None:
    for field in ["requests", "successes", "cached_requests", "tokens_in", "tokens_out", "estimated_requests",
                  "unpriced_requests", "fallback_attempts"]:
        assert got[field] == want[field], f"{label}: {field} {got[field]} != {want[field]}"
    assert dict(got["errors_by_status"]) == dict(want["errors_by_status"]), label
    for field in ["cost_reported", "cost_estimated", "cache_savings", "fallback_cost"]:
        assert pico_nearest(got[field]) == want[field], f"{label}: {field} {got[field]} != {Decimal(want[field]) / PICO}"
    assert pico_nearest(got["cost"]) == want["cost_reported"] + want["cost_estimated"], label
    for q, name in [(0.5, "p50"), (0.95, "p95")]:
        exact = nearest_rank(want["durations"], q)
        assert abs(got["latency_ms"][name] - exact) <= exact / 64 + 1, f"{label}: {name} {got['latency_ms'][name]} vs {exact}"
    assert got["latency_ms"]["samples"] == len(want["durations"])


def day_of(r: dict) -> str:
    return r["created_at"][:10]


# ---------------------------------------------------------------------------------------------
# Fixtures


@declare_worker("analytics")
def analytics_worker(_sim) -> Worker:
    """A simulator of its own, seeded with the logs, and a Worker reading them (`.sim`)."""
    own = Sim(name="sim-analytics")
    seeded = own.http.post("/__sim/logs/seed", json={
        "count": SEED_COUNT, "days": 30, "seed": 4242, "end": iso(SEED_END),
        "worker": True, "price_drift": {"gpt-4o": 1.1},
    })
    assert seeded.json() == {"added": SEED_COUNT}
    # 4,000 logs are 80 pages in one view: past the free plan's subrequest limit (50), within a paid one's.
    w = Worker("analytics", base_values(own, ANALYTICS_TOKEN=ANALYTICS_TOKEN, SUBREQUEST_LIMIT="1000"))
    w.sim = own
    return w


@pytest.fixture(scope="module")
def an_worker(workers):
    return workers["analytics"]


@pytest.fixture(scope="module")
def an_sim(an_worker):
    return an_worker.sim


@pytest.fixture(scope="module")
def seeded_rows(an_sim) -> list[dict]:
    """Every log row, read straight from the simulator's Logs API (oldest first)."""
    return an_sim.logs()


@pytest.fixture(scope="module")
def api(an_worker):
    with an_worker.client(token=ANALYTICS_TOKEN, timeout=180, params=AIG) as c:
        yield c


@pytest.fixture()
def no_log_faults(an_sim):
    yield
    an_sim.http.delete("/__sim/logs/faults")


RESULTS: dict[str, dict] = {}


def get_json(api, **params) -> tuple[httpx.Response, dict]:
    r = api.get("/analytics", params={"format": "json", **params})
    assert r.status_code == 200, r.text
    return r, json.loads(r.text, parse_float=Decimal)


def log_requests(sim) -> list[dict]:
    return sim.http.get("/__sim/logs/requests").json()


def pages_of(requests: list[dict]) -> list[int]:
    return [int(re.search(r"(?:^|&)page=(\d+)", q["query"]).group(1)) for q in requests]


def window_rows(rows, start: datetime, end: datetime) -> list[dict]:
    a, b = int(start.timestamp() * 1000), int(end.timestamp() * 1000)
    return [r for r in rows if a <= ms(r["created_at"]) < b]


# ---------------------------------------------------------------------------------------------
# Access and parameters


def test_who_may_read_analytics(an_worker):
    with an_worker.client(token=None) as anonymous:
        r = anonymous.get("/analytics")
        assert r.status_code == 401
        assert r.json()["error"]["code"] == "invalid_api_key"
        assert r.headers["www-authenticate"].startswith("Basic realm=")
        assert anonymous.get("/analytics", headers={"authorization": "Bearer wrong"}).status_code == 401
        basic = base64.b64encode(f"anyone:{ANALYTICS_TOKEN}".encode()).decode()
        window = {"from": iso(SEED_END - timedelta(hours=1)), "to": iso(TO)}
        assert anonymous.get("/analytics", params=window, headers={"authorization": f"Basic {basic}"}).status_code == 200
    for token in [AGENT_TOKEN, ANALYTICS_TOKEN]:
        with an_worker.client(token=token) as c:
            assert c.get("/analytics", params={"from": iso(SEED_END - timedelta(hours=1)), "to": iso(TO)}).status_code == 200


def test_bad_parameters_are_400(api):
    for params, needle in [
        ({"group-by": "day"}, "Unknown query parameter"),
        ({"from": "last week"}, "RFC 3339"),
        ({"group_by": "provider,day,model"}, "at most two"),
        ({"format": "xml"}, "json, csv or html"),
        ({"from": "2026-01-02", "to": "2026-01-01"}, "before"),
    ]:
        r = api.get("/analytics", params=params)
        assert r.status_code == 400, params
        assert r.json()["error"]["code"] == "invalid_request"
        assert needle in r.json()["error"]["message"]


# ---------------------------------------------------------------------------------------------
# Totals against the independent computation


def test_cold_totals_match_per_provider_and_day(api, seeded_rows):
    rows = window_rows(seeded_rows, FROM, TO)
    assert len(rows) == SEED_COUNT
    r, view = get_json(api, **{"from": iso(FROM), "to": iso(TO), "group_by": "provider,day", "rollups": "off", "cache": "off"})
    assert view["object"] == "analytics" and view["schema_version"] == 1
    assert view["complete"] is True and view["warnings"] == []
    assert r.headers["x-analytics-complete"] == "true"
    assert view["source"]["logs_read"] == SEED_COUNT
    assert view["source"]["log_pages"] == math.ceil(SEED_COUNT / 50)
    assert view["source"]["rollup_days"] == 0

    want = expected(rows, lambda r: (r["provider"], day_of(r)))
    got = {(g["key"]["provider"], g["key"]["day"]): g for g in view["groups"]}
    assert set(got) == set(want)
    for k in want:
        assert_metrics_equal(got[k], want[k], str(k))
    assert_metrics_equal(view["totals"], expected(rows, lambda r: "all")["all"], "totals")

    # Per provider and per day, summed from the provider×day groups.
    for dim, index in [("provider", 0), ("day", 1)]:
        want_dim = expected(rows, lambda r: (r["provider"], day_of(r))[index])
        for value, w in want_dim.items():
            groups = [g for k, g in got.items() if k[index] == value]
            assert sum(g["requests"] for g in groups) == w["requests"], (dim, value)
            assert sum(pico_nearest(g["cost"]) for g in groups) == w["cost_reported"] + w["cost_estimated"], (dim, value)
    # The seed has what the issue asks for: several providers, cache hits, failures, missing costs.
    t = view["totals"]
    assert len({k[0] for k in got}) >= 4
    assert t["cached_requests"] > 0 and t["errors"] > 0 and t["estimated_requests"] > 0 and t["unpriced_requests"] > 0
    assert t["fallback_attempts"] > 0 and t["cache_savings"] > 0
    RESULTS["cold"] = view


def test_group_by_agent_repository_and_model(api, seeded_rows):
    rows = window_rows(seeded_rows, FROM, TO)
    _, view = get_json(api, **{"from": iso(FROM), "to": iso(TO), "group_by": "agent,repository", "rollups": "off", "cache": "off"})
    meta = lambda r: json.loads(r["metadata"]) if r.get("metadata") else {}
    want = expected(rows, lambda r: (meta(r).get("agent", "(none)"), meta(r).get("repo", "(none)")))
    got = {(g["key"]["agent"], g["key"]["repository"]): g for g in view["groups"]}
    assert set(got) == set(want)
    for k in want:
        assert_metrics_equal(got[k], want[k], str(k))


def test_pagination_stops_exactly_at_the_end(api, an_sim, seeded_rows):
    # A window holding exactly 150 rows: three full pages, and no fourth (empty) page is asked for.
    start = FROM + timedelta(days=3)
    inside = window_rows(seeded_rows, start, TO)
    end_ms = ms(inside[150]["created_at"])
    assert ms(inside[149]["created_at"]) < end_ms
    end = datetime.fromtimestamp(end_ms / 1000, timezone.utc)
    for window_end, count in [(end, 150), (end + timedelta(days=2), None)]:
        n = count if count is not None else len(window_rows(seeded_rows, start, window_end))
        before = len(log_requests(an_sim))
        _, view = get_json(api, **{"from": iso(start), "to": iso(window_end), "rollups": "off", "cache": "off"})
        asked = log_requests(an_sim)[before:]
        assert view["totals"]["requests"] == n
        assert sorted(pages_of(asked)) == list(range(1, math.ceil(n / 50) + 1)), (n, pages_of(asked))
        assert all("per_page=50" in q["query"] and "order_by_direction=asc" in q["query"] for q in asked)
    # An empty range: one request, no more.
    before = len(log_requests(an_sim))
    _, view = get_json(api, **{"from": "2020-01-01", "to": "2020-01-02", "rollups": "off", "cache": "off"})
    assert view["totals"]["requests"] == 0 and view["groups"] == []
    assert pages_of(log_requests(an_sim)[before:]) == [1]


def test_cross_check_flags_drift(api):
    view = RESULTS.get("cold") or get_json(api, **{"from": iso(FROM), "to": iso(TO), "rollups": "off", "cache": "off"})[1]
    cross = {(c["provider"], c["model"]): c for c in view["cross_check"]["rows"]}
    assert view["cross_check"]["threshold_percent"] == 5
    gpt4o = cross[("openai", "gpt-4o")]
    assert gpt4o["flagged"] is True
    assert gpt4o["drift_percent"] == 10
    assert pico_nearest(gpt4o["aig_cost"]) == pico_nearest(Decimal(gpt4o["our_cost"]) * Decimal("1.1")) or abs(
        pico_nearest(gpt4o["aig_cost"]) - pico_nearest(Decimal(gpt4o["our_cost"]) * Decimal("1.1"))) <= gpt4o["requests"]
    for k, c in cross.items():
        if k != ("openai", "gpt-4o"):
            assert c["flagged"] is False and c["drift_percent"] == 0 and c["aig_cost"] == c["our_cost"], k
    assert ("workers-ai", "@cf/meta/llama-3.1-8b-instruct") not in cross  # we have no price for it


# ---------------------------------------------------------------------------------------------
# Failures of the Logs API

FAULT_START = FROM + timedelta(days=10)
FAULT_END = FROM + timedelta(days=15)


def fault_window(seeded_rows):
    return window_rows(seeded_rows, FAULT_START, FAULT_END)


def queue(sim, fault: dict, after: int, times: int = 1):
    r = sim.http.post("/__sim/logs/faults", json={"after_pages": after, "times": times, "fault": fault})
    assert r.status_code == 200, r.text


def fault_params(**extra):
    return {"from": iso(FAULT_START), "to": iso(FAULT_END), "rollups": "off", "cache": "off", **extra}


def test_failure_midway_is_a_partial_result_that_says_so(api, an_sim, seeded_rows, no_log_faults):
    rows = fault_window(seeded_rows)
    assert len(rows) > 600
    # A 500 that outlasts the retries (pages are asked for six at a time, so more than one
    # request meets it; the leftovers are dropped after each read).
    queue(an_sim, {"kind": "status", "status": 500}, after=5, times=30)
    r, view = get_json(api, **fault_params())
    assert r.headers["x-analytics-complete"] == "false"
    assert view["complete"] is False
    assert any("500" in w and "stopped at page" in w for w in view["warnings"]), view["warnings"]
    read = view["source"]["logs_read"]
    assert 0 < read < len(rows) and read % 50 == 0
    # The partial totals are exactly those of the pages read: the first `read` rows, oldest first.
    assert_metrics_equal(view["totals"], expected(rows[:read], lambda r: "all")["all"], "partial totals")
    an_sim.http.delete("/__sim/logs/faults")

    # The CSV says it in the sheet itself, the HTML in a banner.
    queue(an_sim, {"kind": "status", "status": 500}, after=5, times=30)
    r = api.get("/analytics", params=fault_params(format="csv"))
    assert r.status_code == 200 and r.headers["x-analytics-complete"] == "false"
    last = list(csv.reader(io.StringIO(r.text)))[-1]
    assert last[0].startswith("total (partial: stopped at page")
    an_sim.http.delete("/__sim/logs/faults")
    queue(an_sim, {"kind": "status", "status": 500}, after=5, times=30)
    r = api.get("/analytics", params=fault_params(format="html"))
    assert 'id="partial"' in r.text and "Partial result" in r.text


def test_rate_limit_with_retry_after_is_waited_out(api, an_sim, seeded_rows, no_log_faults):
    rows = fault_window(seeded_rows)
    queue(an_sim, {"kind": "status", "status": 429, "retry_after": 1}, after=3, times=1)
    before = len(log_requests(an_sim))
    started = time.monotonic()
    r, view = get_json(api, **fault_params())
    assert time.monotonic() - started >= 1.0, "Retry-After was honoured"
    assert view["complete"] is True and r.headers["x-analytics-complete"] == "true"
    assert_metrics_equal(view["totals"], expected(rows, lambda r: "all")["all"], "after a 429")
    asked = log_requests(an_sim)[before:]
    limited = [q for q in asked if q["status"] == 429]
    assert len(limited) == 1
    page = pages_of(limited)[0]
    assert pages_of(asked).count(page) == 2, "the refused page was asked again"
    assert sorted(set(pages_of(asked))) == list(range(1, math.ceil(len(rows) / 50) + 1))


def test_long_retry_after_and_malformed_pages_end_the_read(api, an_sim, no_log_faults):
    for fault, needle in [
        ({"kind": "status", "status": 429, "retry_after": 120}, "retry after 120 s"),
        ({"kind": "malformed"}, "malformed page"),
        ({"kind": "wrong_shape"}, "not a list of log rows"),
    ]:
        queue(an_sim, fault, after=2)
        r, view = get_json(api, **fault_params())
        assert view["complete"] is False, fault
        assert any(needle in w for w in view["warnings"]), (fault, view["warnings"])
        assert view["source"]["logs_read"] > 0


def test_failure_before_anything_is_read_is_an_error(api, an_sim, no_log_faults):
    for fault, times, status, code in [
        ({"kind": "status", "status": 503}, 3, 503, "upstream_error"),
        ({"kind": "status", "status": 429, "retry_after": 60}, 1, 429, "upstream_rate_limited"),
        ({"kind": "status", "status": 401, "body": {"success": False, "errors": [{"code": 10000, "message": "Authentication error"}]}},
         1, 502, "upstream_auth_failed"),
        ({"kind": "malformed"}, 1, 502, "upstream_malformed_response"),
    ]:
        queue(an_sim, fault, after=0, times=times)
        r = api.get("/analytics", params=fault_params())
        assert r.status_code == status, (fault, r.text)
        error = r.json()["error"]
        assert error["code"] == code
        assert "logs could not be read" in error["message"]
        if status == 429:
            assert r.headers["retry-after"] == "60"
        if code == "upstream_auth_failed":
            assert "CF_API_TOKEN" in error["message"]
    assert an_sim.http.get("/__sim/logs/faults").json() == []


# ---------------------------------------------------------------------------------------------
# Rollups (cron) and the result cache


def cron_runs(worker) -> list[dict]:
    return [json.loads(line[line.index("{"):]) for line in worker.log_path.read_text(errors="replace").splitlines()
            if '"event":"analytics_rollup"' in line]


def run_cron(worker) -> dict:
    before = len(cron_runs(worker))
    r = httpx.get(worker.url + CRON, timeout=300)
    assert r.status_code == 200, r.text
    deadline = time.time() + 30
    while time.time() < deadline:
        runs = cron_runs(worker)
        if len(runs) > before:
            return runs[-1]
        time.sleep(0.2)
    raise AssertionError("the cron handler logged no analytics_rollup line")


def test_rollups_are_incremental_idempotent_and_equal_to_the_logs(api, an_worker, an_sim, seeded_rows, no_log_faults):
    # A run that fails half way keeps what it finished, and says what is left.
    queue(an_sim, {"kind": "status", "status": 500}, after=40, times=30)
    first = run_cron(an_worker)
    an_sim.http.delete("/__sim/logs/faults")
    assert first["error"] and "500" in first["error"]
    assert first["days_written"] and first["days_pending"]
    # The next run catches up exactly the days left.
    second = run_cron(an_worker)
    assert second["error"] is None
    assert second["days_written"] == first["days_pending"]
    assert second["days_pending"] == []
    # And a run with nothing left to do changes nothing.
    third = run_cron(an_worker)
    assert third["days_written"] == [] and third["days_pending"] == [] and third["page_requests"] == 0
    assert third["days_complete"] == len(first["days_written"]) + len(second["days_written"]) + first["days_complete"]

    cold = RESULTS.get("cold")
    r, warm = get_json(api, **{"from": iso(FROM), "to": iso(TO), "group_by": "provider,day", "cache": "off"})
    assert warm["complete"] is True
    assert warm["source"]["rollup_days"] >= 28, warm["source"]
    assert warm["source"]["logs_read"] < 1000, "only the partial first and last days come from the logs"
    assert r.headers["x-analytics-rollup-days"] == str(warm["source"]["rollup_days"])
    if cold is not None:
        assert warm["totals"] == cold["totals"]
        assert warm["groups"] == cold["groups"]
        assert warm["cross_check"] == cold["cross_check"]
    # Per provider from rollups, against the independent computation.
    _, by_provider = get_json(api, **{"from": iso(FROM), "to": iso(TO), "cache": "off"})
    want = expected(window_rows(seeded_rows, FROM, TO), lambda r: r["provider"])
    for g in by_provider["groups"]:
        assert_metrics_equal(g, want[g["key"]["provider"]], g["key"]["provider"])
    RESULTS["warm_by_provider"] = by_provider


def test_result_cache(api):
    params = {"from": iso(FROM), "to": iso(TO), "group_by": "model"}
    first = api.get("/analytics", params=params)
    second = api.get("/analytics", params=params)
    assert first.headers["x-analytics-cache"] == "miss"
    assert second.headers["x-analytics-cache"] == "hit"
    assert second.content == first.content
    assert second.headers["content-type"] == "application/json"
    assert second.headers["cache-control"] == "private, no-store"
    assert api.get("/analytics", params={**params, "cache": "off"}).headers["x-analytics-cache"] == "bypass"
    # Another format is another entry.
    assert api.get("/analytics", params={**params, "format": "csv"}).headers["x-analytics-cache"] == "miss"


def test_csv_matches_the_json(api):
    params = {"from": iso(FROM), "to": iso(TO), "group_by": "model", "cache": "off"}
    _, view = get_json(api, **params)
    r = api.get("/analytics", params={**params, "format": "csv"})
    assert r.headers["content-type"].startswith("text/csv")
    assert "attachment" in r.headers["content-disposition"]
    table = list(csv.DictReader(io.StringIO(r.text)))
    by_model = {row["model"]: row for row in table}
    for g in view["groups"]:
        row = by_model[g["key"]["model"]]
        assert int(row["requests"]) == g["requests"]
        assert Decimal(row["cost_usd"]) == g["cost"]
        assert Decimal(row["cache_savings_usd"]) == g["cache_savings"]
        assert int(row["latency_p95_ms"]) == g["latency_ms"]["p95"]
    assert Decimal(by_model["total"]["cost_usd"]) == view["totals"]["cost"]


# ---------------------------------------------------------------------------------------------
# The HTML dashboard, in a real browser


class Dom(HTMLParser):
    """Collects table cells (data-field/data-value and text) by table and row, chart bars and cards."""

    def __init__(self):
        super().__init__()
        self.table = None
        self.row = None
        self.cell = None
        self.cells: dict[tuple[str, str], dict[str, tuple[str, str]]] = defaultdict(dict)
        self.bars: list[dict] = []
        self.cards: dict[str, str] = {}
        self.card = None
        self.text = ""
        self.tags: list[str] = []

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        self.tags.append(tag)
        if tag == "table":
            self.table = a.get("data-group")
        elif tag == "tr":
            self.row = a.get("data-key")
        elif tag == "td" and "data-field" in a:
            self.cell = (a["data-field"], a["data-value"])
            self.text = ""
        elif tag == "rect" and "data-cost" in a:
            self.bars.append(a)
        elif tag == "div" and a.get("class") == "card":
            self.card = a.get("id")
        elif tag == "div" and a.get("class") == "value" and self.card:
            self.cards[self.card] = a["data-value"]

    def handle_data(self, data):
        if self.cell is not None:
            self.text += data

    def handle_endtag(self, tag):
        if tag == "td" and self.cell is not None:
            field, value = self.cell
            self.cells[(self.table, self.row)][field] = (value, self.text.strip())
            self.cell = None


def usd_display(v) -> str:
    v = Decimal(v)
    decimals = 2 if v >= 1 else 4
    q = Decimal(1).scaleb(-decimals)
    return f"${v.quantize(q, rounding=ROUND_HALF_UP):,.{decimals}f}"


def chromium(*args: str) -> subprocess.CompletedProcess:
    binary = shutil.which("chromium") or shutil.which("chromium-browser")
    assert binary, "Debian's chromium is needed (scripts/setup.sh installs it)"
    profile = tempfile.mkdtemp(prefix="agw-chromium-")
    try:
        return subprocess.run(
            [binary, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
             "--disable-background-networking", "--disable-component-update", "--disable-sync",
             "--hide-scrollbars", f"--user-data-dir={profile}", *args],
            capture_output=True, timeout=120, check=True,
        )
    finally:
        shutil.rmtree(profile, ignore_errors=True)


def test_html_dashboard_renders_in_chromium_with_the_json_numbers(api, an_worker):
    params = {"from": iso(FROM), "to": iso(TO)}
    _, by_provider = get_json(api, **params)
    _, by_day = get_json(api, **params, group_by="provider,day")

    # Served to a browser: HTML, under a strict CSP, no script anywhere.
    r = api.get("/analytics", params=params, headers={"accept": "text/html,application/xhtml+xml"})
    assert r.headers["content-type"].startswith("text/html")
    assert "default-src 'none'" in r.headers["content-security-policy"]
    assert "<script" not in r.text.lower()

    query = "&".join(f"{k}={v}" for k, v in {**AIG, **params}.items())
    url = f"http://viewer:{ANALYTICS_TOKEN}@127.0.0.1:{an_worker.port}/analytics?format=html&{query}"
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    shot = ARTIFACTS / "analytics-dashboard.png"
    shot.unlink(missing_ok=True)
    chromium("--window-size=1280,2400", f"--screenshot={shot}", url)
    assert shot.stat().st_size > 50_000, "a real page, not a blank or an error"
    dom_text = chromium("--dump-dom", url).stdout.decode()
    assert "AI Gateway cost" in dom_text

    dom = Dom()
    dom.feed(dom_text)
    # The per-provider table: every number is the JSON's, shown rounded, exact in data-value.
    for g in by_provider["groups"]:
        cells = dom.cells[("by-provider", g["key"]["provider"])]
        assert Decimal(cells["cost"][0]) == g["cost"]
        # Shown rounded; † marks a provider with requests nobody could price.
        assert cells["cost"][1] == usd_display(g["cost"]) + ("†" if g["unpriced_requests"] else "")
        assert int(cells["requests"][0]) == g["requests"]
        assert cells["requests"][1] == f"{g['requests']:,}"
        assert Decimal(cells["cache_savings"][0]) == g["cache_savings"]
        assert Decimal(cells["error_rate"][0]) == g["error_rate"]
        assert int(cells["cached_requests"][0]) == g["cached_requests"]
        assert int(cells["latency_p95_ms"][0]) == g["latency_ms"]["p95"]
    totals = by_provider["totals"]
    assert Decimal(dom.cards["total-cost"]) == totals["cost"]
    assert int(dom.cards["total-requests"]) == totals["requests"]
    assert Decimal(dom.cards["cache-savings"]) == totals["cache_savings"]
    # The chart: one bar segment per (day, provider) with a cost, each the JSON's cost.
    want_bars = {(g["key"]["day"], g["key"]["provider"]): g["cost"] for g in by_day["groups"] if g["cost"] > 0}
    got_bars = {(b["data-day"], b["data-provider"]): Decimal(b["data-cost"]) for b in dom.bars}
    assert got_bars == want_bars
    # Drift is called out.
    assert 'id="drift"' in dom_text and "openai/gpt-4o" in dom_text


# ---------------------------------------------------------------------------------------------
# Live traffic: what the Worker itself sent shows up with its metadata


def test_live_requests_show_up_with_agent_repository_and_fallbacks(an_worker, an_sim):
    # Runs last in the module: it leaves faults queued on the module's simulator.
    started = datetime.now(timezone.utc) - timedelta(seconds=2)
    before = len(an_sim.requests())
    headers = {"x-agent-name": "LiveAgent", "x-github-repository": "octo-org/live"}
    body = {"model": "triage", "messages": [{"role": "user", "content": "Is this a bug?"}]}
    with an_worker.client(token=AGENT_TOKEN) as chat:
        assert chat.post("/v1/chat/completions", json=body, headers=headers).status_code == 200
        # Gemini keeps failing (retries included): the answer comes from a fallback.
        an_sim.fault("google-ai-studio", {"kind": "status", "status": 503}, times=5)
        # (Another question: the same one would be a cache hit of the `triage` route.)
        other = {**body, "messages": [{"role": "user", "content": "Is this a feature request?"}]}
        r = chat.post("/v1/chat/completions", json=other, headers=headers)
        assert r.status_code == 200, r.text
        assert r.headers["x-gateway-provider"] != "google-ai-studio"
    sent = [q for q in an_sim.requests()[before:] if q.get("log_id")]
    meta = [json.loads(q["headers"]["cf-aig-metadata"]) for q in sent]
    assert all(m["agent"] == "LiveAgent" and m["repo"] == "octo-org/live" for m in meta)

    with an_worker.client(token=ANALYTICS_TOKEN, params=AIG) as api:
        window = {"from": iso(started), "to": iso(datetime.now(timezone.utc) + timedelta(minutes=1)), "cache": "off"}
        _, view = get_json(api, **window, group_by="agent")
        [live] = [g for g in view["groups"] if g["key"]["agent"] == "LiveAgent"]
        assert live["requests"] == len(sent)
        assert live["successes"] == sum(q["status"] == 200 for q in sent)
        assert live["errors_by_status"] == {"503": sum(q["status"] == 503 for q in sent)}
        assert live["fallback_attempts"] == sum(m["attempt"] > 1 for m in meta) >= 1
        assert live["fallback_answers"] == 1
        _, by_repo = get_json(api, **window, group_by="repository")
        assert [g["key"]["repository"] for g in by_repo["groups"]] == ["octo-org/live"]
