"""Benchmark of GET /analytics: how long a 30-day view takes for 1k, 10k and 100k logs, read cold
from the Logs API (every page), from daily rollups, and from the result cache; and the Worker's
peak memory. Prints a table; asserts nothing about speed (`make bench-analytics`).

Each size gets a fresh simulator log (seeded over 30 days) and a fresh Worker (fresh Durable
Object storage, so no rollup of another size is reused). Two runtimes:

1. `wrangler dev` (cold, cron, rollups, cache): the only local runtime that runs the cron handler
   (`/__scheduled`). Its dev proxy and inspector keep every subrequest's objects, so its memory
   grows with pages read: its RSS is not the Worker's.
2. `workerd serve` from a generated capnp config (bench/run.py's harness): the production runtime,
   for the cold read's time and the process's memory over three reads in a row.

The simulator is the release build. Absolute times include its and the runtime's overheads.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests" / "e2e"))

import conftest  # noqa: E402  (the e2e harness: Sim, Worker, tokens)

conftest.SIM_BIN = ROOT / "target" / "release" / "aig-sim"
from conftest import Sim, Worker, base_values  # noqa: E402

# Cold views read every page of the range in one request (retries included).
BENCH_SUBREQUEST_LIMIT = "10000"

SIZES = [int(s) for s in os.environ.get("BENCH_SIZES", "1000,10000,100000").split(",")]
TOKEN = conftest.AGENT_TOKEN
CRON = "/__scheduled?cron=17+*+*+*+*"


def iso(t: datetime) -> str:
    return t.strftime("%Y-%m-%dT%H:%M:%S.") + f"{t.microsecond // 1000:03d}Z"


def descendants(pid: int) -> list[int]:
    out = subprocess.run(["ps", "-e", "-o", "pid=,ppid="], capture_output=True, text=True).stdout
    children: dict[int, list[int]] = {}
    for line in out.splitlines():
        p, pp = map(int, line.split())
        children.setdefault(pp, []).append(p)
    found, todo = [], [pid]
    while todo:
        p = todo.pop()
        for c in children.get(p, []):
            found.append(c)
            todo.append(c)
    return found


def workerd_peak_rss_mb(worker: Worker) -> float:
    """VmHWM (peak resident memory) of the workerd process serving the Worker."""
    peak = 0
    for pid in descendants(worker.proc.pid):
        try:
            status = Path(f"/proc/{pid}/status").read_text()
            cmd = Path(f"/proc/{pid}/cmdline").read_bytes()
        except OSError:
            continue
        if b"workerd" in cmd:
            for line in status.splitlines():
                if line.startswith("VmHWM:"):
                    peak = max(peak, int(line.split()[1]))
    return peak / 1024


def timed(client, params: dict, runs: int) -> tuple[float, dict, dict]:
    times, last = [], None
    for _ in range(runs):
        started = time.perf_counter()
        r = client.get("/analytics", params=params)
        times.append(time.perf_counter() - started)
        assert r.status_code == 200, r.text
        last = r
    body = last.json()
    assert body["complete"] is True, body["warnings"]
    return statistics.median(times), body, dict(last.headers)


def workerd_cold_reads(sim: Sim, window: dict, reads: int = 3) -> tuple[list[float], list[float]]:
    """Cold reads in `workerd serve`: seconds per read and the process's RSS (MB) after each."""
    import tempfile

    import httpx

    sys.path.insert(0, str(ROOT / "bench"))
    import run as harness  # bench/run.py: capnp config and process handling for workerd serve

    toml = harness.wrangler_toml()
    built = ROOT / "build"
    spec = harness.WorkerSpec(
        "analytics",
        [("index.js", "esModule", built / "index.js"), ("index_bg.wasm", "wasm", built / "index_bg.wasm")],
        {
            **{k: str(v) for k, v in toml.get("vars", {}).items()},
            "CF_ACCOUNT_ID": conftest.ACCOUNT_ID,
            "AI_GATEWAY_ID": conftest.GATEWAY_ID,
            "AI_GATEWAY_URL": f"{sim.url}/v1",
            "CF_API_URL": f"{sim.url}/client/v4",
            "AGENT_TOKEN": TOKEN,
            "CF_AIG_TOKEN": conftest.AIG_TOKEN,
            "CF_API_TOKEN": conftest.API_TOKEN,
            # A cold view of 100k logs is 2,000 pages: the Workers Paid plan's limit, not the free one's.
            "SUBREQUEST_LIMIT": BENCH_SUBREQUEST_LIMIT,
        },
        harness.wrangler_durable_objects(toml),
    )
    w = harness.Workerd(spec, Path(tempfile.mkdtemp(prefix="agw-bench-")))
    try:
        url = f"http://{w.address}"
        for _ in range(300):
            try:
                httpx.get(url + "/healthz", timeout=1)
                break
            except httpx.HTTPError:
                time.sleep(0.1)
        times, rss = [], []
        with httpx.Client(base_url=url, headers={"authorization": f"Bearer {TOKEN}"}, params={"source": "aig"},
                         timeout=900) as c:
            for _ in range(reads):
                started = time.perf_counter()
                r = c.get("/analytics", params={**window, "rollups": "off", "cache": "off"})
                times.append(time.perf_counter() - started)
                assert r.status_code == 200 and r.json()["complete"], r.text[:500]
                status = Path(f"/proc/{w.proc.pid}/status").read_text()
                rss.append(int(next(l for l in status.splitlines() if l.startswith("VmRSS:")).split()[1]) / 1024)
        return times, rss
    finally:
        w.stop()


