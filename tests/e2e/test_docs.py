"""The docs, as a reader uses them.

Every `curl`, Python and TypeScript example of README.md and docs/*.md runs, as written, against
the session's Worker and simulator: only the base URL (http://127.0.0.1:8787) and the token of
.dev.vars.example are substituted (curl examples that read a token from .dev.vars run in a
directory whose .dev.vars holds the session's tokens). A block that cannot run here (it needs a
Cloudflare account) carries `<!-- not run by tests: why -->` right before it; a ```ts block
copied verbatim from a file under examples/ is covered by that example's own test. So a new
example cannot land without being run.

And the pages hold together: every relative link points to an existing file and, with an
`#anchor`, to an existing heading; every var of wrangler.toml and every secret it names is in
docs/operations.md's tables."""

from __future__ import annotations

import os
import re
import stat
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

import pytest

from conftest import ADMIN_TOKEN, AGENT_TOKEN, ARTIFACTS, ROOT
from docs_examples import Block, blocks, child_env, page_name, pages, run_python, run_typescript, substitute
from helpers import SEEN

EXAMPLES = ROOT / "examples"
OPERATIONS = ROOT / "docs" / "operations.md"


@dataclass(frozen=True)
class Example:
    page: Path
    block: Block

    @property
    def where(self) -> str:
        return f"{page_name(self.page)}:{self.block.line}"

    @property
    def id(self) -> str:
        return f"{page_name(self.page)}:{self.block.id}"


def example_files() -> dict[Path, str]:
    if not EXAMPLES.is_dir():
        return {}
    return {
        p: p.read_text(errors="replace")
        for p in EXAMPLES.rglob("*")
        if p.is_file() and "node_modules" not in p.parts and p.suffix in {".ts", ".js", ".mjs", ".mts"}
    }


def copied_from(block: Block, files: dict[Path, str]) -> Path | None:
    """The file under examples/ that holds the block verbatim, if any."""
    text = block.text.rstrip("\n")
    return next((p for p, content in files.items() if text and text in content), None)


def classify() -> tuple[list[Example], list[Example], list[tuple[Example, Path]]]:
    """(run here, marked as not runnable, copied from examples/), over every page."""
    files = example_files()
    run, marked, copied = [], [], []
    for page in pages():
        for b in blocks(page):
            if b.kind is None:
                continue
            example = Example(page, b)
            if b.not_run:
                marked.append(example)
            elif b.kind == "ts" and (source := copied_from(b, files)):
                copied.append((example, source))
            else:
                run.append(example)
    return run, marked, copied


RUN, MARKED, COPIED = classify()

# What particular examples must print, beyond running cleanly: (text in the block, patterns).
EXPECTED = [
    # README: the quick start (the same curl `make dev` prints, and the SDKs).
    ("x-agent-name: TriagingAgent", [
        r"(?m)^HTTP/1\.1 200",
        r"(?mi)^x-gateway-provider: google-ai-studio",
        r"Simulated answer from google-ai-studio/gemini-3\.5-flash-lite: Label this issue: the build fails",
    ]),
    ('caller = {"x-agent-name": "TriagingAgent"', [
        r"Simulated answer from google-ai-studio/gemini-3\.5-flash-lite: Is this issue a bug or a feature request\?",
        r"Simulated answer from google-ai-studio/gemini-3\.5-flash-lite: Review this diff",
    ]),
    ('const headers = { "x-agent-name": "TriagingAgent"', [
        r"Simulated answer from google-ai-studio/gemini-3\.5-flash-lite: Is this issue a bug or a feature request\?",
        r"Simulated answer from google-ai-studio/gemini-3\.5-flash-lite: Review this diff",
    ]),
    # api.md
    ("/v1/models", [r'"id":\s*"triage"', r'"id":\s*"openai/gpt-4o-mini"']),
    ("no-such-route", [r"(?m)^404 model_not_found$"]),
    ("add_label", [
        r'(?m)^tool call: add_label \{"label":\s*"bug"\}$',
        r"(?m)^answer: Simulated answer from google-ai-studio/gemini-3\.5-flash-lite: The build fails on main",
    ]),
    ('"json_schema": {"name": "label"', [r'^\{"label":\s*"bug",\s*"reason":\s*"Label this issue']),
    ('print("answer cost"', [r"(?m)^answer cost \d[\d.e-]* USD$", r"(?m)^stream cost \d[\d.e-]* USD$"]),
    ('console.log("answer cost"', [r"(?m)^answer cost \d[\d.e-]* USD$", r"(?m)^stream cost \d[\d.e-]* USD$"]),
    ("Idempotency-Key: $KEY", [
        # The first run is charged and not a replay; its repeat is the replay, charged nothing.
        r"(?i)\Afirst:\r?\nx-gateway-cost-usd: 0\.\d*[1-9]\d*\r?\nrepeat:\r?\n",
        r"(?mi)^x-gateway-idempotent-replay: true\r?$",
        r"(?mi)^x-gateway-cost-usd: 0\r?$",
    ]),
    # budgets.md, analytics.md, native-routes.md, operations.md
    ("/limits", [r'"unit":\s*"USD"', r'"provider":\s*"google-ai-studio"']),
    ("group_by=provider,day", [r'"object":\s*"analytics"', r"provider,requests,", r"(?m)^total,"]),
    ("import anthropic", [r"anthropic/claude-haiku-4-5", r"openai/gpt-4o-mini", r"google-ai-studio/gemini-3\.5-flash-lite"]),
    ("/healthz", [r'"status":\s*"ok"']),
    ("/admin/gateways", [r'"success":\s*true']),
]


