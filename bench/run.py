#!/usr/bin/env python3
"""`make bench`: the built Worker against a minimal JavaScript passthrough Worker (the floor).

Both run in `workerd serve` (the production runtime, from a generated capnp config; `wrangler dev`
adds a proxy that hides what the Worker costs), both call the same AI Gateway simulator in a
fixed-latency mode, and `wrk` loads each in turn, interleaved, in one run on one machine. The
simulator is also loaded directly, so what each Worker adds is visible.

Printed: requests/s, p50/p99 under load, latency added over calling the simulator directly at one
connection, the ratio of ours to the floor; time to the first streamed byte (and first token)
through each Worker vs direct; the gzip size of build/index_bg.wasm (information); cold start
(spawn to listening, then the first request, beside the floor's); each workerd's memory. Written: bench/results/latest.json (the previous run is kept as
previous.json and compared with).

Only the standard library (python3 >= 3.11, for tomllib). Loopback only; load bounded in time.
"""

from __future__ import annotations

import argparse
import gzip
import http.client
import json
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import tomllib
from dataclasses import dataclass, field, replace
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BENCH = ROOT / "bench"
RESULTS = BENCH / "results"
SIM_BIN = ROOT / "target" / "release" / "aig-sim"
WORKERD = ROOT / "node_modules" / ".bin" / "workerd"
# The tree whose Worker is measured (build/, wrangler.toml, gateway.config.json): this one, unless
# --tree names another checkout (to compare a change against a copy of the code before it).
TREE = ROOT

ACCOUNT_ID = "bench-account"
GATEWAY_ID = "bench-gateway"
AGENT_TOKEN = "bench-agent-token-" + os.urandom(8).hex()
AIG_TOKEN = "bench-aig-token-" + os.urandom(8).hex()
MODEL = "google-ai-studio/gemini-2.5-flash"
# The Rust Worker is called the way the agent calls it: by alias, with its caller headers. Not
# `triage`: its answers are cached by AI Gateway (the simulator too), and the floor's are not.
ALIAS = "default"


# ---------------------------------------------------------------------------------------------
# Processes


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def rss_kb(pid: int) -> tuple[int, int]:
    """(VmRSS, VmHWM) of a process in KiB, from /proc."""
    values = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, rest = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            values[key] = int(rest.split()[0])
    return values.get("VmRSS", 0), values.get("VmHWM", 0)


def stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


class Sim:
    def __init__(self, latency_ms: int, chunk_delay_ms: int, log: Path):
        self.proc = subprocess.Popen(
            [
                str(SIM_BIN), "--listen", "127.0.0.1:0",
                "--account-id", ACCOUNT_ID, "--gateway-id", GATEWAY_ID,
                "--gateway-token", AIG_TOKEN, "--api-token", "",
                "--latency-ms", str(latency_ms), "--chunk-delay-ms", str(chunk_delay_ms),
            ],
            stdout=subprocess.PIPE,
            stderr=open(log, "wb"),
        )
        line = self.proc.stdout.readline().decode()
        if not line:
            raise SystemExit(f"aig-sim did not start; see {log}")
        self.address = json.loads(line)["listening"]
        self.chat_url = f"http://{self.address}/v1/{ACCOUNT_ID}/{GATEWAY_ID}/compat/chat/completions"

    def reset(self) -> None:
        """Forgets recorded requests and log rows, so memory stays flat over a long run."""
        status, _, _ = http_request(self.address, "POST", "/__sim/reset", b"", {})
        if status != 200:
            raise SystemExit(f"simulator reset answered {status}")


WORKER_TEMPLATE = """using Workerd = import "/workerd/workerd.capnp";

const config :Workerd.Config = (
  services = [
{services}
    # Reaching the simulator on 127.0.0.1 needs "local" (and "private") next to "public".
    (name = "internet", network = (allow = ["private", "public", "local"])),
  ],
  sockets = [ (name = "http", address = "127.0.0.1:{port}", http = (), service = "{front}") ],
);
{workers}"""

# One Worker of the config: `const <name> :Workerd.Worker = (...)`.
WORKER_DEF = """
const {name} :Workerd.Worker = (
  modules = [
{modules}
  ],
  compatibilityDate = "{compat_date}",
  bindings = [
{bindings}
  ],
  globalOutbound = "internet",
{durable_objects});
"""


def capnp_string(value: str) -> str:
    return json.dumps(value)  # capnp text strings take the same escapes as JSON


def compat_date() -> str:
    return wrangler_toml()["compatibility_date"]


@dataclass
class WorkerSpec:
    name: str
    modules: list[tuple[str, str, Path]]  # (module name, kind, file)
    bindings: dict[str, str]
    # (binding name, class name, SQLite-backed) for each Durable Object namespace.
    durable_objects: list[tuple[str, str, bool]] = field(default_factory=list)
    # (binding name, service, class name): another Worker's Durable Object namespace.
    foreign_objects: list[tuple[str, str, str]] = field(default_factory=list)


def wrangler_toml(name: str = "wrangler.toml") -> dict:
    return tomllib.loads((TREE / name).read_text())


def wrangler_durable_objects(toml: dict) -> list[tuple[str, str, bool]]:
    """The Durable Object bindings declared in wrangler.toml, as workerd needs them."""
    sqlite = {c for m in toml.get("migrations", []) for c in m.get("new_sqlite_classes", [])}
    return [
        (b["name"], b["class_name"], b["class_name"] in sqlite)
        for b in toml.get("durable_objects", {}).get("bindings", [])
        if "script_name" not in b  # a binding to another Worker's class is not ours to host
    ]


def ours_spec(sim: Sim, extra_vars: dict[str, str] | None = None) -> WorkerSpec:
    """The gateway as built, with its own Durable Objects, as deployed."""
    toml = wrangler_toml()
    # worker-build's output: an ES module that imports "cloudflare:workers" (built into workerd)
    # and "./index_bg.wasm"; nothing else (checked, so a new import fails loudly).
    index = TREE / "build" / "index.js"
    imports = set(re.findall(r'(?:import|from)\s*"([^"]+)"', index.read_text()))
    unknown = imports - {"cloudflare:workers", "./index_bg.wasm"}
    if unknown:
        raise SystemExit(f"{index} imports modules the bench does not provide: {sorted(unknown)}")
    # The config's [vars] first (the deployed defaults), then the bench's own values.
    values = {
        **{k: str(v) for k, v in toml.get("vars", {}).items()},
        "CF_ACCOUNT_ID": ACCOUNT_ID,
        "AI_GATEWAY_ID": GATEWAY_ID,
        "AI_GATEWAY_URL": f"http://{sim.address}/v1",
        "CF_API_URL": f"http://{sim.address}/client/v4",
        "AGENT_TOKEN": AGENT_TOKEN,
        "CF_AIG_TOKEN": AIG_TOKEN,
        "GATEWAY_CONFIG": bench_gateway_config(),
        **(extra_vars or {}),
    }
    modules = [("index.js", "esModule", index), ("index_bg.wasm", "wasm", TREE / "build" / "index_bg.wasm")]
    return WorkerSpec("ours", modules, values, wrangler_durable_objects(toml))


