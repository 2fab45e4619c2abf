"""The ledger of record (D1 `LEDGER`, migrations/): one row per attempt, written after the
response, saying what the response said it cost — headers, `usage.cost` in JSON answers and in
a stream's final usage event, read through the official SDKs."""

from __future__ import annotations

import json
import time
import uuid
from decimal import Decimal

import openai
from conftest import AGENT_TOKEN
from helpers import CHAT, PICO, body, pico


def fresh(**extra) -> dict:
    """A chat body no earlier test sent (the triage route answers repeats from the cache)."""
    return body(text=f"Label issue {uuid.uuid4()}", **extra)


def rows_of(worker, request_count: int | None = None, where: str = "", timeout: float = 15) -> list[dict]:
    """The ledger's rows (optionally filtered), once `request_count` distinct requests are in."""
    sql = f"SELECT * FROM attempts {where} ORDER BY ts_ms, attempt"
    deadline = time.monotonic() + timeout
    while True:
        rows = worker.ledger(sql)
        if request_count is None or len({r["request_id"] for r in rows}) >= request_count or time.monotonic() > deadline:
            return rows
        time.sleep(0.2)


def new_rows(worker, before: set[str], count: int) -> list[dict]:
    deadline = time.monotonic() + 15
    while True:
        rows = [r for r in worker.ledger() if r["request_id"] not in before]
        if len({r["request_id"] for r in rows}) >= count or time.monotonic() > deadline:
            return rows
        time.sleep(0.2)


def ids(worker) -> set[str]:
    return {r["request_id"] for r in worker.ledger()}


def test_an_answer_is_one_row_saying_what_the_headers_and_the_body_said(worker, client):
    before = ids(worker)
    r = client.post(CHAT, json=fresh(), headers={"x-agent-name": "TriagingAgent", "x-github-repository": "octo-org/octo-repo"})
    assert r.status_code == 200, r.text
    answer = json.loads(r.text, parse_float=Decimal)
    cost = pico(r.headers["x-gateway-cost-usd"])
    assert cost > 0
    assert pico(answer["usage"]["cost"]) == cost, "usage.cost says what the header says"
    [row] = new_rows(worker, before, 1)
    assert row["charged_pico"] == cost and row["cost_pico"] == cost
    assert (row["route"], row["alias"], row["provider"], row["model"]) == ("chat", "triage", "google-ai-studio", "gemini-3.5-flash-lite")
    assert (row["agent"], row["repository"]) == ("TriagingAgent", "octo-org/octo-repo")
    assert (row["outcome"], row["status"], row["success"], row["stream"], row["attempt"]) == ("200", 200, 1, 0, 1)
    assert row["tokens_in"] == answer["usage"]["prompt_tokens"]
    # Thinking, reported apart from completion_tokens (Gemini's), is output billed: in its own
    # column too.
    thinking = (answer["usage"].get("completion_tokens_details") or {}).get("reasoning_tokens", 0)
    assert row["tokens_out"] == answer["usage"]["completion_tokens"] + thinking
    assert row["tokens_reasoning"] == thinking
    assert row["log_id"] == r.headers["cf-aig-log-id"]
    assert row["cache"] == "MISS"
    assert row["latency_ms"] >= 0


def test_every_attempt_of_a_failover_is_a_row_of_the_same_request(worker, client, sim):
    before = ids(worker)
    sim.fault("google-ai-studio", {"kind": "status", "status": 503}, times=2)
    r = client.post(CHAT, json=fresh())
    assert r.status_code == 200, r.text
    assert r.headers["x-gateway-attempts"] == "3"
    rows = new_rows(worker, before, 1)
    assert [(x["attempt"], x["provider"], x["outcome"], x["success"]) for x in rows] == [
        (1, "google-ai-studio", "503", 0),
        (2, "google-ai-studio", "503", 0),
        (3, "openai", "200", 1),
    ]
    assert len({x["request_id"] for x in rows}) == 1
    assert sum(x["charged_pico"] for x in rows) == pico(r.headers["x-gateway-cost-usd"])
    assert rows[0]["status"] == 503 and rows[0]["tokens_in"] is None and rows[0]["charged_pico"] == 0


def test_attempts_that_reached_nothing_are_rows_charged_nothing_and_the_error_says_so(workers):
    worker = workers["unreachable"]
    before = ids(worker)
    with worker.client() as c:
        r = c.post(CHAT, json=fresh())
    assert r.status_code == 502, r.text
    assert r.headers["x-gateway-cost-usd"] == "0"
    rows = new_rows(worker, before, 1)
    assert rows and all(x["status"] is None and x["outcome"] == "unreachable" and x["charged_pico"] == 0 for x in rows)