def test_every_example_is_run_or_marked():
    kinds = set()
    for page in pages():
        all_blocks = blocks(page)
        # An example must be tagged with its language, or the runner would never see it.
        for b in all_blocks:
            if b.kind is None and b.lang in {"", "text"}:
                assert not re.search(r"(?m)^\s*(curl\s|from \w+ import |import \w+|const \w+ = )", b.text), (
                    f"{page_name(page)}:{b.line}: a code example without a language tag: tag it (sh, python, ts)"
                )
        run = [e for e in RUN if e.page == page]
        marked = [e for e in MARKED if e.page == page]
        copied = [(e, s) for e, s in COPIED if e.page == page]
        for e in marked:
            assert len(e.block.not_run) >= 10, f"{e.where}: say why the block cannot run here"
        for e, source in copied:
            # Covered by that example's own test; stated here so a drifted copy is not silently skipped.
            assert e.block.text.rstrip("\n") in source.read_text(), f"{e.where} is no longer verbatim in {source}"
        # Every example is exactly one of: run below, marked, copied from examples/.
        accounted = {e.block.line for e in run} | {e.block.line for e in marked} | {e.block.line for e, _ in copied}
        assert accounted == {b.line for b in all_blocks if b.kind}, page_name(page)
        kinds |= {e.block.kind for e in run}
    assert {"curl", "python", "ts"} <= kinds, f"the docs' runnable examples were not found: {kinds}"
    assert {e.page.name for e in RUN} >= {"README.md", "api.md", "budgets.md", "analytics.md", "operations.md"}


def test_every_expectation_meets_an_example():
    """An expectation whose example was reworded would check nothing: each meets one to run."""
    for needle, _ in EXPECTED:
        assert any(needle in e.block.text for e in RUN), f"no runnable example contains {needle!r}"


@pytest.fixture(scope="module")
def workdir(worker) -> Path:
    """Where shell examples run: a .dev.vars with the session's tokens (as `make dev` writes one in
    the repository), and a `curl` that fails on an HTTP error status, so an example answering
    401 or 404 fails the test instead of printing an error body."""
    d = Path(tempfile.mkdtemp(prefix="agw-docs-"))
    (d / ".dev.vars").write_text(f"AGENT_TOKEN={AGENT_TOKEN}\nADMIN_TOKEN={ADMIN_TOKEN}\n")
    bindir = d / "bin"
    bindir.mkdir()
    real_curl = subprocess.run(["bash", "-c", "command -v curl"], capture_output=True, text=True).stdout.strip()
    shim = bindir / "curl"
    shim.write_text(f'#!/bin/sh\nexec "{real_curl}" --fail-with-body "$@"\n')
    shim.chmod(shim.stat().st_mode | stat.S_IEXEC)
    return d


def run_block(block: Block, worker, workdir: Path) -> subprocess.CompletedProcess:
    source = substitute(block.text, worker.url, AGENT_TOKEN)
    if block.kind == "curl":
        env = child_env(PATH=f"{workdir / 'bin'}{os.pathsep}{os.environ['PATH']}")
        return subprocess.run(
            ["bash", "-euo", "pipefail", "-c", source],
            cwd=workdir, env=env, capture_output=True, text=True, timeout=60,
        )
    if block.kind == "python":
        return run_python(source, cwd=workdir)
    return run_typescript(source, ARTIFACTS / "docs")


@pytest.mark.parametrize("example", RUN, ids=[e.id for e in RUN])
def test_docs_example_runs(example, worker, workdir):
    block = example.block
    done = run_block(block, worker, workdir)
    printed = done.stdout + done.stderr
    SEEN.append((f"{example.where} ({block.kind})", "", printed.encode()))
    assert done.returncode == 0, f"{example.where} failed ({done.returncode}):\n{block.text}\n{printed[-3000:]}"
    assert done.stdout.strip(), f"{example.where} printed nothing"
    for needle, patterns in EXPECTED:
        if needle in block.text:
            for pattern in patterns:
                assert re.search(pattern, done.stdout), f"{example.where}: {pattern!r} not in\n{done.stdout[-3000:]}"


# ---------------------------------------------------------------------------------------------
# Links and names


