"""Every `curl`, Python and TypeScript example in README.md runs, as written, against the session's
Worker and simulator: only the base URL (http://127.0.0.1:8787) and the token of
.dev.vars.example are substituted (curl examples that read the token from .dev.vars run in a
directory whose .dev.vars holds the session's token). A block that cannot run here (it needs a
Cloudflare account) carries `<!-- not run by tests: why -->` right before it; a ```ts block
copied verbatim from a file under examples/ is covered by that example's own test. So a new
example cannot land without being run."""

from __future__ import annotations

import os
import re
import stat
import subprocess
import tempfile
from pathlib import Path

import pytest

from conftest import AGENT_TOKEN, ARTIFACTS, ROOT, SEEN
from readme_examples import Block, blocks, run_python, run_typescript, substitute, child_env

EXAMPLES = ROOT / "examples"


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


def classify() -> tuple[list[Block], list[Block], list[tuple[Block, Path]]]:
    """(run here, marked as not runnable, copied from examples/)."""
    files = example_files()
    run, marked, copied = [], [], []
    for b in blocks():
        if b.kind is None:
            continue
        if b.not_run:
            marked.append(b)
        elif b.kind == "ts" and (source := copied_from(b, files)):
            copied.append((b, source))
        else:
            run.append(b)
    return run, marked, copied


RUN, MARKED, COPIED = classify()

# What particular examples must print, beyond running cleanly: (text in the block, patterns).
EXPECTED = [
    ("x-agent-name: TriagingAgent", [
        r"(?m)^HTTP/1\.1 200",
        r"(?mi)^x-gateway-provider: google-ai-studio",
        r"Simulated answer from google-ai-studio/gemini-3\.5-flash-lite: Label this issue: the build fails",
    ]),
    ("group_by=provider,day", [r'"object":\s*"analytics"', r"provider,requests,", r"(?m)^total,"]),
    ('caller = {"x-agent-name": "TriagingAgent"', [
        r"Simulated answer from google-ai-studio/gemini-3\.5-flash-lite: Is this issue a bug or a feature request\?",
        r"Simulated answer from google-ai-studio/gemini-3\.5-flash-lite: Review this diff",
    ]),
    ('const headers = { "x-agent-name": "TriagingAgent"', [
        r"Simulated answer from google-ai-studio/gemini-3\.5-flash-lite: Is this issue a bug or a feature request\?",
        r"Simulated answer from google-ai-studio/gemini-3\.5-flash-lite: Review this diff",
    ]),
    # The Cost section: usage.cost read from an answer and from a stream's final usage event.
    ('print("answer cost"', [r"(?m)^answer cost \d[\d.e-]* USD$", r"(?m)^stream cost \d[\d.e-]* USD$"]),
    ('console.log("answer cost"', [r"(?m)^answer cost \d[\d.e-]* USD$", r"(?m)^stream cost \d[\d.e-]* USD$"]),
    ("import anthropic", [r"anthropic/claude-haiku-4-5", r"openai/gpt-4o-mini", r"google-ai-studio/gemini-3\.5-flash-lite"]),
]


def test_every_example_is_run_or_marked():
    all_blocks = blocks()
    # An example must be tagged with its language, or the runner would never see it.
    for b in all_blocks:
        if b.kind is None and b.lang in {"", "text"}:
            assert not re.search(r"(?m)^\s*(curl\s|from \w+ import |import \w+|const \w+ = )", b.text), (
                f"README.md:{b.line}: a code example without a language tag: tag it (sh, python, ts)"
            )
    for b in MARKED:
        assert len(b.not_run) >= 10, f"README.md:{b.line}: say why the block cannot run here"
    for b, source in COPIED:
        # Covered by that example's own test; stated here so a drifted copy is not silently skipped.
        assert b.text.rstrip("\n") in source.read_text(), f"README.md:{b.line} is no longer verbatim in {source}"
    kinds = {b.kind for b in RUN}
    assert {"curl", "python", "ts"} <= kinds, f"the README's runnable examples were not found: {kinds}"
    # Every example is exactly one of: run below, marked, copied from examples/.
    accounted = {b.line for b in RUN} | {b.line for b in MARKED} | {b.line for b, _ in COPIED}
    assert accounted == {b.line for b in all_blocks if b.kind}


@pytest.fixture(scope="module")
def workdir(worker) -> Path:
    """Where shell examples run: a .dev.vars with the session's token (as `make dev` writes one in
    the repository), and a `curl` that fails on an HTTP error status, so an example answering
    401 or 404 fails the test instead of printing an error body."""
    d = Path(tempfile.mkdtemp(prefix="agw-readme-"))
    (d / ".dev.vars").write_text(f"AGENT_TOKEN={AGENT_TOKEN}\n")
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
    return run_typescript(source, ARTIFACTS / "readme")


@pytest.mark.parametrize("block", RUN, ids=[b.id for b in RUN])
def test_readme_example_runs(block, worker, workdir):
    done = run_block(block, worker, workdir)
    printed = done.stdout + done.stderr
    SEEN.append((f"README.md:{block.line} ({block.kind})", "", printed.encode()))
    assert done.returncode == 0, f"README.md:{block.line} failed ({done.returncode}):\n{block.text}\n{printed[-3000:]}"
    assert done.stdout.strip(), f"README.md:{block.line} printed nothing"
    for needle, patterns in EXPECTED:
        if needle in block.text:
            for pattern in patterns:
                assert re.search(pattern, done.stdout), f"README.md:{block.line}: {pattern!r} not in\n{done.stdout[-3000:]}"