def bench_gateway_config() -> str:
    """The shipped routing configuration with limits no bench can reach: the limiter still
    reserves and settles every request (real work), but never refuses one."""
    config = json.loads((TREE / "gateway.config.json").read_text())
    for limits in config.get("providers", {}).values():
        if "requests_per_minute" in limits:
            limits["requests_per_minute"] = 1_000_000_000
        if "daily_budget_usd" in limits:
            limits["daily_budget_usd"] = 1_000_000  # within Usd (picodollars in 64 bits)
    return json.dumps(config)


def floor_spec(sim: Sim) -> WorkerSpec:
    return WorkerSpec(
        "floor",
        [("floor-worker.js", "esModule", BENCH / "floor-worker.js")],
        {"UPSTREAM_URL": sim.chat_url, "CF_AIG_TOKEN": AIG_TOKEN},
    )


def worker_def(spec: WorkerSpec) -> str:
    """The capnp definition of one Worker: its modules (embedded from the config's folder), vars
    as text bindings, and its Durable Object namespaces (or bindings to another Worker's)."""
    modules = ",\n".join(
        f"    (name = {capnp_string(m)}, {kind} = embed {capnp_string(spec.name + '/' + m)})"
        for m, kind, _ in spec.modules
    )
    bindings = [f"    (name = {capnp_string(k)}, text = {capnp_string(v)})" for k, v in spec.bindings.items()]
    durable_objects = ""
    if spec.durable_objects:
        # Durable Objects as in production: in this process, SQLite-backed where the migration
        # says so, stored in memory (the bench must not leave state behind).
        namespaces = ",\n".join(
            f"    (className = {capnp_string(cls)}, uniqueKey = {capnp_string('bench-' + cls)}"
            + (", enableSql = true" if sql else "") + ")"
            for _, cls, sql in spec.durable_objects
        )
        durable_objects = (
            f"  durableObjectNamespaces = [\n{namespaces}\n  ],\n  durableObjectStorage = (inMemory = void),\n"
        )
        bindings += [
            f"    (name = {capnp_string(name)}, durableObjectNamespace = (className = {capnp_string(cls)}))"
            for name, cls, _ in spec.durable_objects
        ]
    bindings += [
        f"    (name = {capnp_string(name)}, durableObjectNamespace = "
        f"(className = {capnp_string(cls)}, serviceName = {capnp_string(service)}))"
        for name, service, cls in spec.foreign_objects
    ]
    return WORKER_DEF.format(
        name=spec.name,
        modules=modules,
        bindings=",\n".join(bindings),
        compat_date=compat_date(),
        durable_objects=durable_objects,
    )


class Workerd:
    """One Worker in its own `workerd serve` process (so its memory is its own), and any Worker
    it calls (`also`)."""

    def __init__(self, spec: WorkerSpec, workdir: Path, inspector: str | None = None, also: tuple = ()):
        self.spec = spec
        self.inspector = inspector
        self.port = free_port()
        self.address = f"127.0.0.1:{self.port}"
        here = workdir / f"{spec.name}-{self.port}"
        here.mkdir(parents=True)
        specs = [spec] + list(also)
        for sp in specs:
            (here / sp.name).mkdir(exist_ok=True)
            for module, _, path in sp.modules:
                shutil.copyfile(path, here / sp.name / module)
        config = here / "config.capnp"
        config.write_text(
            WORKER_TEMPLATE.format(
                port=self.port,
                services="\n".join(f"    (name = {capnp_string(sp.name)}, worker = .{sp.name})," for sp in specs),
                front=spec.name,
                workers="".join(worker_def(sp) for sp in specs),
            )
        )
        self.log = here / "workerd.log"
        self.started = time.perf_counter()
        self.proc = subprocess.Popen(
            [str(WORKERD), "serve", str(config)] + (["-i", inspector] if inspector else []),
            cwd=here,
            stdout=open(self.log, "wb"),
            stderr=subprocess.STDOUT,
        )

    def cold_start(self, request: tuple[str, bytes, dict], timeout: float = 30) -> tuple[float, float]:
        """A fresh process's start, in two parts: seconds from spawning workerd until it accepts
        a connection (no request sent, so no isolate is asked to serve), then the first request's
        own seconds (the isolate's first request: module instantiation, the first call into it)."""
        deadline = time.perf_counter() + timeout
        while True:
            if self.proc.poll() is not None:
                raise SystemExit(f"workerd ({self.spec.name}) exited:\n{self.log.read_text()[-3000:]}")
            if time.perf_counter() > deadline:
                raise SystemExit(f"{self.spec.name} did not listen within {timeout}s; see {self.log}")
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                break
            except OSError:
                time.sleep(0.001)
        listening = time.perf_counter()
        path, body, headers = request
        status, _, answer = http_request(self.address, "POST", path, body, headers, timeout=timeout)
        if status != 200:
            raise SystemExit(f"{self.spec.name} answered {status}: {answer[:500]!r}")
        return listening - self.started, time.perf_counter() - listening

    def wait_first_answer(self, request: tuple[str, bytes, dict], timeout: float = 30) -> float:
        """Seconds from spawning workerd to its first 200 answer to `request`."""
        path, body, headers = request
        deadline = time.perf_counter() + timeout
        while time.perf_counter() < deadline:
            if self.proc.poll() is not None:
                raise SystemExit(f"workerd ({self.spec.name}) exited:\n{self.log.read_text()[-3000:]}")
            try:
                status, _, answer = http_request(self.address, "POST", path, body, headers, timeout=5)
            except OSError:
                time.sleep(0.002)
                continue
            if status == 200:
                return time.perf_counter() - self.started
            raise SystemExit(f"{self.spec.name} answered {status}: {answer[:500]!r}")
        raise SystemExit(f"{self.spec.name} did not answer within {timeout}s; see {self.log}")

    def stop(self) -> None:
        stop(self.proc)


# ---------------------------------------------------------------------------------------------
# Requests


def http_request(address: str, method: str, path: str, body: bytes, headers: dict, timeout: float = 10):
    """One HTTP/1.1 request on a fresh connection; returns (status, head, body)."""
    conn = http.client.HTTPConnection(address, timeout=timeout)
    try:
        conn.request(method, path, body=body, headers=headers)
        resp = conn.getresponse()
        data = resp.read()
        head = "\n".join(f"{k}: {v}" for k, v in resp.getheaders())
        return resp.status, head, data
    finally:
        conn.close()


