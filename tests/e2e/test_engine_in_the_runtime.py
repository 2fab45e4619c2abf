"""What the engine's simulation (crates/core/tests/simulation) cannot prove: the same engine and
stream pump in the real runtime, through workerd, for the three bugs the two old copies of the
loop had drifted into, and for a caller that leaves mid-stream.

- a native, non-streamed answer was read with no deadline (an upstream that sent half a body
  and then nothing held the request until the upstream gave up);
- the native stream pump had its own idle timer per chunk and never read a finished stream's end;
- the error event after a stream's commit point carried the upstream's text unredacted, so an
  upstream echoing the gateway token mid-stream handed it to the caller.
"""

from __future__ import annotations

import json
import time

from conftest import AGENT_TOKEN, AIG_TOKEN
from helpers import CHAT, SEEN, body, hang_up_mid_stream, ledger_rows, limits_of

ECHO = "bad header cf-aig-authorization: Bearer {gateway_token}"


def test_a_token_echoed_mid_stream_is_redacted_in_the_error_event(client, sim):
    event = "data: " + json.dumps({"error": {"message": ECHO}}) + "\n\n"
    sim.fault("google-ai-studio", {"kind": "event_after_first_chunk", "data": event})
    with client.stream("POST", CHAT, json=body(stream=True)) as r:
        assert r.status_code == 200
        raw = b"".join(r.iter_raw()).decode()
    SEEN.append(("mid-stream echo (chat)", "", raw.encode()))
    last = [b for b in raw.split("\n\n") if b][-1]
    assert last.startswith('data: {"error"'), raw
    assert AIG_TOKEN not in raw
    assert "[redacted]" in raw
    assert "data: [DONE]" not in raw


def test_a_token_echoed_in_a_native_stream_is_redacted_in_the_providers_error_event(worker, sim):
    event = "event: error\ndata: " + json.dumps({"type": "error", "error": {"type": "api_error", "message": ECHO}}) + "\n\n"
    sim.fault("anthropic", {"kind": "event_after_first_chunk", "data": event})
    request = {"model": "claude-haiku-4-5", "max_tokens": 64, "stream": True, "messages": [{"role": "user", "content": "x"}]}
    with worker.client() as c, c.stream("POST", "/anthropic/v1/messages", json=request, headers={"x-api-key": AGENT_TOKEN}) as r:
        assert r.status_code == 200
        raw = b"".join(r.iter_raw()).decode()
    SEEN.append(("mid-stream echo (native)", "", raw.encode()))
    assert AIG_TOKEN not in raw
    assert "event: error" in raw.split("content_block_delta", 1)[1], raw
    assert "[redacted]" in raw
    assert "message_stop" not in raw


def test_a_native_answer_that_stops_half_way_times_out_within_the_idle_deadline(worker, sim):
    # The first try stalls after half the body; the idle deadline is 2 s; the retry answers.
    sim.fault("openai", {"kind": "stall_after_first_chunk"})
    request = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "x"}]}
    started = time.monotonic()
    with worker.client(timeout=60) as c:
        r = c.post("/openai/chat/completions", json=request)
    elapsed = time.monotonic() - started
    assert r.status_code == 200, r.text
    assert r.headers["x-gateway-trace"] == "openai/gpt-4o-mini=timeout, openai/gpt-4o-mini=200"
    assert 2 <= elapsed < 8, f"took {elapsed:.1f} s: the body read has no deadline"
    # Charged: the answer had started, so the provider may have billed it.
    rows = ledger_rows(worker, r.headers["x-gateway-request-id"])
    assert [(row["outcome"], row["charged_pico"] > 0) for row in rows] == [("timeout", True), ("200", True)], rows


def test_a_native_stream_that_stalls_after_content_ends_with_an_error_event(worker, sim):
    sim.fault("anthropic", {"kind": "stall_after_first_chunk"})
    request = {"model": "claude-haiku-4-5", "max_tokens": 64, "stream": True, "messages": [{"role": "user", "content": "x"}]}
    started = time.monotonic()
    with worker.client(timeout=60) as c, c.stream("POST", "/anthropic/v1/messages", json=request, headers={"x-api-key": AGENT_TOKEN}) as r:
        raw = b"".join(r.iter_raw()).decode()
    assert time.monotonic() - started < 8
    assert "event: error" in raw and "stalled" in raw, raw


def test_a_caller_that_leaves_mid_stream_is_settled_not_left_to_expire(worker, sim):
    """The caller reads the first content and hangs up while the upstream is still sending. The
    provider may bill the whole answer, so the attempt's worst case is charged at once (it used to
    be left reserved, to expire uncharged after 15 minutes)."""
    before = limits_of(worker)["google-ai-studio"]
    sim.fault("google-ai-studio", {"kind": "stall_after_first_chunk"})
    hang_up_mid_stream(worker, AGENT_TOKEN, body(stream=True))
    # The Worker notices within its idle deadline (2 s) at the latest, settles in waitUntil.
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        after = limits_of(worker)["google-ai-studio"]
        if after["outstanding_reservations"] == 0 and after["spent_usd"] > before["spent_usd"]:
            break
        time.sleep(0.25)
    assert after["outstanding_reservations"] == 0, after
    assert after["spent_usd"] > before["spent_usd"], (before, after)


def test_streams_dropped_under_load_leave_the_others_whole_and_the_log_clean(worker, sim):
    """Half of 16 concurrent streams hang up after their first content. The others must still end
    with [DONE], every dropped attempt must be settled, and the Worker must log no fatal error
    (the body of a dropped stream is freed outside the request, where the runtime refuses I/O,
    timers and stream calls: any such call there used to abort the wasm instance)."""
    from concurrent.futures import ThreadPoolExecutor

    log_before = worker.log_path.read_text(errors="replace")

    def one(i: int) -> bytes:
        with worker.client(timeout=60) as c, c.stream("POST", CHAT, json=body(stream=True)) as r:
            got = b""
            for chunk in r.iter_raw():
                got += chunk
                if i % 2 and b"Simulated" in got:
                    return b"dropped"
            return got

    with ThreadPoolExecutor(16) as pool:
        results = list(pool.map(one, range(16)))
    assert results.count(b"dropped") == 8
    for whole in (r for r in results if r != b"dropped"):
        assert whole.endswith(b"data: [DONE]\n\n"), whole[-200:]
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        if all(p["outstanding_reservations"] == 0 for p in limits_of(worker).values()):
            break
        time.sleep(0.25)
    assert all(p["outstanding_reservations"] == 0 for p in limits_of(worker).values()), limits_of(worker)
    fresh = worker.log_path.read_text(errors="replace")[len(log_before):]
    for fatal in ("Critical error", "Disallowed operation", "panicked"):
        assert fatal not in fresh, fresh[-3000:]
