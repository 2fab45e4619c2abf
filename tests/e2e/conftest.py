"""End-to-end harness: the AI Gateway simulator and the built Worker in `wrangler dev`, over HTTP.

Every test talks to real processes: `target/debug/aig-sim` stands in for AI Gateway, and the
Worker (build/index.js + index_bg.wasm, built by `make build`) runs in wrangler's local workerd.
Tokens are random per session, and everything the Worker answers or logs is kept for the secret
scan that ends the session (`secret_scan`): a secret in any answer or log line fails the run.

Every Worker of the session starts at once, at the session's start (`workers`): the suite's own
configurations below, and those a test module declares with `declare_worker`. A `wrangler dev`
takes seconds to start; a dozen starting together take little more than a few one after another.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Callable

import httpx
import pytest

from helpers import CHAT, SEEN, RecordingTransport, WebhookReceiver

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "tests" / "artifacts"
SIM_BIN = ROOT / "target" / "debug" / "aig-sim"
WRANGLER = ROOT / "node_modules" / ".bin" / "wrangler"


def write_e2e_wrangler_toml(
    directory: Path, source: str = "wrangler.toml", main: str = "build/index.js", without_bindings: tuple[str, ...] = ()
) -> Path:
    """The tests run the Worker `make build` built, as it is: wrangler.toml without its [build]
    step (wrangler neither rebuilds at start nor restarts when a source file changes mid-run),
    `main` made absolute, written into a directory of the Worker's own, so that each `wrangler
    dev` keeps its own `.wrangler/tmp` (instances sharing one clobber each other's bundles).
    `without_bindings`: binding names whose table (`[[durable_objects.bindings]]`,
    `[[d1_databases]]`) is left out, as a deployment that lost them would be."""
    # The file as blocks, each a table header and the lines up to the next one.
    blocks: list[list[str]] = [[]]
    for line in (ROOT / source).read_text().splitlines():
        if line.strip().startswith("["):
            blocks.append([])
        blocks[-1].append(line)

    def dropped(block: list[str]) -> bool:
        header = block[0].strip() if block else ""
        if header == "[build]":
            return True
        names = {m.group(1) for line in block if (m := re.match(r'^\s*(?:name|binding)\s*=\s*"([^"]+)"', line))}
        return header in ("[[durable_objects.bindings]]", "[[d1_databases]]") and bool(names & set(without_bindings))

    kept = []
    for block in blocks:
        if dropped(block):
            continue
        kept += [f'main = "{ROOT / main}"' if line.strip().startswith("main =") else line for line in block]
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / "wrangler.toml"
    path.write_text("\n".join(kept) + "\n")
    return path


_LEDGER_TEMPLATE: Path | None = None


def migrated_state() -> Path:
    """A `--persist-to` directory whose local D1 ledger has every migration of `migrations/`
    applied, made once per session by `wrangler d1 migrations apply --local` (as `make dev` does);
    each Worker starts from a copy of it."""
    global _LEDGER_TEMPLATE
    if _LEDGER_TEMPLATE is None:
        home = Path(tempfile.mkdtemp(prefix="agw-ledger-"))
        shutil.copytree(ROOT / "migrations", home / "migrations")
        config = write_e2e_wrangler_toml(home)
        env = dict(os.environ, WRANGLER_SEND_METRICS="false", CI="true", NO_COLOR="1")
        subprocess.run(
            [str(WRANGLER), "d1", "migrations", "apply", "LEDGER", "--local",
             "--config", str(config), "--persist-to", str(home / "state")],
            cwd=home, env=env, stdin=subprocess.DEVNULL, capture_output=True, check=True, timeout=120,
        )
        _LEDGER_TEMPLATE = home / "state"
    return _LEDGER_TEMPLATE


ACCOUNT_ID = "e2e-account"
GATEWAY_ID = "e2e-gateway"
AGENT_TOKEN = "agt-" + secrets.token_hex(16)
AIG_TOKEN = "aig-" + secrets.token_hex(16)
API_TOKEN = "api-" + secrets.token_hex(16)
ADMIN_TOKEN = "adm-" + secrets.token_hex(16)
# A provider key a caller might send: it must never reach AI Gateway (nor come back).
CALLER_PROVIDER_KEY = "sk-caller-" + secrets.token_hex(16)
SECRETS = [AGENT_TOKEN, AIG_TOKEN, API_TOKEN, ADMIN_TOKEN, CALLER_PROVIDER_KEY]

BUDGET_USD = "0.001"

# AI Gateway's answer when it refuses the Worker's CF_AIG_TOKEN (as the simulator gives it to a
# wrong token), as a fault: any Worker's calls meet it, not one configured with a wrong token.
AIG_REFUSES_THE_TOKEN = {"kind": "status", "status": 401, "body": {
    "success": False, "result": [], "messages": [], "error": [{"code": 2009, "message": "Unauthorized"}],
    "name": "AiGatewayError", "httpCode": 401, "internalCode": 2009, "message": "Unauthorized",
}}


def sha256(token: str) -> str:
    """What `printf %s "$TOKEN" | sha256sum` prints (an `AGENT_TOKENS` key)."""
    import hashlib

    return hashlib.sha256(token.encode()).hexdigest()


def dotenv_json(value: dict) -> str:
    # Single quotes keep the JSON's quotes and braces literal in the env file.
    return "'" + json.dumps(value, separators=(",", ":")) + "'"


# The scoped tokens (AGENT_TOKENS) of the `tokens` Worker: ReviewAgent in `octo-org/*` and
# `acme/app`, TriagingAgent bound to its agent only. Secrets like the others, and so are their
# stored hashes (and AGENT_TOKEN's plain hash): none may ever come back in an answer or a log line.
REVIEW = "agt-scoped-review-" + secrets.token_hex(16)
TRIAGE = "agt-scoped-triage-" + secrets.token_hex(16)
SCOPED_TOKENS = {
    sha256(REVIEW): {"agent": "ReviewAgent", "repositories": ["octo-org/*", "acme/app"]},
    sha256(TRIAGE): {"agent": "TriagingAgent"},
}
SECRETS += [REVIEW, TRIAGE, sha256(REVIEW), sha256(TRIAGE), sha256(AGENT_TOKEN)]
# Budgets of the `tokens` Worker: generous, but for `octo-org/budgeted`, whose budget fits no
# request at all (so any spelling of it is refused), and the repository test_scoped_budgets.py
# runs out of (and a quiet one beside it).
TOKENS_SCOPES = {
    "repositories": {"default": {"daily_budget_usd": 50}, "octo-org/budgeted": {"daily_budget_usd": "0.0001"},
                     "octo-org/configured": {"daily_budget_usd": 50},
                     "octo-org/runaway": {"daily_budget_usd": "0.0008"}, "octo-org/quiet": {"daily_budget_usd": "0.0008"}},
    "owners": {"octo-org": {"daily_budget_usd": 500}, "acme": {"daily_budget_usd": 500}},
    "agents": {"default": {"daily_budget_usd": 100}},
}

# The suite's own routes, beside the shipped ones in every Worker's configuration, each used by
# one test only:
SUITE_ROUTES = {
    # A model the simulator retires on demand first (test_provider_answers.py), so that its mark
    # never touches another test's targets.
    "retiring": {"targets": ["google-ai-studio/gemini-3-flash-preview", "openai/gpt-4o-mini"]},
    # Rules on the request (size, tools + agent) and an 80/20 split (test_resilience.py).
    "ruled": {
        "targets": ["google-ai-studio/gemini-3.5-flash-lite", "openai/gpt-4o"],
        "rules": [
            {"when": {"min_input_tokens": 2000}, "targets": ["anthropic/claude-sonnet-4-5"]},
            {"when": {"has_tools": True, "agent": ["PRReviewAgent"]}, "targets": ["openai/gpt-4o"]},
        ],
    },
    "split": {
        "split": [
            {"weight": 80, "targets": ["google-ai-studio/gemini-3.5-flash-lite", "openai/gpt-4o-mini"]},
            {"weight": 20, "targets": ["openai/gpt-4o-mini", "google-ai-studio/gemini-3.5-flash-lite"]},
        ]
    },
    # Behind the `rest` Worker's circuit breaker first (test_circuit_breaker.py).
    "guarded": {"targets": ["anthropic/claude-haiku-4-5", "openai/gpt-4o-mini"]},
}

# Every simulator and Worker this session started: the secret scan stops them all and reads
# every line they logged.
STARTED: list[Sim | Worker] = []


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Sim:
    """The AI Gateway simulator, with its control API (`/__sim/...`)."""

    def __init__(self, gateway_token: str = AIG_TOKEN, name: str = "sim"):
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        self.log_path = ARTIFACTS / f"{name}.log"
        self.proc = subprocess.Popen(
            [
                str(SIM_BIN),
                "--listen", "127.0.0.1:0",
                "--account-id", ACCOUNT_ID,
                "--gateway-id", GATEWAY_ID,
                "--gateway-token", gateway_token,
                "--api-token", API_TOKEN,
            ],
            stdout=subprocess.PIPE,
            stderr=open(self.log_path, "wb"),
        )
        line = self.proc.stdout.readline().decode()
        if not line:
            raise RuntimeError(f"aig-sim did not start; see {self.log_path}")
        self.address = json.loads(line)["listening"]
        self.url = f"http://{self.address}"
        self.http = httpx.Client(base_url=self.url, timeout=10)
        STARTED.append(self)

    def fault(self, provider: str, fault: dict, times: int = 1) -> None:
        r = self.http.post("/__sim/faults", json={"provider": provider, "fault": fault, "times": times})
        r.raise_for_status()

    def requests(self) -> list[dict]:
        return self.http.get("/__sim/requests").json()

    def logs(self) -> list[dict]:
        """Every log row of the simulated gateway, read through its Logs API (oldest first)."""
        from decimal import Decimal

        rows, page = [], 1
        while True:
            r = self.http.get(
                f"/client/v4/accounts/{ACCOUNT_ID}/ai-gateway/gateways/{GATEWAY_ID}/logs",
                params={"page": page, "per_page": 50, "order_by": "created_at", "order_by_direction": "asc"},
                headers={"authorization": f"Bearer {API_TOKEN}"},
            )
            batch = json.loads(r.text, parse_float=Decimal)["result"]
            rows += batch
            if len(batch) < 50:
                return rows
            page += 1

    def calls(self) -> dict:
        return self.http.get("/__sim/calls").json()

    def reset(self) -> None:
        self.http.post("/__sim/reset").raise_for_status()

    def stop(self) -> None:
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(5)
        except subprocess.TimeoutExpired:
            self.proc.kill()


class Worker:
    """The built Worker in `wrangler dev`, configured through the .dev.vars beside its config.
    `migrated=False` starts it on a local D1 without the ledger's table (the migrations never
    applied); `without_bindings` drops those bindings from its wrangler.toml."""

    def __init__(
        self,
        name: str,
        values: dict[str, str],
        ledger_rows: list[dict] | None = None,
        migrated: bool = True,
        without_bindings: tuple[str, ...] = (),
    ):
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        self.name = name
        self.log_path = ARTIFACTS / f"worker-{name}.log"
        self.log_path.write_bytes(b"")  # this session's log only (a restart appends to it)
        self.home = Path(tempfile.mkdtemp(prefix=f"agw-{name}-"))
        self.config = write_e2e_wrangler_toml(self.home, without_bindings=without_bindings)
        (self.home / ".dev.vars").write_text("".join(f"{k}={v}\n" for k, v in values.items()))
        if migrated:
            shutil.copytree(migrated_state(), self.home / "state")
        if ledger_rows:
            seed_ledger(self.ledger_file(), ledger_rows)
        self.starts = 0
        STARTED.append(self)
        self.start()

    def configs(self) -> list[Path]:
        """The configs of this `wrangler dev`, the one served on the port first."""
        return [self.config]

    def dev_flags(self) -> list[str]:
        # `/__scheduled?cron=…` runs the cron handler (the analytics rollups).
        return ["--test-scheduled"]

    def start(self) -> None:
        """Starts wrangler dev on fresh ports. A port picked here can be taken by another process
        (a dozen workerd start at once, each on ports of its own) before wrangler binds it: then
        `wait_ready` starts it again."""
        self.starts += 1
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        env = dict(
            os.environ,
            WRANGLER_SEND_METRICS="false",
            CI="true",
            NO_COLOR="1",
            # A registry of its own: a binding (a Service Binding to the gateway)
            # must resolve to the Worker in this process, never to one of the same name in
            # another `wrangler dev` running at once.
            WRANGLER_REGISTRY_PATH=str(self.home / "registry"),
        )
        self.proc = subprocess.Popen(
            [
                str(WRANGLER), "dev",
                *[arg for config in self.configs() for arg in ("-c", str(config))],
                "--ip", "127.0.0.1",
                "--port", str(self.port),
                "--inspector-port", str(free_port()),
                "--persist-to", str(self.home / "state"),
                "--show-interactive-dev-session=false",
                "--log-level", "log",
                *self.dev_flags(),
            ],
            cwd=self.home,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=open(self.log_path, "ab"),
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def wait_ready(self, timeout: float = 90) -> None:
        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.proc.poll() is not None:
                if self.starts < 3 and "Address already in use" in self.log_path.read_text(errors="replace"):
                    self.start()
                    continue
                raise RuntimeError(f"wrangler dev exited; see {self.log_path}:\n{self.log_path.read_text()[-3000:]}")
            # Its own answer: another process (another suite's Worker) may hold the port when
            # this one could not take it, and would answer just as well.
            if f"Ready on {self.url}" not in self.log_path.read_text(errors="replace"):
                time.sleep(0.3)
                continue
            try:
                httpx.get(self.url + "/healthz", timeout=2)
                return
            except httpx.HTTPError:
                time.sleep(0.3)
        raise RuntimeError(f"wrangler dev did not answer in {timeout}s; see {self.log_path}")

    def ledger(self, sql: str = "SELECT * FROM attempts ORDER BY ts_ms, request_id, attempt", params=()) -> list[dict]:
        """Rows of this Worker's local D1 ledger, read straight from its SQLite file (read-only;
        the Worker writes it after each response, so callers poll for what they expect)."""
        import sqlite3

        con = sqlite3.connect(f"file:{self.ledger_file()}?mode=ro", uri=True)
        con.row_factory = sqlite3.Row
        try:
            return [dict(r) for r in con.execute(sql, params)]
        finally:
            con.close()

    def ledger_file(self) -> Path:
        """The SQLite file behind this Worker's local D1 ledger."""
        d1 = self.home / "state" / "v3" / "d1" / "miniflare-D1DatabaseObject"
        (db,) = [p for p in d1.glob("*.sqlite") if p.name != "metadata.sqlite"]
        return db

    def client(self, token: str | None = AGENT_TOKEN, **kw) -> httpx.Client:
        headers = {"authorization": f"Bearer {token}"} if token else {}
        return httpx.Client(
            base_url=self.url,
            headers=headers,
            timeout=kw.pop("timeout", 30),
            transport=RecordingTransport(),
            **kw,
        )

    def stop(self) -> None:
        try:
            os.killpg(self.proc.pid, signal.SIGTERM)
            self.proc.wait(10)
        except (ProcessLookupError, subprocess.TimeoutExpired):
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass


def latency_bucket(ms: int) -> int:
    """The analytics histogram's bucket of a latency (gateway_core::histogram)."""
    if ms < 64:
        return ms
    e = ms.bit_length() - 1
    return 64 + (e - 6) * 32 + ((ms >> (e - 5)) & 31)


LEDGER_DEFAULTS = {
    "attempt": 1, "route": "chat", "alias": "triage", "agent": None, "repository": None, "outcome": "200",
    "status": 200, "success": 1, "tokens_in": None, "tokens_out": None, "tokens_cached": 0, "cost_pico": None,
    "charged_pico": 0, "cache": "MISS", "log_id": None, "latency_ms": 100, "stream": 0,
}


def seed_ledger(db: Path, rows: list[dict]) -> None:
    """Writes attempts into a (stopped) Worker's ledger, as the write path would: each dict needs
    request_id, ts_ms, provider and model; `day` and `latency_bucket` are derived."""
    import sqlite3

    con = sqlite3.connect(db)
    try:
        for r in rows:
            row = {**LEDGER_DEFAULTS, **r}
            row["day"] = row["ts_ms"] // 86_400_000
            row["latency_bucket"] = latency_bucket(row["latency_ms"])
            names = list(row)
            con.execute(
                f"INSERT INTO attempts ({', '.join(names)}) VALUES ({', '.join('?' for _ in names)})",
                [row[n] for n in names],
            )
        con.commit()
    finally:
        con.close()


@contextmanager
def running_worker(name: str, values: dict[str, str], **kw):
    """A Worker a test starts itself, ready, stopped after: for one whose start or end is what
    the test is about. (A module that only needs a configuration of its own declares it:
    `declare_worker`, started with the session's.)"""
    w = Worker(name, values, **kw)
    try:
        w.wait_ready()
        yield w
    finally:
        w.stop()


SHIPPED_CONFIG = json.loads((ROOT / "gateway.config.json").read_text())


def gateway_config(providers: dict | None = None, routes: dict | None = None, **extra) -> str:
    """A routing configuration for GATEWAY_CONFIG: the shipped routes and the suite's own
    (`SUITE_ROUTES`), or `routes`, with the given provider limits (the suite sends far more than
    the shipped 100 requests/min, so by default the limits are generous; some Workers make them
    tight on purpose)."""
    cfg = json.loads(json.dumps(SHIPPED_CONFIG))
    generous = {"requests_per_minute": 100000, "daily_budget_usd": 1000}
    cfg["providers"] = providers or {name: dict(generous) for name in cfg["providers"]}
    cfg["routes"] = {**cfg["routes"], **SUITE_ROUTES} if routes is None else routes
    cfg.update(extra)
    return json.dumps(cfg, separators=(",", ":"))


# Quick retries keep the suite fast; the backoff logic itself is unit-tested.
QUICK_RETRIES = {"attempts_per_target": 2, "base_delay_ms": 20, "max_delay_ms": 200, "max_retry_after_ms": 2000}


def base_values(sim: Sim, **overrides: str) -> dict[str, str]:
    values = {
        "CF_ACCOUNT_ID": ACCOUNT_ID,
        "AI_GATEWAY_ID": GATEWAY_ID,
        "AI_GATEWAY_URL": f"{sim.url}/v1",
        "CF_API_URL": f"{sim.url}/client/v4",
        "AGENT_TOKEN": AGENT_TOKEN,
        "CF_AIG_TOKEN": AIG_TOKEN,
        "CF_API_TOKEN": API_TOKEN,
        "ADMIN_TOKEN": ADMIN_TOKEN,
        "MAX_BODY_BYTES": "65536",
        "UPSTREAM_FIRST_BYTE_TIMEOUT_MS": "3000",
        "STREAM_IDLE_TIMEOUT_MS": "2000",
        "REQUEST_DEADLINE_MS": "20000",
        "GATEWAY_CONFIG": gateway_config(retry=QUICK_RETRIES),
    }
    values.update(overrides)
    # dotenv: single quotes keep the JSON's double quotes and braces literal.
    return {k: (f"'{v}'" if k == "GATEWAY_CONFIG" else v) for k, v in values.items() if v is not None}


# Workers of a test module's own configuration, declared at import (collection) time with
# `declare_worker` and started with the suite's: name → factory(sim) → Worker (not yet ready).
DECLARED: dict[str, Callable[[Sim], Worker]] = {}


def declare_worker(name: str):
    """Decorator: `factory(sim) -> Worker` starts a Worker of a test module's own with the
    session's others (all at once); the module's tests find it as `workers[name]`."""

    def declare(factory: Callable[[Sim], Worker]) -> Callable[[Sim], Worker]:
        DECLARED[name] = factory
        return factory

    return declare


def stop_everything() -> None:
    """Stops every simulator and Worker of the session (again, if already stopped): their logs
    are then complete."""
    for process in STARTED:
        process.stop()


def secret_leaks() -> list[str]:
    """Every answer recorded (`SEEN`) and every line a simulator or Worker logged that holds a
    secret, and what says the scan saw what it should have."""
    leaks = [
        f"an answer to {what} holds a secret ({secret[:6]}…)"
        for what, head, body in SEEN
        for secret in SECRETS
        if secret in head or secret.encode() in body
    ]
    chat_lines = 0
    for path in sorted({p.log_path for p in STARTED}):
        for line in path.read_text(errors="replace").splitlines():
            # With more than one Worker in a `wrangler dev`, each line is prefixed with the
            # Worker's name (`[agent-gateway] {...}`).
            chat_lines += line.removeprefix("[agent-gateway] ").startswith('{"event":"chat_completion"')
            leaks += [f"{path.name}: a log line holds a secret ({s[:6]}…)" for s in SECRETS if s in line]
    # A recorder or a log that broke would hide leaks: what was sent must show.
    if any(isinstance(p, Worker) for p in STARTED) and not SEEN:
        leaks.append("Workers ran but no answer was recorded: the recorder is broken")
    if any(CHAT in what for what, _, _ in SEEN) and chat_lines == 0:
        leaks.append("chat requests were answered but no Worker logged a chat_completion line")
    return leaks


@pytest.fixture(scope="session", autouse=True)
def secret_scan():
    """The session's last checks, after every test. No request was cancelled as hung (its
    books, rows or replay record lost with it). No secret came back in any answer (headers
    or body, recorded in `SEEN` by every client of the suite: httpx, the SDKs, the raw socket
    client, the Node tests, the docs' examples) or in any line a simulator or Worker logged. A
    leak fails the run: pytest reports it as an error at the teardown of the last test, and
    exits non-zero."""
    yield
    stop_everything()
    leaks = secret_leaks()
    assert not leaks, "\n".join(leaks[:20])
    hung = hung_requests()
    assert not hung, "\n".join(hung[:20])


# The runtime's words when it cancels a request (or its `waitUntil` work) that waits for
# something nothing will ever deliver: a future of another request, an I/O of another context.
HUNG = "detected that your Worker's code had hung"


def hung_requests() -> list[str]:
    """Every Worker log line that says the runtime cancelled a request as hung, beyond one per
    panic the panic test asked for (a request that panicked never answers: that is the test)."""
    found = []
    for path in sorted({p.log_path for p in STARTED if isinstance(p, Worker)}):
        lines = path.read_text(errors="replace").splitlines()
        hung = [line.strip()[:200] for line in lines if HUNG in line]
        # A panic is logged twice ("panicked at", then "Critical Error: Rust panic: …").
        asked = sum("panicked at" in line and "Rust panic" not in line for line in lines)
        found += [f"{path.name}: {line}" for line in hung[asked:]]
    return found


@pytest.fixture(scope="session")
def sim():
    s = Sim()
    yield s
    s.stop()


@pytest.fixture(scope="session")
def webhook():
    """An incoming-webhook endpoint (the `budget` Worker's ALERT_WEBHOOK_URL)."""
    receiver = WebhookReceiver(free_port())
    yield receiver
    receiver.server.shutdown()


# Budgets of the `budget` Worker: Gemini's is hammered concurrently (test_resilience.py);
# Anthropic's is spent past each alert threshold (test_budget_alerts.py).
ALERTED_BUDGET_USD = "0.0005"
# The `rest` Worker's test-only panic trigger (test_panic_recovery.py).
PANIC_PATH = "/__test/panic"
# The `rest` Worker's panel and breaker: a subrequest limit below what a full view makes once many
# scopes spent today, a breaker that opens at 3 failures of 3 (1 s cool-down, one probe), budgets
# by scope.
PANEL_SUBREQUEST_LIMIT = 14
PANEL_BREAKER = {"window_seconds": 60, "min_attempts": 3, "failure_ratio": 0.5, "cooldown_seconds": 1, "probes": 1}
PANEL_SCOPES = {
    "repositories": {"default": {"daily_budget_usd": 5}, "octo-org/api": {"daily_budget_usd": "0.5"}},
    "agents": {"TriagingAgent": {"daily_budget_usd": 3, "requests_per_minute": 1000}},
}


@pytest.fixture(scope="session")
def workers(sim, webhook):
    """Every Worker the session's tests use, started together: the suite's own configurations
    below, and those test modules declared (`declare_worker`)."""
    generous = {"requests_per_minute": 100000, "daily_budget_usd": 1000}
    one_a_minute = {"requests_per_minute": 1, "daily_budget_usd": 1000}
    configs = {
        "main": base_values(sim),
        # No AGENT_TOKEN, no gateway ids or token: must refuse everything, never run open. Its
        # AGENT_TOKENS is invalid too (a raw token where its hash belongs): /healthz names it.
        "unconfigured": {"AI_GATEWAY_URL": f"{sim.url}/v1", "AGENT_TOKENS": dotenv_json({REVIEW: {"agent": "ReviewAgent"}})},
        # The REST endpoint instead of compat; the test-only panic trigger (test_panic_recovery.py),
        # which no other Worker has; the dashboard's budgets panel within a small subrequest limit
        # (test_budgets_panel.py), budgets per repository and agent; and Anthropic behind a circuit
        # breaker that opens quickly (test_circuit_breaker.py).
        "rest": base_values(sim, GATEWAY_ENDPOINT="rest", GATEWAY_TEST_PANIC_PATH=PANIC_PATH,
                            SUBREQUEST_LIMIT=str(PANEL_SUBREQUEST_LIMIT), GATEWAY_CONFIG=gateway_config(
            providers={p: dict(generous, circuit_breaker=PANEL_BREAKER) if p == "anthropic" else dict(generous)
                       for p in SHIPPED_CONFIG["providers"]},
            retry=QUICK_RETRIES,
            scopes=PANEL_SCOPES,
        )),
        # Nothing listens at the gateway's URL, nor at the Cloudflare API's (the ledger's view
        # without a cross-check: test_analytics_ledger.py).
        "unreachable": base_values(sim, AI_GATEWAY_URL=f"http://127.0.0.1:{free_port()}/v1",
                                   CF_API_URL=f"http://127.0.0.1:{free_port()}/client/v4"),
        # The books-balance run's own Worker: its ledger and its limiters see nothing else.
        "books": base_values(sim),
        # Scoped tokens beside AGENT_TOKEN, budgets per repository, owner and agent; native routes
        # may pass a caller's own provider key on.
        "tokens": base_values(sim, AGENT_TOKENS=dotenv_json(SCOPED_TOKENS), ALLOW_CALLER_PROVIDER_KEYS="true",
                              GATEWAY_CONFIG=gateway_config(retry=QUICK_RETRIES, scopes=TOKENS_SCOPES)),
        # One request per minute for the providers whose limit is hit on purpose: Gemini, OpenAI
        # and Anthropic (the Node SDK's RateLimitError), Bedrock (a native route's); one attempt
        # per target (Workers AI's first-byte timeout is a 504 at once: test_upstream_faults.py).
        "tight": base_values(sim, GATEWAY_CONFIG=gateway_config(
            providers={p: dict(one_a_minute if p in ("google-ai-studio", "openai", "anthropic", "aws-bedrock") else generous)
                       for p in SHIPPED_CONFIG["providers"]},
            retry={"attempts_per_target": 1, "base_delay_ms": 10, "max_delay_ms": 10, "max_retry_after_ms": 0},
        )),
        # Tiny budgets: Gemini's, hammered concurrently, moves triage to gpt-4o-mini past half of
        # it; Anthropic's posts an alert per threshold to the webhook. Its ledger's migrations
        # were never applied (test_deployment.py): chat answers all the same.
        "budget": base_values(sim, ALERT_WEBHOOK_URL=webhook.url, GATEWAY_CONFIG=gateway_config(
            providers={
                "google-ai-studio": {"requests_per_minute": 100000, "daily_budget_usd": BUDGET_USD},
                "openai": dict(generous),
                "anthropic": {"requests_per_minute": 100000, "daily_budget_usd": ALERTED_BUDGET_USD},
            },
            routes={**SHIPPED_CONFIG["routes"], "triage": {
                "targets": ["google-ai-studio/gemini-3.5-flash-lite", "openai/gpt-4o-mini"],
                "rules": [{"when": {"budget_used_above": 0.5}, "targets": ["openai/gpt-4o-mini"]}],
            }},
        )),
        # A deployment missing parts: its LIMITER binding (chat is refused, /healthz names it:
        # test_deployment.py) and CF_API_TOKEN (the ledger's view has nothing to cross-check
        # against: test_analytics_ledger.py).
        "no-limiter": base_values(sim, CF_API_TOKEN=None),
    }
    options = {"budget": {"migrated": False}, "no-limiter": {"without_bindings": ("LIMITER",)}}
    started: dict[str, Worker] = {}
    try:
        for name, values in configs.items():
            started[name] = Worker(name, values, **options.get(name, {}))
        for name, factory in DECLARED.items():
            started[name] = factory(sim)
        for w in started.values():
            w.wait_ready()
        yield started
    finally:
        for w in started.values():
            w.stop()


@pytest.fixture(scope="session")
def worker(workers):
    return workers["main"]


@pytest.fixture()
def client(worker):
    with worker.client() as c:
        yield c


@pytest.fixture(autouse=True)
def clean_sim(sim):
    sim.reset()
    yield