def main() -> None:
    import httpx

    sim = Sim(name="sim-bench")
    rows = []
    try:
        for n in SIZES:
            sim.reset()
            end = datetime.now(timezone.utc) - timedelta(minutes=5)
            seeded = sim.http.post(
                "/__sim/logs/seed",
                json={"count": n, "days": 30, "seed": 7, "end": iso(end), "worker": True},
                timeout=120,
            ).json()
            assert seeded["added"] == n
            window = {"from": iso(end - timedelta(days=30)), "to": iso(end + timedelta(milliseconds=1))}
            worker = Worker(f"bench-{n}", base_values(sim, ANALYTICS_ROLLUP_MAX_PAGES="100000",
                                                      SUBREQUEST_LIMIT=BENCH_SUBREQUEST_LIMIT))
            try:
                worker.wait_ready(180)
                with httpx.Client(base_url=worker.url, headers={"authorization": f"Bearer {TOKEN}"}, params={"source": "aig"},
                         timeout=900) as c:
                    runs = 1 if n >= 100_000 else 3
                    cold, cold_body, cold_headers = timed(c, {**window, "rollups": "off", "cache": "off"}, runs)
                    started = time.perf_counter()
                    assert httpx.get(worker.url + CRON, timeout=900).status_code == 200
                    cron = time.perf_counter() - started
                    warm, warm_body, warm_headers = timed(c, {**window, "cache": "off"}, 3)
                    assert warm_body["totals"] == cold_body["totals"], "rollups and logs disagree"
                    c.get("/analytics", params=window)  # fills the result cache
                    cached, _, cached_headers = timed(c, window, 3)
                    assert cached_headers["x-analytics-cache"] == "hit"
                    rows.append({
                        "logs": n,
                        "pages": cold_body["source"]["log_pages"],
                        "cold_s": cold,
                        "cron_s": cron,
                        "rollups_s": warm,
                        "rollup_days": warm_body["source"]["rollup_days"],
                        "warm_logs_read": warm_body["source"]["logs_read"],
                        "cached_s": cached,
                        "wasm_mb": int(warm_headers["x-analytics-wasm-memory-bytes"]) / 2**20,
                        "workerd_mb": workerd_peak_rss_mb(worker),
                    })
            finally:
                worker.stop()
            times, rss = workerd_cold_reads(sim, window)
            rows[-1].update({"workerd_cold_s": statistics.median(times), "workerd_rss_mb": rss})
            print(json.dumps(rows[-1]), flush=True)
    finally:
        sim.stop()

    print()
    print("GET /analytics in `wrangler dev`, 30-day view (group_by=provider), median of 3 runs (1 for cold 100k);")
    print("wasm memory = the Worker's linear memory (its peak: it never shrinks)")
    print(f"{'logs':>8} {'pages':>6} {'cold (all logs)':>16} {'cron rollup':>12} {'with rollups':>13} "
          f"{'(logs read)':>11} {'cached':>8} {'wasm memory':>12} {'workerd peak RSS':>17}")
    for r in rows:
        print(f"{r['logs']:>8,} {r['pages']:>6} {r['cold_s']:>15.2f}s {r['cron_s']:>11.2f}s {r['rollups_s']:>12.3f}s "
              f"{r['warm_logs_read']:>11} {r['cached_s']:>7.3f}s {r['wasm_mb']:>10.1f}MB {r['workerd_mb']:>15.0f}MB")
    print()
    print("Cold read (every log) in `workerd serve`, the production runtime: median of 3 reads in a row,")
    print("and the workerd process's RSS after each read (flat = no memory kept per log or per page)")
    print(f"{'logs':>8} {'cold':>8} {'RSS after read 1, 2, 3':>26}")
    for r in rows:
        rss = ", ".join(f"{m:.0f}" for m in r["workerd_rss_mb"])
        print(f"{r['logs']:>8,} {r['workerd_cold_s']:>7.2f}s {rss:>23} MB")


if __name__ == "__main__":
    main()