def test_the_python_sdk_reads_the_cost_of_a_stream_from_its_final_usage(worker):
    before = ids(worker)
    client = openai.OpenAI(base_url=f"{worker.url}/v1", api_key=AGENT_TOKEN)
    stream = client.chat.completions.create(
        model="review", messages=[{"role": "user", "content": f"Review this diff {uuid.uuid4()}"}], stream=True,
        stream_options={"include_usage": True},
    )
    usage = None
    text = ""
    for chunk in stream:
        if chunk.choices:
            text += chunk.choices[0].delta.content or ""
        if chunk.usage is not None:
            usage = chunk.usage
    assert text and usage is not None
    cost = usage.model_extra["cost"]
    assert isinstance(cost, float) and cost > 0
    [row] = new_rows(worker, before, 1)
    thinking = usage.completion_tokens_details.reasoning_tokens if usage.completion_tokens_details else 0
    assert row["stream"] == 1 and row["tokens_out"] == usage.completion_tokens + thinking
    # The float the SDK parsed is the nearest double of the exact decimal the row holds.
    assert abs(Decimal(cost) * PICO - row["charged_pico"]) < 1


def test_a_streams_usage_event_holds_the_exact_decimal_and_the_rest_is_untouched(worker, client, sim):
    before = ids(worker)
    with client.stream("POST", CHAT, json=fresh(stream=True)) as r:
        raw = b"".join(r.iter_raw()).decode()
    assert "x-gateway-cost-usd" not in r.headers, "a stream's headers leave before its cost is known"
    events = [e for e in raw.split("\n\n") if e]
    usage_events = [e for e in events if '"usage":{' in e]
    assert len(usage_events) == 1, raw
    payload = json.loads(usage_events[0].removeprefix("data: "), parse_float=Decimal)
    [row] = new_rows(worker, before, 1)
    assert pico(payload["usage"]["cost"]) == row["charged_pico"] > 0
    assert events[-1] == "data: [DONE]"


def test_a_native_call_is_a_row_of_its_own_route(worker):
    before = ids(worker)
    request = {"model": "claude-haiku-4-5", "max_tokens": 64, "messages": [{"role": "user", "content": "x"}]}
    with worker.client() as c:
        r = c.post("/anthropic/v1/messages", json=request, headers={"x-api-key": AGENT_TOKEN, "x-agent-name": "native-bot"})
    assert r.status_code == 200, r.text
    [row] = new_rows(worker, before, 1)
    assert (row["route"], row["alias"], row["provider"], row["model"], row["agent"]) == (
        "native", None, "anthropic", "claude-haiku-4-5", "native-bot")
    assert row["charged_pico"] == pico(r.headers["x-gateway-cost-usd"]) > 0
    assert row["tokens_in"] == r.json()["usage"]["input_tokens"]


def test_a_cache_hit_is_charged_nothing_and_says_so(worker, client):
    """Triage answers repeats from AI Gateway's cache (streams never are: aig/cache.rs)."""
    before = ids(worker)
    request = fresh()
    first, second = (client.post(CHAT, json=request) for _ in range(2))
    assert second.headers["cf-aig-cache-status"] == "HIT", second.headers
    rows = new_rows(worker, before, 2)
    [hit] = [x for x in rows if x["cache"] == "HIT"]
    assert hit["charged_pico"] == 0 and hit["cost_pico"] == 0
    assert second.json()["usage"]["cost"] == 0 and second.headers["x-gateway-cost-usd"] == "0"
    assert first.json()["usage"]["cost"] > 0


def test_the_cron_prunes_days_past_the_retention_and_keeps_the_rest(workers):
    """Rows older than LEDGER_RETENTION_DAYS (90) go at the hourly cron; today's stay. The old
    row is put straight into the Worker's local D1 file, as if written 200 days ago."""
    import sqlite3

    worker = workers["rest"]
    with worker.client() as c:
        assert c.post(CHAT, json=fresh()).status_code == 200
    today = new_rows(worker, set(), 1)
    assert today
    d1 = worker.home / "state" / "v3" / "d1" / "miniflare-D1DatabaseObject"
    (db,) = [p for p in d1.glob("*.sqlite") if p.name != "metadata.sqlite"]
    old_ms = int(time.time() * 1000) - 200 * 86_400_000
    con = sqlite3.connect(db, timeout=10)
    with con:
        row = dict(today[0], request_id="old-request", ts_ms=old_ms, day=old_ms // 86_400_000)
        con.execute(f"INSERT INTO attempts ({', '.join(row)}) VALUES ({', '.join('?' * len(row))})", list(row.values()))
    con.close()
    assert worker.ledger("SELECT request_id FROM attempts WHERE request_id = 'old-request'")
    with worker.client() as c:
        assert c.get("/__scheduled?cron=17+*+*+*+*").status_code == 200
    deadline = time.monotonic() + 15
    while worker.ledger("SELECT 1 FROM attempts WHERE request_id = 'old-request'") and time.monotonic() < deadline:
        time.sleep(0.3)
    assert not worker.ledger("SELECT 1 FROM attempts WHERE request_id = 'old-request'")
    assert {r["request_id"] for r in worker.ledger()} >= {r["request_id"] for r in today}
    # The cron's log line follows the delete (and reaches the log a moment later).
    while '"event":"ledger_pruned"' not in worker.log_path.read_text(errors="replace") and time.monotonic() < deadline:
        time.sleep(0.3)
    assert '"event":"ledger_pruned"' in worker.log_path.read_text(errors="replace")