FIRST_TOKEN = re.compile(rb'"content":"[^"]')


def first_byte_times(address: str, path: str, body: bytes, headers: dict) -> tuple[float, float]:
    """Seconds from sending a streamed request to the first body byte and to the first token."""
    t0, first_byte, first_token = stream_until_first_token(address, path, body, headers)
    return first_byte - t0, first_token - t0


def stream_until_first_token(address: str, path: str, body: bytes, headers: dict) -> tuple[float, float, float]:
    """A streamed request on a new connection, read to its first token: when it was sent (once
    connected), when its first body byte came, and when its first token (perf_counter)."""
    conn = http.client.HTTPConnection(address, timeout=10)
    try:
        conn.connect()
        conn.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        t0 = time.perf_counter()
        conn.request("POST", path, body=body, headers=headers)
        resp = conn.getresponse()
        data, first_byte, first_token = b"", None, None
        while chunk := resp.read1(65536):
            now = time.perf_counter()
            data += chunk
            if first_byte is None:
                first_byte = now
            if FIRST_TOKEN.search(data):
                first_token = now
                break
    finally:
        conn.close()
    if resp.status != 200 or first_byte is None or first_token is None:
        raise SystemExit(f"no streamed content from {address} ({resp.status}): {data[:500]!r}")
    return t0, first_byte, first_token


# ---------------------------------------------------------------------------------------------
# Bodies and targets


def labels_schema() -> dict:
    """A `json_schema` of about 2 KB, of the kind a triager asks for: the simulator answers JSON
    sampled from it (about 2 KB too), which ours parses and validates before answering."""
    fields = {
        f"field_{i:02}": {"type": "string", "description": "what the triager found about this part of the issue"}
        for i in range(20)
    }
    fields["labels"] = {"type": "array", "items": {"type": "string", "enum": ["bug", "feature", "question"]}}
    fields["severity"] = {"type": "integer", "minimum": 1, "maximum": 5}
    return {
        "type": "json_schema",
        "json_schema": {
            "name": "triage",
            "strict": True,
            "schema": {"type": "object", "properties": fields, "required": sorted(fields), "additionalProperties": False},
        },
    }


