"""`make dev` as the README tells a new user to run it, in a fresh copy of the tree (no .dev.vars):
it starts, says where, and what it prints works: the `curl` example as printed, a streamed
request, the README's OpenAI SDK examples (Python and TypeScript). Ctrl-C stops everything it
started and frees its ports, typed in a terminal or while it is still starting, as does a
SIGTERM to dev.sh alone. With .dev.vars pointing at Cloudflare no simulator starts (nor is its
port needed), and PORT is honoured, from the environment or make's command line; a port already
taken is reported, not waited on. Each start of `make dev` takes seconds: a test checks all it
can of one.

The copy holds the tracked (and new, unignored) files with their mtimes, and reuses target/,
node_modules/, .venv/ and build/ through symlinks, so `make dev` runs as written in the Makefile
(setup checks, incremental build) without building anything that is already built."""

from __future__ import annotations

import errno
import fcntl
import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import termios
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from conftest import ROOT, free_port
from docs_examples import blocks, run_python, run_typescript, substitute
from helpers import SEEN

DEV_PORT = 8787  # make dev's default
SIM_PORT = 8788  # the simulator's, from .dev.vars.example
REUSED = ("target", "node_modules", ".venv", "build")
ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")
# What make dev's environment must not inherit from a `make test` around the suite (a terminal
# has none of it): a sub-make would join the outer make's jobserver.
NOT_INHERITED = ("MAKEFLAGS", "MFLAGS", "MAKELEVEL", "MAKEFILES", "MAKE_TERMOUT", "MAKE_TERMERR", "PORT")


def in_use(port: int) -> bool:
    """Something accepts connections on 127.0.0.1:port, or the port cannot be bound (the way a
    server binds it: SO_REUSEADDR, so connections in TIME_WAIT do not count)."""
    with socket.socket() as s:
        s.settimeout(1)
        if s.connect_ex(("127.0.0.1", port)) == 0:
            return True
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
        except OSError as e:
            return e.errno == errno.EADDRINUSE
    return False


@pytest.fixture(autouse=True)
def ports_free():
    taken = [p for p in (DEV_PORT, SIM_PORT) if in_use(p)]
    if taken:
        pytest.fail(
            f"port(s) {', '.join(map(str, taken))} on 127.0.0.1 are already in use (a `make dev` still "
            "running?): the make dev tests need 8787 and 8788 free; stop whatever listens there",
            pytrace=False,
        )