FENCE = re.compile(r"^\s*(```+|~~~+)")
HEADING = re.compile(r"^(#{1,6})\s+(.+?)\s*#*\s*$")
LINK = re.compile(r"(?<!!)\[(?:[^\[\]]|\[[^\]]*\])*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")


def prose_lines(path: Path) -> list[tuple[int, str]]:
    """The page's lines outside fenced code blocks, with their 1-based numbers."""
    out, fence = [], None
    for n, line in enumerate(path.read_text().splitlines(), 1):
        m = FENCE.match(line)
        if fence:
            if m and m.group(1)[0] == fence[0] and len(m.group(1)) >= len(fence):
                fence = None
            continue
        if m:
            fence = m.group(1)
            continue
        out.append((n, line))
    return out


def slug(heading: str) -> str:
    """GitHub's anchor of a heading: the text as rendered (links and code unwrapped), lower case,
    every character but letters, digits, `_`, `-` and spaces dropped, spaces made `-`."""
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", heading)
    text = re.sub(r"<[^>]+>", "", text).lower()
    text = "".join(c for c in text if c.isalnum() or c in "_- ")
    return text.replace(" ", "-")


def anchors(path: Path) -> set[str]:
    seen: dict[str, int] = {}
    found = set()
    for _, line in prose_lines(path):
        if m := HEADING.match(line):
            base = slug(m.group(2))
            n = seen.get(base, 0)
            seen[base] = n + 1
            found.add(base if n == 0 else f"{base}-{n}")
    return found


def links(path: Path) -> list[tuple[int, str]]:
    found = []
    for n, line in prose_lines(path):
        # Code spans are not links (`[[d1_databases]]`, a JSON example).
        line = re.sub(r"(`+)(?:(?!\1).)+?\1", "", line)
        found += [(n, m.group(1)) for m in LINK.finditer(line)]
    return found


def test_relative_links_resolve():
    checked = 0
    for page in pages():
        for line, target in links(page):
            if re.match(r"^[a-z][a-z0-9+.-]*:", target, re.I):
                continue  # http:, https:, mailto: — not this repository's
            path_part, _, anchor = target.partition("#")
            where = f"{page_name(page)}:{line}: {target}"
            dest = (page.parent / path_part).resolve() if path_part else page
            assert dest.exists(), f"{where}: no such file"
            assert ROOT in dest.parents or dest == ROOT, f"{where}: points outside the repository"
            if anchor:
                assert dest.suffix == ".md", f"{where}: an anchor into a file that is not Markdown"
                assert anchor in anchors(dest), f"{where}: no heading `#{anchor}` in {page_name(dest)}"
            checked += 1
    assert checked >= 30, f"only {checked} relative links found: is the link pattern still right?"


def test_the_slugs_are_githubs():
    assert slug("Gateway management: `agw setup` and `agw doctor`") == "gateway-management-agw-setup-and-agw-doctor"
    assert slug("What `/limits` shows") == "what-limits-shows"
    assert slug("Routing, retries and failover") == "routing-retries-and-failover"
    assert slug("Runbook: the 5xx codes") == "runbook-the-5xx-codes"


def wrangler_vars_and_secrets() -> tuple[set[str], set[str]]:
    """The names of wrangler.toml's [vars] (set or commented out), and the secrets its comments
    name (`#   NAME   what`)."""
    names, secrets, section = set(), set(), None
    for line in (ROOT / "wrangler.toml").read_text().splitlines():
        if m := re.match(r"^\s*\[+([^\]]+)\]+\s*$", line):
            section = m.group(1)
            continue
        if section == "vars" and (m := re.match(r"^\s*#?\s*([A-Z][A-Z0-9_]+)\s*=", line)):
            names.add(m.group(1))
        if m := re.match(r"^#\s{2,}([A-Z][A-Z0-9_]+)\s", line):
            secrets.add(m.group(1))
    return names, secrets


def first_column(path: Path, header: str) -> set[str]:
    """The names in the first column of the table whose header row starts with `header`."""
    names, inside = set(), False
    for _, line in prose_lines(path):
        if line.startswith(f"| {header} |"):
            inside = True
            continue
        if inside and not line.startswith("|"):
            inside = False
        if inside:
            first = line.split("|")[1]
            names |= set(re.findall(r"`([A-Z][A-Z0-9_]+)`", first))
    return names


def test_every_var_and_secret_is_documented():
    names, secrets = wrangler_vars_and_secrets()
    assert {"CF_ACCOUNT_ID", "SUBREQUEST_LIMIT", "GATEWAY_CONFIG"} <= names, names
    assert {"AGENT_TOKEN", "CF_AIG_TOKEN", "ALERT_WEBHOOK_URL"} <= secrets, secrets
    assert not names - first_column(OPERATIONS, "var"), f"docs/operations.md lacks vars: {names - first_column(OPERATIONS, 'var')}"
    assert not secrets - first_column(OPERATIONS, "secret"), (
        f"docs/operations.md lacks secrets: {secrets - first_column(OPERATIONS, 'secret')}"
    )