def chat_body(size: int, stream: bool, model: str, json_schema: bool = False) -> bytes:
    """A chat request of exactly `size` bytes: a long system prompt (an issue thread, say) and a
    short last user message, so the simulated answer stays a few words whatever the size. A
    stream asks for its usage: ours asks AI Gateway for it whatever the client says (it prices
    the stream from it), and so every target — direct, floor, ours — is sent the same events,
    the usage event and its chunk delay included."""
    doc = {
        "model": model,
        "messages": [
            {"role": "system", "content": ""},
            {"role": "user", "content": "Label this issue: the build fails on main since yesterday"},
        ],
        "temperature": 0.2,
        "stream": stream,
    }
    if stream:
        doc["stream_options"] = {"include_usage": True}
    if json_schema:
        doc["response_format"] = labels_schema()
    empty = len(json.dumps(doc, separators=(",", ":")))
    words = "the build fails when the cache is cold and the runner has two cores "
    pad = size - empty
    if pad < 0:
        raise ValueError(f"{size} bytes is too small for a chat request")
    doc["messages"][0]["content"] = (words * (pad // len(words) + 1))[:pad]
    out = json.dumps(doc, separators=(",", ":")).encode()
    assert len(out) == size, (len(out), size)
    return out


@dataclass
class Target:
    name: str
    address: str
    path: str
    model: str
    pid: int | None = None  # the workerd serving it (None: the simulator itself)


def cpu_seconds(pid: int) -> float:
    """User + system CPU time a process has used, from /proc (clock ticks)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@dataclass
class Scenario:
    name: str
    stream: bool
    size: int
    # Asks for JSON by a ~2 KB schema (`labels_schema`): ours validates the ~2 KB answer.
    json_schema: bool = False


SCENARIOS = [
    Scenario("chat 2KB", False, 2 * 1024),
    Scenario("chat 32KB", False, 32 * 1024),
    Scenario("stream 2KB", True, 2 * 1024),
    Scenario("stream 32KB", True, 32 * 1024),
    Scenario("json 2KB", False, 4 * 1024, json_schema=True),
]

# Every target gets the same headers: each ignores what is not its own (the simulator ignores
# `authorization`; our Worker never forwards the caller's `cf-aig-authorization`).
HEADERS = {
    "content-type": "application/json",
    "authorization": f"Bearer {AGENT_TOKEN}",
    "cf-aig-authorization": f"Bearer {AIG_TOKEN}",
    "x-agent-name": "TriagingAgent",
    "x-github-repository": "octo-org/octo-repo",
}


# ---------------------------------------------------------------------------------------------
# Load


def wrk(target: Target, body_file: Path, connections: int, seconds: float, threads: int = 2) -> dict:
    env = dict(
        os.environ,
        BENCH_BODY_FILE=str(body_file),
        BENCH_HEADERS="\n".join(f"{k}: {v}" for k, v in HEADERS.items()),
    )
    cmd = [
        "wrk", f"-t{min(threads, connections)}", f"-c{connections}", f"-d{max(1, round(seconds))}s", "--timeout", "10s",
        "-s", str(BENCH / "wrk-post.lua"), f"http://{target.address}{target.path}",
    ]
    out = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=seconds + 60)
    line = next((l for l in out.stdout.splitlines() if l.startswith("BENCH_RESULT ")), None)
    if line is None:
        raise SystemExit(f"wrk printed no result for {target.name}:\n{out.stdout}\n{out.stderr}")
    r = json.loads(line[len("BENCH_RESULT ") :])
    errors = sum(r[k] for k in ("connect_errors", "read_errors", "write_errors", "status_errors", "timeouts"))
    return {
        "rps": r["requests"] / (r["duration_us"] / 1e6),
        "p50_ms": r["p50_us"] / 1000,
        "p90_ms": r["p90_us"] / 1000,
        "p99_ms": r["p99_us"] / 1000,
        "requests": r["requests"],
        "errors": errors,
    }


@dataclass
class Measured:
    load: dict = field(default_factory=dict)  # target -> best throughput run
    single: dict = field(default_factory=dict)  # target -> one-connection run


def run_scenario(sc: Scenario, targets: list[Target], sim: Sim, args, tmp: Path) -> Measured:
    m = Measured()
    files = {}
    for t in targets:
        f = tmp / f"body-{t.name}-{sc.size}-{int(sc.stream)}.json"
        f.write_bytes(chat_body(sc.size, sc.stream, t.model, sc.json_schema))
        files[t.name] = f
    # Interleaved rounds, best of each: the machine is shared, and a burst of someone else's work
    # should not land on one side of the comparison only.
    for _ in range(args.rounds):
        for t in targets:
            sim.reset()
            wrk(t, files[t.name], args.connections, 1)  # warm up: JIT, connection pools
            cpu_before = cpu_seconds(t.pid) if t.pid else 0.0
            r = wrk(t, files[t.name], args.connections, args.duration)
            # CPU time the Worker's process spent per request: what a busy machine's noise hides
            # least (throughput also depends on what else runs on the two cores).
            r["cpu_us_per_req"] = (cpu_seconds(t.pid) - cpu_before) / max(r["requests"], 1) * 1e6 if t.pid else None
            if t.name not in m.load or r["rps"] > m.load[t.name]["rps"]:
                m.load[t.name] = r
    for t in targets:
        sim.reset()
        m.single[t.name] = wrk(t, files[t.name], 1, args.single_duration, threads=1)
    sim.reset()
    return m


# ---------------------------------------------------------------------------------------------
# Report


def ratio(a: float, b: float) -> float:
    return a / b if b else float("nan")


def print_table(results: dict, prev: dict | None) -> None:
    print()
    print(f"agent-gateway bench — {results['when']}  ({results['machine']})")
    print(f"  simulator latency {results['params']['latency_ms']} ms, chunk delay "
          f"{results['params']['chunk_delay_ms']} ms; wrk -c{results['params']['connections']} "
          f"{results['params']['duration_s']}s x{results['params']['rounds']} (best), "
          f"single connection {results['params']['single_duration_s']}s")
    print()
    hdr = (f"{'scenario':<12} {'target':<7} {'req/s':>8} {'p50 ms':>7} {'p99 ms':>7} {'errors':>6} "
           f"{'CPU us/req':>10} {'1-conn p50':>10} {'added':>7} {'rps/floor':>9} {'p50-floor':>9} {'CPU/floor':>9}")
    print(hdr)
    print("-" * len(hdr))
    for sc in results["scenarios"]:
        for name in ("direct", "floor", "ours"):
            t = sc["targets"][name]
            extra = ""
            if name == "ours":
                extra = f"{sc['rps_ratio']:>9.2f} {sc['p50_over_floor_ms']:>+9.2f} {sc['cpu_ratio']:>9.2f}"
                if prev:
                    old = next((s for s in prev.get("scenarios", []) if s["name"] == sc["name"]), None)
                    if old:
                        extra += f"   (last run {old['rps_ratio']:.2f}, {old['p50_over_floor_ms']:+.2f})"
            added = "" if name == "direct" else f"{t['added_ms']:>+7.2f}"
            cpu = "" if t.get("cpu_us_per_req") is None else f"{t['cpu_us_per_req']:.0f}"
            print(f"{sc['name'] if name == 'direct' else '':<12} {name:<7} {t['rps']:>8.0f} {t['p50_ms']:>7.2f} "
                  f"{t['p99_ms']:>7.2f} {t['errors']:>6} {cpu:>10} {t['single_p50_ms']:>10.2f} {added:>7} {extra}")
    print()
    print("  added = one-connection p50 through the Worker minus calling the simulator directly;")
    print("  CPU us/req = the workerd process's CPU time over the load run / requests")
    print()
    fb = results["first_byte"]
    print("time to first streamed byte / first token (median of "
          f"{fb['samples']}, ms):")
    for name in ("direct", "floor", "ours"):
        print(f"  {name:<7} first byte {fb[name]['first_byte_ms']:>6.2f}   first token {fb[name]['first_token_ms']:>6.2f}")
    print()
    size = results["wasm"]
    line = f"build/index_bg.wasm: {size['bytes']} bytes, {size['gzip_bytes']} gzipped"
    if prev and "wasm" in prev:
        line += f" (last run {prev['wasm']['gzip_bytes']})"
    print(line)
    cs = results["cold_start"]
    print(f"cold start (median of {cs['samples']} fresh processes, ms): spawn -> listening, then the first request")
    for name in ("floor", "ours"):
        print(f"  {name:<7} listening {cs[f'{name}_listening_ms']:>6.1f}   first request {cs[f'{name}_first_request_ms']:>6.1f}")
    mem = results["memory"]
    for name in ("floor", "ours"):
        m = mem[name]
        print(f"memory {name:<5}: RSS {m['idle_rss_kb'] / 1024:.1f} MiB after the first answer, "
              f"{m['after_rss_kb'] / 1024:.1f} MiB after the load, peak {m['peak_rss_kb'] / 1024:.1f} MiB")
    print()
    worst = min(sc["rps_ratio"] for sc in results["scenarios"])
    worst_p50 = max(sc["p50_over_floor_ms"] for sc in results["scenarios"])
    ratio = cs["ours_first_request_ms"] / max(cs["floor_first_request_ms"], 0.001)
    print(f"targets: rps >= 0.9x floor (worst {worst:.2f}), p50 <= floor + 1 ms (worst {worst_p50:+.2f}), "
          f"first request <= 1.5x the floor's ({ratio:.1f}x)")


# ---------------------------------------------------------------------------------------------


def with_names(spec: WorkerSpec) -> WorkerSpec:
    """Ours with `build/index_bg.unstripped.wasm`: the shipped wasm has no name section, so a
    profile of it names no function; this is the same code with its names."""
    named = TREE / "build" / "index_bg.unstripped.wasm"
    if not named.exists():
        return spec
    return replace(spec, modules=[(m, k, named if m == "index_bg.wasm" else p) for m, k, p in spec.modules])


def profile(args, sim: Sim, spec: WorkerSpec, tmp: Path, running: list) -> None:
    sc = next((s for s in SCENARIOS if s.name == args.profile), None)
    if sc is None:
        raise SystemExit(f"no scenario {args.profile!r}; one of: {', '.join(s.name for s in SCENARIOS)}")
    if spec.name == "ours":
        spec = with_names(spec)
    inspector = f"127.0.0.1:{free_port()}"
    w = Workerd(spec, tmp, inspector=inspector)
    running.append(w)
    model = ALIAS if spec.name == "ours" else MODEL
    path = "/v1/chat/completions" if spec.name == "ours" else "/"
    w.wait_first_answer((path, chat_body(sc.size, sc.stream, model, sc.json_schema), HEADERS))
    target = Target(spec.name, w.address, path, model)
    body = tmp / "profile-body.json"
    body.write_bytes(chat_body(sc.size, sc.stream, model, sc.json_schema))
    wrk(target, body, args.connections, 2)  # warm up
    sim.reset()
    out = RESULTS / f"profile-{spec.name}-{sc.name.replace(' ', '-')}.cpuprofile"
    loaded: dict = {}
    load = threading.Thread(target=lambda: loaded.update(wrk(target, body, args.connections, args.duration + 2)))
    load.start()
    time.sleep(1)
    subprocess.run(["node", str(BENCH / "profile.mjs"), inspector, str(args.duration), str(out)], check=True)
    load.join()
    print(f"load: {loaded['rps']:.0f} req/s, p50 {loaded['p50_ms']:.2f} ms, errors {loaded['errors']}")
    print(f"written: {out.relative_to(ROOT)} (open in Chrome DevTools > Performance)")


def limiter_ceiling(args, ours_s: WorkerSpec, tmp: Path, running: list) -> None:
    """How many operations per second one provider's limiter object sustains: our Worker's
    `ProviderLimiter` in `workerd serve`, driven by `bench/limiter-driver.js` (a JS Worker in the
    same process, bound to the class) under wrk. The driver shares the process and the machine,
    so these are lower bounds of what one object does on Cloudflare."""
    driver = WorkerSpec(
        "driver",
        [("limiter-driver.js", "esModule", BENCH / "limiter-driver.js")],
        {},
        foreign_objects=[("LIMITER", "ours", "ProviderLimiter")],
    )
    w = Workerd(driver, tmp, also=(ours_s,))
    running.append(w)
    body = tmp / "limiter-body.json"
    body.write_bytes(b"{}")
    print(f"one limiter object, {args.connections} connections, {args.duration:g} s per operation, best of {args.rounds}:")
    print("| operation | per second | p50 ms | p99 ms | CPU µs per operation (process) |")
    print("|---|---|---|---|---|")
    for path, what in (("/pair", "reserve + settle (one request without a lease)"),
                       ("/leased", "admission report + 1/8 of a settle batch (one request under a lease)"),
                       ("/sync", "lease sync (one busy isolate's lease period)")):
        w.wait_first_answer((path, b"{}", {}))
        target = Target("driver", w.address, path, "", w.proc.pid)
        wrk(target, body, args.connections, 1)  # warm up
        best = None
        for _ in range(args.rounds):
            cpu_before = cpu_seconds(w.proc.pid)
            r = wrk(target, body, args.connections, args.duration)
            r["cpu_us"] = (cpu_seconds(w.proc.pid) - cpu_before) / max(r["requests"], 1) * 1e6
            if r["errors"]:
                raise SystemExit(f"{path}: {r['errors']} errors; see {w.log}")
            if best is None or r["rps"] > best["rps"]:
                best = r
        print(f"| {what} | {best['rps']:.0f} | {best['p50_ms']:.2f} | {best['p99_ms']:.2f} | {best['cpu_us']:.0f} |")
    # What a request waits for its reserve and settle as the object gets busier: the round trip
    # a lease takes off the request's path, by the load on the object.
    print()
    print("reserve + settle by callers at once (the object's load): pairs per second, p50 and p99 ms")
    print("| callers | pairs/s | p50 ms | p99 ms |")
    print("|---|---|---|---|")
    target = Target("driver", w.address, "/pair", "", w.proc.pid)
    for connections in (1, 2, 4, 8, 16, 32):
        best = None
        for _ in range(args.rounds):
            r = wrk(target, body, connections, args.duration, threads=min(2, connections))
            if best is None or r["rps"] > best["rps"]:
                best = r
        print(f"| {connections} | {best['rps']:.0f} | {best['p50_ms']:.2f} | {best['p99_ms']:.2f} |")


def observing_spec(sim: Sim) -> WorkerSpec:
    return WorkerSpec(
        "observing",
        [("observing-floor-worker.js", "esModule", BENCH / "observing-floor-worker.js")],
        {"UPSTREAM_URL": sim.chat_url, "CF_AIG_TOKEN": AIG_TOKEN},
    )


def start_floors_and_ours(sim: Sim, tmp: Path, running: list, extra: dict[str, str],
                          inspector: str | None = None) -> list[Target]:
    """The floor, the observing floor and ours, each in its own workerd (ours with `inspector`),
    each answered once: their targets."""
    targets = []
    for spec, path, model in ((floor_spec(sim), "/", MODEL), (observing_spec(sim), "/", MODEL),
                              (ours_spec(sim, extra), "/v1/chat/completions", ALIAS)):
        w = Workerd(spec, tmp, inspector=inspector if spec.name == "ours" else None)
        running.append(w)
        w.wait_first_answer((path, chat_body(2048, False, model), HEADERS))
        targets.append(Target(spec.name, w.address, path, model, w.proc.pid))
    return targets


def observing_floor(args, sim: Sim, tmp: Path, running: list, extra: dict[str, str]) -> None:
    """The floor, the observing floor (bench/observing-floor-worker.js: reads every answer, as
    a gateway must) and ours, under the same load in one run: how much of ours' cost over the
    floor any gateway that sees its answers pays in this runtime, and how much is our code's."""
    targets = start_floors_and_ours(sim, tmp, running, extra)
    wanted = [x.strip() for x in (args.scenarios or "chat 2KB,stream 2KB").split(",") if x.strip()]
    print(f"the floor, the observing floor and ours ({args.connections} connections, {args.duration:g} s, "
          f"best of {args.rounds} interleaved rounds):")
    print("| scenario | floor req/s | observing req/s | ours req/s | CPU µs/req: floor / observing / ours "
          "| ours / observing (req/s) |")
    print("|---|---|---|---|---|---|")
    for sc in (s for s in SCENARIOS if s.name in wanted):
        m = run_scenario(sc, targets, sim, args, tmp)
        r = {t.name: m.load[t.name] for t in targets}
        print(f"| {sc.name} | {r['floor']['rps']:.0f} | {r['observing']['rps']:.0f} | {r['ours']['rps']:.0f} "
              f"| {r['floor']['cpu_us_per_req']:.0f} / {r['observing']['cpu_us_per_req']:.0f} / "
              f"{r['ours']['cpu_us_per_req']:.0f} | {ratio(r['ours']['rps'], r['observing']['rps']):.2f} |")


def memory_regions(pid: int) -> dict[str, int]:
    """A process's resident memory by kind of mapping, in KiB, from /proc/PID/smaps: the workerd
    binary's pages; the native heap (workerd's allocator reserves address space 1 GiB at a time:
    an anonymous read-write mapping right after a large reserved one of under 1 GiB); V8's heap
    (anonymous read-write mappings inside V8's 4 GiB pointer cage); compiled code (executable
    anonymous mappings, JIT and wasm); and the rest."""
    regions = {"workerd binary": 0, "native heap": 0, "V8 heap": 0, "compiled code": 0, "other": 0}
    maps: list[dict] = []
    for line in Path(f"/proc/{pid}/smaps").read_text().splitlines():
        m = re.match(r"^([0-9a-f]+)-([0-9a-f]+) (\S+) \S+ \S+ \S+\s*(.*)$", line)
        if m:
            maps.append({"kib": (int(m[2], 16) - int(m[1], 16)) // 1024, "perm": m[3], "name": m[4], "rss": 0})
        elif line.startswith("Rss:") and maps:
            maps[-1]["rss"] = int(line.split()[1])

    def reserved(j: int) -> int:
        """KiB of the anonymous reservation (no access) at index j, 0 if that is not one."""
        return maps[j]["kib"] if 0 <= j < len(maps) and maps[j]["perm"] == "---p" and not maps[j]["name"] else 0

    for i, m in enumerate(maps):
        if m["name"].endswith("/workerd"):
            kind = "workerd binary"
        elif m["name"]:
            kind = "other"
        elif "x" in m["perm"]:
            kind = "compiled code"
        elif 256 * 1024 <= reserved(i - 1) + m["kib"] <= 1024 * 1024:
            kind = "native heap"
        elif max(reserved(i - 1), reserved(i + 1)) > 1024 * 1024:
            kind = "V8 heap"
        else:
            kind = "other"
        regions[kind] += m["rss"]
    return regions


def isolates_memory(inspector: str) -> list[dict]:
    """Each isolate's JS heap and WebAssembly memories (bench/wasm-memory.mjs)."""
    out = subprocess.run(["node", str(BENCH / "wasm-memory.mjs"), inspector], capture_output=True, text=True,
                         timeout=60)
    return [json.loads(line) for line in out.stdout.splitlines() if line.startswith("{")]


def memory_breakdown(args, sim: Sim, tmp: Path, running: list, extra: dict[str, str]) -> None:
    """Where each Worker process's resident memory is (the floor, the observing floor and ours),
    after its first answer, right after a load (chat and streams, 32 KB, 32 connections), once it
    has been idle for 10 s, and after the full garbage collection that reading ours' isolates
    (JS heap, wasm linear memory; inspector) forces: by kind of mapping."""
    inspector = f"127.0.0.1:{free_port()}"
    targets = start_floors_and_ours(sim, tmp, running, extra, inspector)
    rows: list[tuple[str, str, dict[str, int], list[dict]]] = []

    def note(when: str, isolates: bool = False) -> None:
        # Reading the isolates forces a full garbage collection in ours (Runtime.queryObjects
        # walks the heap), so they are read only where a row says so, after its regions.
        for t in targets:
            regions = memory_regions(t.pid)
            rows.append((when, t.name, regions, isolates_memory(inspector) if isolates and t.name == "ours" else []))

    note("after the first answer")
    for t in targets:
        for stream in (False, True):
            body = tmp / f"memory-{t.name}-{int(stream)}.json"
            body.write_bytes(chat_body(32768, stream, t.model))
            wrk(t, body, args.connections, args.duration)
    note("right after the load")
    time.sleep(10)
    note("idle 10 s after the load (then ours' isolates read: a full GC)", isolates=True)
    time.sleep(1)
    note("just after that GC")
    kinds = list(rows[0][2])
    print(f"resident memory by kind, MiB (chat and stream 32 KB, {args.connections} connections, "
          f"{args.duration:g} s each):")
    print("| when | target | RSS | " + " | ".join(kinds) + " | isolates: JS heap (total) / wasm memory |")
    print("|---|---|---|" + "---|" * len(kinds) + "---|")
    for when, name, regions, isolates in rows:
        iso = "; ".join(
            f"{i['worker'].split()[-1]} {i['js_heap_total'] / 2**20:.1f} / {sum(i['wasm_memories']) / 2**20:.1f}"
            for i in isolates
        )
        print(f"| {when} | {name} | {sum(regions.values()) / 1024:.1f} | "
              + " | ".join(f"{regions[k] / 1024:.1f}" for k in kinds) + f" | {iso} |")


class Tap:
    """A TCP relay between the Workers and the simulator that notes, on one clock with the
    client, when a request's first bytes leave a Worker and when the first content event leaves
    the simulator. `--split` uses it to say where a Worker's time to first token goes: before
    its upstream call (reading, planning, the limiter) or after the first token left the
    upstream (the relay's reads, the pump, the commit point). The relay's own latency is in both
    Workers' figures alike and so cancels in the difference."""

    def __init__(self, upstream: str):
        host, port = upstream.rsplit(":", 1)
        self.upstream = (host, int(port))
        self.server = socket.socket()
        self.server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.server.bind(("127.0.0.1", 0))
        self.server.listen(64)
        self.address = f"127.0.0.1:{self.server.getsockname()[1]}"
        self.lock = threading.Lock()
        self.reset()
        threading.Thread(target=self._accept, daemon=True).start()

    def reset(self) -> None:
        with self.lock:
            self.request_at = None
            self.token_at = None
            # The connection the request went out on: only its answer's first token counts (an
            # earlier stream, drained or cancelled, may still be sending on another).
            self.current = None

    def _accept(self) -> None:
        while True:
            try:
                down, _ = self.server.accept()
            except OSError:
                return
            up = socket.create_connection(self.upstream)
            for s in (down, up):
                s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            threading.Thread(target=self._pipe, args=(down, up, True), daemon=True).start()
            threading.Thread(target=self._pipe, args=(up, down, False), daemon=True).start()

    def _pipe(self, src: socket.socket, dst: socket.socket, to_upstream: bool) -> None:
        # The pair's upstream socket names the connection in both directions.
        conn = dst if to_upstream else src
        try:
            while data := src.recv(65536):
                now = time.perf_counter()
                with self.lock:
                    if to_upstream and self.request_at is None:
                        self.request_at, self.current, self.seen = now, conn, b""
                    elif not to_upstream and self.current is conn and self.token_at is None:
                        self.seen = (self.seen + data)[-65536:]
                        if FIRST_TOKEN.search(self.seen):
                            self.token_at = now
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for s in (src, dst):
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

    def close(self) -> None:
        self.server.close()


def print_phase_profile(path: Path, windows: list[tuple[float, float, float, float]]) -> None:
    """What ours' isolate ran in each phase of the sampled requests (from its CPU profile): per
    request, the busy time in "in" (sent → upstream request) and "out" (first token sent by the
    upstream → read by the client), and the functions that took it."""
    profile = json.loads(path.read_text())
    nodes = {n["id"]: n for n in profile["nodes"]}
    at = profile["startTime"] / 1e6
    samples = []
    for node, delta in zip(profile["samples"], profile["timeDeltas"]):
        at += delta / 1e6
        samples.append((at, nodes[node]["callFrame"]))
    # Only the requests the profile covers count (it may stop before the last of them).
    covered = [w for w in windows if samples and samples[0][0] <= w[0] and w[3] <= samples[-1][0]]
    n = max(len(covered), 1)
    # A sample stands for the interval since the one before it; one ending up to a sampling
    # interval (100 µs, bench/profile.mjs) or two past a phase's end still belongs to it.
    for phase, (lo_i, hi_i) in (("in", (0, 1)), ("out", (2, 3))):
        busy, by_fn = 0.0, {}
        prev = samples[0][0] if samples else 0.0
        for when, frame in samples:
            width, start = when - prev, prev
            prev = when
            name = frame["functionName"] or "(anonymous)"
            if name == "(idle)":
                continue
            for w in covered:
                if w[lo_i] <= start and when <= w[hi_i] + 0.0002:
                    busy += width
                    key = f"{name} {frame['url'].split('/')[-1]}"[:100]
                    by_fn[key] = by_fn.get(key, 0.0) + width
                    break
        print(f"ours, phase {phase!r}: {busy / n * 1000:.3f} ms busy per request in the isolate "
              f"(profiled, {len(covered)} requests); most:")
        for key, secs in sorted(by_fn.items(), key=lambda kv: -kv[1])[:12]:
            print(f"  {secs / n * 1e6:7.1f} us  {key}")


def first_token_split(args, sim: Sim, tmp: Path, running: list, extra: dict[str, str]) -> None:
    """Where each Worker's time to the first streamed token goes, one request at a time: from
    the client's send to the upstream request leaving the Worker ("in"), and from the first
    content event leaving the simulator to the client reading it ("out"). Medians of
    --samples requests per target, alternated."""
    tap = Tap(sim.address)
    # The Workers' view of the simulator: its address is the tap's.
    through = Sim.__new__(Sim)
    through.address, through.chat_url = tap.address, sim.chat_url.replace(sim.address, tap.address)
    floor = Workerd(floor_spec(through), tmp)
    running.append(floor)
    inspector = f"127.0.0.1:{free_port()}"
    ours = Workerd(with_names(ours_spec(through, extra)), tmp, inspector=inspector)
    running.append(ours)
    targets = [Target("floor", floor.address, "/", MODEL), Target("ours", ours.address, "/v1/chat/completions", ALIAS)]
    times: dict[str, list[tuple[float, float, float]]] = {t.name: [] for t in targets}
    windows: list[tuple[float, float, float, float]] = []
    for t in targets:
        body = chat_body(2048, True, t.model)
        (floor if t.name == "floor" else ours).wait_first_answer((t.path, body, HEADERS))
        for _ in range(20):  # warm up: JIT, connection pools, leases
            first_byte_times(t.address, t.path, body, HEADERS)
    # A CPU profile of ours while the samples run: V8's profile clock and perf_counter are both
    # CLOCK_MONOTONIC on Linux, so each request's phases can be read off it.
    out = RESULTS / "profile-first-token.cpuprofile"
    seconds = args.samples * 2 * 0.11 + 3
    profiler = subprocess.Popen(["node", str(BENCH / "profile.mjs"), inspector, str(seconds), str(out)],
                                stdout=subprocess.DEVNULL)
    time.sleep(1)
    for _ in range(args.samples):
        for t in targets:
            # Each sample reads to its first token only: let the stream before it end first.
            time.sleep(0.08)
            tap.reset()
            t0, _, token = stream_until_first_token(t.address, t.path, chat_body(2048, True, t.model), HEADERS)
            with tap.lock:
                request_at, token_at = tap.request_at, tap.token_at
            if request_at is None or token_at is None:
                raise SystemExit(f"the tap saw no request or no token for {t.name}")
            times[t.name].append((request_at - t0, token_at - request_at, token - token_at))
            if t.name == "ours":
                windows.append((t0, request_at, token_at, token))
    tap.close()
    profiler.wait()
    print_phase_profile(out, windows)
    print(f"time to first token, split at the upstream (median of {args.samples} requests, ms):")
    print("| target | in: client send → upstream request | upstream: request → first token sent | "
          "out: first token sent → client | first token |")
    print("|---|---|---|---|---|")
    for name, rows in times.items():
        ins, ups, outs = (median_ms([r[i] for r in rows]) for i in range(3))
        total = median_ms([sum(r) for r in rows])
        print(f"| {name} | {ins:.2f} | {ups:.2f} | {outs:.2f} | {total:.2f} |")


def median_ms(values: list[float]) -> float:
    return statistics.median(values) * 1000


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--duration", type=float, default=float(os.environ.get("BENCH_DURATION", 6)),
                   help="seconds of load per target and round (default 6)")
    p.add_argument("--single-duration", type=float, default=3, help="seconds of one-connection load (default 3)")
    p.add_argument("--connections", type=int, default=32, help="wrk connections (default 32)")
    p.add_argument("--rounds", type=int, default=2, help="interleaved rounds, best kept (default 2)")
    p.add_argument("--latency-ms", type=int, default=5, help="simulator fixed latency (default 5)")
    p.add_argument("--chunk-delay-ms", type=int, default=1, help="simulator delay between stream events")
    p.add_argument("--scenarios", default="", help="comma-separated subset, e.g. 'chat 2KB'")
    p.add_argument("--samples", type=int, default=30, help="first-byte samples per target")
    p.add_argument("--profile", metavar="SCENARIO", help="instead of the bench: CPU-profile one Worker under "
                   "load in SCENARIO (e.g. 'chat 2KB') through the inspector, and print where the time goes")
    p.add_argument("--limiter", action="store_true", help="instead of the bench: how many reserve+settle "
                   "pairs, leased requests and lease syncs per second one provider's limiter object sustains, and "
                   "a reserve+settle's latency by the object's load")
    p.add_argument("--observing-floor", action="store_true", help="instead of the bench: the floor, a JS "
                   "Worker that reads every answer as a gateway must (bench/observing-floor-worker.js) and ours")
    p.add_argument("--memory", action="store_true", help="instead of the bench: where each process's "
                   "resident memory is (binary, native heap, V8 heap, code; ours' isolates' JS heaps and wasm memory)")
    p.add_argument("--split", action="store_true", help="instead of the bench: where the time to the first "
                   "streamed token goes, before the upstream call and after the first token left it")
    p.add_argument("--no-save", action="store_true", help="print only; keep bench/results/latest.json as it is")
    p.add_argument("--tree", default=str(ROOT), help="measure the Worker built in another checkout")
    p.add_argument("--profile-target", choices=["ours", "floor"], default="ours")
    p.add_argument("--var", action="append", default=[], metavar="NAME=VALUE",
                   help="a var of our Worker for this run, e.g. LIMITER_LEASES=false (repeatable)")
    args = p.parse_args()

    global TREE
    TREE = Path(args.tree).resolve()
    wasm_path = TREE / "build" / "index_bg.wasm"
    for path in (SIM_BIN, WORKERD, wasm_path):
        if not path.exists():
            raise SystemExit(f"{path} is missing: run `make bench` (it builds everything first)")
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is missing: `apt-get install -y wrk` (make bench does it)")

    RESULTS.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix="agw-bench-"))
    sim = Sim(args.latency_ms, args.chunk_delay_ms, tmp / "sim.log")
    running: list[Workerd] = []
    try:
        extra = dict(v.split("=", 1) for v in args.var)
        ours_s, floor_s = ours_spec(sim, extra), floor_spec(sim)
        probe_ours = ("/v1/chat/completions", chat_body(2048, False, ALIAS), HEADERS)
        probe_floor = ("/", chat_body(2048, False, MODEL), HEADERS)

        if args.limiter:
            limiter_ceiling(args, ours_s, tmp, running)
            return
        if args.observing_floor:
            observing_floor(args, sim, tmp, running, extra)
            return
        if args.memory:
            memory_breakdown(args, sim, tmp, running, extra)
            return
        if args.split:
            first_token_split(args, sim, tmp, running, extra)
            return
        if args.profile:
            profile(args, sim, ours_s if args.profile_target == "ours" else floor_s, tmp, running)
            return

        # Cold start: spawn to listening, then the first request, a few times each, alternating.
        cold = {"floor": [], "ours": []}
        for _ in range(5):
            for spec, probe in ((floor_s, probe_floor), (ours_s, probe_ours)):
                w = Workerd(spec, tmp)
                try:
                    cold[spec.name].append(w.cold_start(probe))
                finally:
                    w.stop()

        floor = Workerd(floor_s, tmp)
        running.append(floor)
        floor.wait_first_answer(probe_floor)
        ours = Workerd(ours_s, tmp)
        running.append(ours)
        ours.wait_first_answer(probe_ours)
        idle = {"floor": rss_kb(floor.proc.pid)[0], "ours": rss_kb(ours.proc.pid)[0]}

        sim_path = sim.chat_url.split(sim.address, 1)[1]
        targets = [
            Target("direct", sim.address, sim_path, MODEL),
            Target("floor", floor.address, "/", MODEL, floor.proc.pid),
            Target("ours", ours.address, "/v1/chat/completions", ALIAS, ours.proc.pid),
        ]

        # Sanity: each target answers this scenario correctly before it is loaded.
        for t in targets:
            status, head, body = http_request(t.address, "POST", t.path, chat_body(2048, False, t.model), HEADERS)
            if status != 200 or b"Simulated answer" not in body:
                raise SystemExit(f"{t.name} answered {status}: {body[:300]!r}")
            if t.name == "ours" and "x-gateway-provider: google-ai-studio" not in head.lower():
                raise SystemExit(f"ours answered without its decision headers:\n{head}")
            # And a stream ends with [DONE], not an error event (wrk sees only the status).
            status, _, body = http_request(t.address, "POST", t.path, chat_body(2048, True, t.model), HEADERS)
            if status != 200 or not body.rstrip().endswith(b"data: [DONE]") or b'"error"' in body:
                raise SystemExit(f"{t.name} streamed {status}: {body[-300:]!r}")

        wanted = [s.strip() for s in args.scenarios.split(",") if s.strip()]
        scenarios = [s for s in SCENARIOS if not wanted or s.name in wanted]
        out_scenarios = []
        for sc in scenarios:
            print(f"  {sc.name} ...", file=sys.stderr, flush=True)
            m = run_scenario(sc, targets, sim, args, tmp)
            direct_single = m.single["direct"]["p50_ms"]
            entry = {"name": sc.name, "stream": sc.stream, "body_bytes": sc.size, "targets": {}}
            for t in targets:
                r = dict(m.load[t.name])
                r["single_p50_ms"] = m.single[t.name]["p50_ms"]
                r["single_p99_ms"] = m.single[t.name]["p99_ms"]
                r["added_ms"] = m.single[t.name]["p50_ms"] - direct_single
                entry["targets"][t.name] = r
            fl, us = entry["targets"]["floor"], entry["targets"]["ours"]
            entry["rps_ratio"] = ratio(us["rps"], fl["rps"])
            entry["cpu_ratio"] = ratio(us["cpu_us_per_req"], fl["cpu_us_per_req"])
            entry["p50_over_floor_ms"] = us["p50_ms"] - fl["p50_ms"]
            entry["single_p50_over_floor_ms"] = us["single_p50_ms"] - fl["single_p50_ms"]
            out_scenarios.append(entry)

        # Time to first streamed byte, one request at a time, alternating targets.
        fb = {t.name: ([], []) for t in targets}
        bodies = {t.name: chat_body(2048, True, t.model) for t in targets}
        for _ in range(args.samples):
            for t in targets:
                b, tok = first_byte_times(t.address, t.path, bodies[t.name], HEADERS)
                fb[t.name][0].append(b)
                fb[t.name][1].append(tok)
        first_byte = {"samples": args.samples}
        for name, (b, tok) in fb.items():
            first_byte[name] = {"first_byte_ms": median_ms(b), "first_token_ms": median_ms(tok)}

        memory = {}
        for name, w in (("floor", floor), ("ours", ours)):
            now, peak = rss_kb(w.proc.pid)
            memory[name] = {"idle_rss_kb": idle[name], "after_rss_kb": now, "peak_rss_kb": peak}

        wasm = wasm_path.read_bytes()
        results = {
            "when": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "machine": f"{os.cpu_count()} cores, {os.uname().machine}",
            "params": {
                "latency_ms": args.latency_ms,
                "chunk_delay_ms": args.chunk_delay_ms,
                "connections": args.connections,
                "duration_s": args.duration,
                "single_duration_s": args.single_duration,
                "rounds": args.rounds,
            },
            "scenarios": out_scenarios,
            "first_byte": first_byte,
            "wasm": {"bytes": len(wasm), "gzip_bytes": len(gzip.compress(wasm, 9))},
            "cold_start": {
                "samples": len(cold["ours"]),
                **{
                    f"{name}_{part}_ms": median_ms([sample[i] for sample in cold[name]])
                    for name in ("floor", "ours")
                    for i, part in enumerate(("listening", "first_request"))
                },
            },
            "memory": memory,
        }
    finally:
        for w in running:
            w.stop()
        stop(sim.proc)
        shutil.rmtree(tmp, ignore_errors=True)

    latest, previous = RESULTS / "latest.json", RESULTS / "previous.json"
    prev = json.loads(latest.read_text()) if latest.exists() else None
    print_table(results, prev)
    if args.no_save:
        return
    if prev:
        latest.replace(previous)
    latest.write_text(json.dumps(results, indent=2) + "\n")
    print(f"\nwritten: {latest.relative_to(ROOT)}" + (f" (previous run: {previous.relative_to(ROOT)})" if prev else ""))


if __name__ == "__main__":
    main()