@pytest.fixture()
def tree() -> Path:
    """A copy of the working tree as a new user would have it: no .dev.vars, no .wrangler."""
    dest = Path(tempfile.mkdtemp(prefix="agw-make-dev-"))
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT, capture_output=True, check=True,
    ).stdout.decode().split("\0")
    for name in filter(None, listed):
        src = ROOT / name
        if not src.is_file() or name.split("/")[0] in REUSED:
            continue  # deleted in the working tree, or inside a reused directory
        (dest / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(src, dest / name, follow_symlinks=False)
    for name in REUSED:
        (ROOT / name).mkdir(exist_ok=True)
        (dest / name).symlink_to(ROOT / name)
    yield dest
    if os.environ.get("KEEP_MAKE_DEV_TREE") is None:
        shutil.rmtree(dest, ignore_errors=True)


@dataclass(frozen=True)
class Proc:
    pid: int
    ppid: int
    session: int
    start: str  # clock ticks since boot: tells a pid reused later apart
    state: str
    comm: str
    cmdline: str


def processes() -> dict[int, Proc]:
    found = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            raw = Path(f"/proc/{entry}/stat").read_text()
            cmdline = Path(f"/proc/{entry}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        comm = raw[raw.index("(") + 1 : raw.rindex(")")]
        fields = raw[raw.rindex(")") + 2 :].split()
        found[int(entry)] = Proc(int(entry), int(fields[1]), int(fields[3]), fields[19], fields[0], comm, cmdline.strip())
    return found


def alive(p: Proc) -> bool:
    now = processes().get(p.pid)
    return now is not None and now.start == p.start and now.state != "Z"


class MakeDev:
    """`make dev` in its own session and process group, as a terminal runs a foreground job; with
    `terminal=True` in a pseudo-terminal of its own (its controlling terminal), so that Ctrl-C can
    be typed: the terminal then sends SIGINT to its foreground process group."""

    def __init__(self, tree: Path, *args: str, terminal: bool = False, command: tuple[str, ...] = ("make", "dev"), **env: str):
        self.tree = tree
        self.log = tree / f"{'-'.join(command[:2]).replace('/', '_')}.log"
        environment = {k: v for k, v in os.environ.items() if k not in NOT_INHERITED}
        environment.update(env)
        self.pty = None
        if terminal:
            self.pty, child_side = os.openpty()
            io = dict(stdin=child_side, stdout=child_side, stderr=child_side,
                      preexec_fn=lambda: fcntl.ioctl(0, termios.TIOCSCTTY, 0))
        else:
            io = dict(stdin=subprocess.DEVNULL, stdout=open(self.log, "wb"), stderr=subprocess.STDOUT)
        self.proc = subprocess.Popen([*command, *args], cwd=tree, env=environment, start_new_session=True, **io)
        if terminal:
            os.close(child_side)
            threading.Thread(target=self._copy_terminal, daemon=True).start()
        self.seen: dict[tuple[int, str], Proc] = {}

    def _copy_terminal(self) -> None:
        with open(self.log, "ab") as out:
            while True:
                try:
                    data = os.read(self.pty, 65536)
                except OSError:  # EIO: every process holding the terminal is gone
                    return
                if not data:
                    return
                out.write(data)
                out.flush()

    def type_ctrl_c(self) -> None:
        self.track()
        os.write(self.pty, termios.tcgetattr(self.pty)[6][termios.VINTR])

    def output(self) -> str:
        return ANSI.sub("", self.log.read_text(errors="replace"))

    def wait_for(self, pattern: str, timeout: float = 300) -> re.Match:
        deadline = time.time() + timeout
        while time.time() < deadline:
            self.track()
            if m := re.search(pattern, self.output()):
                return m
            if self.proc.poll() is not None:
                pytest.fail(f"make dev exited ({self.proc.returncode}) before printing {pattern!r}:\n{self.output()[-4000:]}")
            time.sleep(0.3)
        pytest.fail(f"make dev printed no {pattern!r} in {timeout}s:\n{self.output()[-4000:]}")

    def track(self) -> list[Proc]:
        """Every process make dev started so far: its session, and descendants by parent."""
        table = processes()
        children: dict[int, list[int]] = {}
        for p in table.values():
            children.setdefault(p.ppid, []).append(p.pid)
        mine, todo = set(), [self.proc.pid]
        while todo:
            pid = todo.pop()
            if pid in mine:
                continue
            mine.add(pid)
            todo += children.get(pid, [])
        mine |= {p.pid for p in table.values() if p.session == self.proc.pid}
        for pid in mine:
            if pid in table:
                self.seen[(pid, table[pid].start)] = table[pid]
        return [table[pid] for pid in mine if pid in table]

    def started(self, what: str) -> list[Proc]:
        """The processes that run `what`: by their own name (aig-sim, workerd), or node running
        it (wrangler). Not one that only names it: the make that each Worker's [build] step runs
        evaluates `find crates/aig-sim -name '*.rs'`, which is no simulator."""
        return [p for p in self.seen.values() if p.comm == what or (p.comm == "node" and what in p.cmdline)]

    def ctrl_c(self, timeout: float = 30) -> None:
        """What Ctrl-C does: SIGINT to the foreground process group (typed, in a terminal)."""
        self.track()
        if self.pty is not None:
            self.type_ctrl_c()
        else:
            os.killpg(self.proc.pid, signal.SIGINT)
        self.wait_exit(timeout)

    def wait_exit(self, timeout: float = 30) -> None:
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            pytest.fail(f"make dev was still running {timeout}s after Ctrl-C:\n{self.output()[-3000:]}")

    def leftovers(self, timeout: float = 20) -> list[Proc]:
        deadline = time.time() + timeout
        while True:
            left = [p for p in self.seen.values() if p.pid != self.proc.pid and alive(p)]
            if not left or time.time() > deadline:
                return left
            time.sleep(0.2)

    def kill_all(self) -> None:
        """Teardown: whatever it started and still runs (only if a test failed midway)."""
        if self.proc.poll() is None:
            self.track()
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        for p in self.seen.values():
            if alive(p):
                try:
                    os.kill(p.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
        self.proc.wait(10)


@pytest.fixture()
def make_dev():
    started: list[MakeDev] = []

    def start(tree: Path, *args: str, terminal: bool = False, command: tuple[str, ...] = ("make", "dev"), **env: str) -> MakeDev:
        started.append(MakeDev(tree, *args, terminal=terminal, command=command, **env))
        return started[-1]

    yield start
    for dev in started:
        dev.kill_all()


def assert_stopped_cleanly(dev: MakeDev, ports: list[int], stop=None) -> None:
    (stop or dev.ctrl_c)()
    left = dev.leftovers()
    assert not left, "still running after Ctrl-C:\n" + "\n".join(f"{p.pid} {p.cmdline[:200]}" for p in left)
    deadline = time.time() + 10
    while (busy := [p for p in ports if in_use(p)]) and time.time() < deadline:
        time.sleep(0.2)
    assert not busy, f"port(s) {busy} still in use after Ctrl-C"


def printed_curl(output: str) -> str:
    """The `curl` example in make dev's message: its first line and the lines it continues onto."""
    lines = output[output.index("agent-gateway is running at") :].splitlines()
    start = next(i for i, line in enumerate(lines) if line.strip().startswith("curl "))
    command = [lines[start].strip()]
    while command[-1].endswith("\\"):
        start += 1
        command.append(lines[start].strip())
    return "\n".join(command)


def run_shell(command: str, cwd: Path) -> subprocess.CompletedProcess:
    done = subprocess.run(["bash", "-c", command], cwd=cwd, capture_output=True, text=True, timeout=60)
    SEEN.append(("make dev example", "", (done.stdout + done.stderr).encode()))
    return done


def readme_block(*needles: str) -> str:
    found = [b.text for b in blocks() if b.kind and all(n in b.text for n in needles)]
    assert len(found) == 1, f"README.md: expected one example with {needles}, found {len(found)}"
    return found[0]


def test_make_dev_from_a_fresh_tree_then_ctrl_c_typed_in_its_terminal(tree, make_dev):
    assert not (tree / ".dev.vars").exists()
    dev = make_dev(tree, terminal=True)
    url = dev.wait_for(r"agent-gateway is running at (http://\S+)").group(1)
    out = dev.output()
    assert url == f"http://127.0.0.1:{DEV_PORT}"
    assert "wrote .dev.vars from .dev.vars.example" in out
    assert (tree / ".dev.vars").read_text() == (tree / ".dev.vars.example").read_text()
    assert f"starting the AI Gateway simulator on 127.0.0.1:{SIM_PORT}" in out
    assert re.search(r'health: \{"status":"ok"', out), out[-2000:]
    assert "local-agent-token" not in out, "make dev printed the agent token"

    # The curl example, as printed, from the tree's directory; it is the README's too.
    curl = printed_curl(out)
    assert [l.strip() for l in curl.splitlines()] == [
        l.strip() for l in readme_block("/v1/chat/completions", "curl ", "x-agent-name").strip().splitlines()
    ], "make dev prints another curl example than the README shows"
    done = run_shell(curl, tree)
    assert done.returncode == 0, done.stderr
    head, _, body = done.stdout.replace("\r\n", "\n").partition("\n\n")
    assert head.startswith("HTTP/1.1 200"), done.stdout[:2000]
    assert re.search(r"(?mi)^x-gateway-provider: google-ai-studio$", head)
    assert "Simulated answer from google-ai-studio/gemini-3.5-flash-lite: Label this issue: the build fails" in body

    # Streaming, as the message says: "stream": true in the body, -N to curl.
    assert 'Streaming: add "stream": true to the body (and -N to curl)' in out
    streamed = curl.replace("-d '{\"model", "-d '{\"stream\":true,\"model", 1) + " -N"
    assert streamed != curl + " -N"
    done = run_shell(streamed, tree)
    assert done.returncode == 0, done.stderr
    head, _, body = done.stdout.replace("\r\n", "\n").partition("\n\n")
    assert head.startswith("HTTP/1.1 200") and re.search(r"(?mi)^content-type: text/event-stream", head), head
    assert body.rstrip().endswith("data: [DONE]"), body[-500:]
    assert body.count("data: ") > 3

    # The README's SDK examples, against this make dev (its URL; the token of its .dev.vars).
    token = re.search(r"(?m)^AGENT_TOKEN=(.*)$", (tree / ".dev.vars").read_text()).group(1)
    expected = "Simulated answer from google-ai-studio/gemini-3.5-flash-lite: Is this issue a bug or a feature request?"
    quickstart = (("python", 'caller = {"x-agent-name": "TriagingAgent"'), ("ts", 'const headers = { "x-agent-name": "TriagingAgent"'))
    for kind, needle in quickstart:
        source = substitute(readme_block(needle), url, token)
        done = run_python(source, cwd=tree) if kind == "python" else run_typescript(source, tree / ".readme-ts")
        SEEN.append((f"make dev README {kind}", "", (done.stdout + done.stderr).encode()))
        assert done.returncode == 0, f"{kind}:\n{done.stdout}\n{done.stderr}"
        assert expected in done.stdout and "Review this diff" in done.stdout, done.stdout

    dev.track()
    for what in ("aig-sim", "wrangler", "workerd"):
        assert dev.started(what), f"no {what} process found among make dev's: the check below would prove nothing"
    assert_stopped_cleanly(dev, [DEV_PORT, SIM_PORT])


CLOUDFLARE = "https://gateway.ai.cloudflare.com/v1"


def against_cloudflare(tree: Path, gateway_url: str | None) -> None:
    """.dev.vars from the example, with AI_GATEWAY_URL (and CF_API_URL) Cloudflare's, or unset."""
    example = (tree / ".dev.vars.example").read_text()
    if gateway_url is None:
        values = re.sub(r"(?m)^(AI_GATEWAY_URL|CF_API_URL)=.*\n", "", example)
    else:
        values = re.sub(r"(?m)^AI_GATEWAY_URL=.*$", f"AI_GATEWAY_URL={gateway_url}", example)
        values = re.sub(r"(?m)^CF_API_URL=.*$", "CF_API_URL=https://api.cloudflare.com/client/v4", values)
    (tree / ".dev.vars").write_text(values)


def assert_serves_without_a_simulator(dev: MakeDev, port: int, shown: str) -> None:
    url = dev.wait_for(r"agent-gateway is running at (http://\S+)").group(1)
    out = dev.output()
    assert url == f"http://127.0.0.1:{port}"
    assert f"AI_GATEWAY_URL is {shown}: talking to Cloudflare, no simulator started" in out
    assert "starting the AI Gateway simulator" not in out
    assert "wrote .dev.vars" not in out
    health = httpx.get(f"{url}/healthz", timeout=10)
    assert health.status_code in (200, 503) and "status" in health.json()
    SEEN.append(("make dev healthz", "", health.content))
    assert f"http://127.0.0.1:{port}/v1/chat/completions" in printed_curl(out)
    dev.track()
    assert not dev.started("aig-sim")
    for what in ("wrangler", "workerd"):
        assert dev.started(what), f"no {what} among make dev's processes: stopping it would prove nothing"


def test_make_dev_against_cloudflare_by_default_then_sigterm_to_dev_sh(tree, make_dev):
    """AI_GATEWAY_URL unset is Cloudflare's; PORT from the environment; `kill` of dev.sh alone
    (a supervisor, an editor's stop button, `timeout`) stops what it started."""
    against_cloudflare(tree, None)
    port = free_port()
    dev = make_dev(tree, PORT=str(port))
    assert_serves_without_a_simulator(dev, port, "the default https://gateway.ai.cloudflare.com/v1")
    assert not in_use(SIM_PORT) and not in_use(DEV_PORT)
    assert_stopped_cleanly(dev, [port], lambda: terminate_dev_sh(dev))


def test_make_dev_against_cloudflare_needs_no_simulator_port(tree, make_dev):
    """AI_GATEWAY_URL Cloudflare's, PORT on make's command line, the simulator's port taken by
    someone else: make dev does not need it. Ctrl-C (SIGINT to its process group) stops it."""
    against_cloudflare(tree, CLOUDFLARE)
    port = free_port()
    with socket.socket() as squatter:
        squatter.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        squatter.bind(("127.0.0.1", SIM_PORT))
        squatter.listen()
        dev = make_dev(tree, f"PORT={port}")
        assert_serves_without_a_simulator(dev, port, CLOUDFLARE)
        assert not in_use(DEV_PORT)
        assert_stopped_cleanly(dev, [port])


@pytest.mark.parametrize("taken", [DEV_PORT, SIM_PORT])
def test_make_dev_reports_a_port_in_use(tree, make_dev, taken):
    with socket.socket() as squatter:
        squatter.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        squatter.bind(("127.0.0.1", taken))
        squatter.listen()
        dev = make_dev(tree)
        try:
            dev.proc.wait(90)
        except subprocess.TimeoutExpired:
            pytest.fail(f"make dev kept running with port {taken} taken:\n{dev.output()[-3000:]}")
        dev.track()
        out = dev.output()
        assert dev.proc.returncode != 0
        assert re.search(rf"port {taken} .*already in use", out), out[-3000:]
        assert "agent-gateway is running" not in out
        left = dev.leftovers()
        assert not left, "\n".join(p.cmdline for p in left)


def terminate_dev_sh(dev: MakeDev) -> None:
    """`kill` of the script alone: no signal reaches wrangler and workerd unless the script passes
    it on."""
    dev.track()
    script = [p for p in dev.seen.values() if "scripts/dev.sh" in p.cmdline and alive(p)]
    assert len(script) == 1, [p.cmdline for p in script]
    os.kill(script[0].pid, signal.SIGTERM)
    dev.wait_exit()


def test_make_dev_stops_everything_on_ctrl_c_while_starting(tree, make_dev):
    dev = make_dev(tree)
    dev.wait_for(r"starting wrangler dev")
    # wrangler is starting workerd (about a second at the quickest, with the build cached)
    time.sleep(0.2)
    assert "agent-gateway is running" not in dev.output()
    assert_stopped_cleanly(dev, [DEV_PORT, SIM_PORT])


def test_make_dev_stops_when_its_simulator_dies(tree, make_dev):
    """A simulator that dies mid-session ends it, said in one line, rather than leaving a
    gateway that looks alive and answers every chat with a 502."""
    dev = make_dev(tree)
    dev.wait_for(r"agent-gateway is running at")
    dev.track()
    (sim,) = [p for p in dev.started("aig-sim") if alive(p)]

    def kill_the_simulator() -> None:
        os.kill(sim.pid, signal.SIGKILL)
        dev.wait_exit()

    assert_stopped_cleanly(dev, [DEV_PORT, SIM_PORT], stop=kill_the_simulator)
    assert dev.proc.returncode != 0
    assert "the AI Gateway simulator exited (status 137): stopping wrangler dev too" in dev.output()


def test_the_cloudflare_users_own_commands(tree, make_dev):
    """What a Worker's README tells its user, as typed: `make setup` (the toolchain, and
    .dev.vars from the example), the simulator beside it (`make simulator`), `npx wrangler d1
    migrations apply LEDGER --local`, `npx wrangler dev` (the repository's wrangler.toml, its
    [build] step included): everything is ok. (Without the migrations, chat answers and /healthz
    and /analytics say what to run: test_deployment.py, on a Worker whose ledger has none.)"""
    setup = subprocess.run(["make", "setup"], cwd=tree, capture_output=True, text=True, timeout=600,
                           env={k: v for k, v in os.environ.items() if k not in NOT_INHERITED})
    assert setup.returncode == 0, setup.stdout + setup.stderr
    assert "wrote .dev.vars from .dev.vars.example" in setup.stdout + setup.stderr
    simulator = make_dev(tree, command=("make", "simulator"))
    simulator.wait_for(r"in another terminal: npx wrangler dev")
    url = f"http://127.0.0.1:{DEV_PORT}"
    token = re.search(r"(?m)^AGENT_TOKEN=(.*)$", (tree / ".dev.vars").read_text()).group(1)
    auth = {"authorization": f"Bearer {token}"}
    chat = {"model": "triage", "messages": [{"role": "user", "content": "Label this issue: the build fails"}]}

    def wrangler_dev() -> tuple[MakeDev, httpx.Response]:
        dev = make_dev(tree, command=("npx", "wrangler", "dev"))
        deadline = time.time() + 180
        while time.time() < deadline:
            try:
                return dev, httpx.get(f"{url}/healthz", timeout=2)
            except httpx.HTTPError:
                if dev.proc.poll() is not None:
                    pytest.fail(f"npx wrangler dev exited:\n{dev.output()[-3000:]}")
                time.sleep(0.3)
        pytest.fail(f"npx wrangler dev did not answer:\n{dev.output()[-3000:]}")

    migrate = subprocess.run(["npx", "wrangler", "d1", "migrations", "apply", "LEDGER", "--local"], cwd=tree,
                             capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL)
    assert migrate.returncode == 0, migrate.stdout + migrate.stderr
    dev, health = wrangler_dev()
    SEEN.append(("wrangler dev healthz", "", health.content))
    assert health.status_code == 200 and health.json()["status"] == "ok", health.text
    r = httpx.post(f"{url}/v1/chat/completions", json=chat, headers=auth, timeout=30)
    SEEN.append(("wrangler dev chat", "", r.content))
    assert r.status_code == 200, r.text
    assert "Simulated answer from google-ai-studio/" in r.json()["choices"][0]["message"]["content"]
    r = httpx.get(f"{url}/analytics", headers=auth, params={"format": "json"}, timeout=30)
    assert r.status_code == 200, r.text
    assert_stopped_cleanly(dev, [DEV_PORT])
    assert_stopped_cleanly(simulator, [SIM_PORT])
