"""The docs' code examples, as a reader sees them: the fenced blocks of README.md and docs/*.md,
which of them are marked as not runnable here, and how to run one as written (only its base URL
and token substituted).

Shared by test_docs.py (every example, against the session's Worker), test_make_dev.py (the
README's examples against what `make dev` started) and test_deployment.py (the migrations
docs/operations.md gives)."""

from __future__ import annotations

import os
import re
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"
DOCS = ROOT / "docs"
VENV_PYTHON = ROOT / ".venv" / "bin" / "python"
ESBUILD = ROOT / "node_modules" / ".bin" / "esbuild"

# What the docs' examples are written against: `make dev` on its default port, with the token of
# .dev.vars.example. A test substitutes these two and nothing else.
README_BASE_URL = "http://127.0.0.1:8787"
README_TOKEN = "local-agent-token"

# `<!-- not run by tests: <why> -->` on the line before a fence (blank lines allowed between).
NOT_RUN = re.compile(r"^\s*<!--\s*not run by tests:\s*(.+?)\s*-->\s*$")

SHELL_LANGS = {"sh", "bash", "shell", "console", "zsh"}
PYTHON_LANGS = {"python", "py", "python3"}
TS_LANGS = {"ts", "typescript", "js", "javascript", "mjs"}


@dataclass
class Block:
    lang: str
    text: str
    line: int  # 1-based line of the opening fence
    not_run: str | None  # the reason given by a `not run by tests` marker

    @property
    def kind(self) -> str | None:
        """`curl`, `python`, `ts`: the examples that must be run (or marked); None: prose-like
        blocks (commands such as `make dev`, output, JSON shapes, configuration)."""
        if self.lang in SHELL_LANGS and re.search(r"(^|[\s;|&(])curl\s", self.text):
            return "curl"
        if self.lang in PYTHON_LANGS:
            return "python"
        if self.lang in TS_LANGS:
            return "ts"
        return None

    @property
    def id(self) -> str:
        return f"{self.kind or self.lang or 'text'}-line{self.line}"


def pages() -> list[Path]:
    """Every page whose examples must run: README.md, then docs/*.md."""
    return [README, *sorted(DOCS.glob("*.md"))]


def page_name(path: Path) -> str:
    """A page as the tests name it: its path from the repository's root."""
    return path.relative_to(ROOT).as_posix()


def blocks(path: Path = README) -> list[Block]:
    found: list[Block] = []
    lines = path.read_text().splitlines()
    i = 0
    while i < len(lines):
        m = re.match(r"^(\s*)(```+|~~~+)\s*([\w+-]*)", lines[i])
        if not m:
            i += 1
            continue
        indent, fence, lang = m.group(1), m.group(2), m.group(3).lower()
        start = i
        body: list[str] = []
        i += 1
        while i < len(lines) and not lines[i].strip().startswith(fence):
            body.append(lines[i][len(indent):] if lines[i].startswith(indent) else lines[i])
            i += 1
        i += 1  # the closing fence
        reason = None
        j = start - 1
        while j >= 0 and not lines[j].strip():
            j -= 1
        if j >= 0 and (mark := NOT_RUN.match(lines[j])):
            reason = mark.group(1)
        found.append(Block(lang, "\n".join(body) + "\n", start + 1, reason))
    return found


def substitute(text: str, base_url: str, token: str) -> str:
    return text.replace(README_BASE_URL, base_url.rstrip("/")).replace(README_TOKEN, token)


def child_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "ANTHROPIC_", "GEMINI_", "GOOGLE_"))}
    env.update(NO_COLOR="1", **extra)
    return env


def run_python(source: str, cwd: Path, timeout: float = 90) -> subprocess.CompletedProcess:
    script = Path(tempfile.mkdtemp(prefix="docs-py-")) / "example.py"
    script.write_text(source)
    return subprocess.run(
        [str(VENV_PYTHON), str(script)], cwd=cwd, env=child_env(), capture_output=True, text=True, timeout=timeout
    )


def run_typescript(source: str, workdir: Path, timeout: float = 90) -> subprocess.CompletedProcess:
    """Transpiles with the project's esbuild (an ES module: the examples use top-level await) and
    runs it with node. `workdir` must be inside a tree with node_modules (bare imports resolve from
    the file's directory upwards)."""
    workdir.mkdir(parents=True, exist_ok=True)
    here = Path(tempfile.mkdtemp(prefix="docs-ts-", dir=workdir))
    (here / "example.ts").write_text(source)
    built = subprocess.run(
        [str(ESBUILD), "example.ts", "--format=esm", "--platform=node", "--target=node20",
         "--log-level=warning", "--outfile=example.mjs"],
        cwd=here, capture_output=True, text=True, timeout=60,
    )
    if built.returncode != 0:
        return built
    return subprocess.run(
        ["node", "example.mjs"], cwd=here, env=child_env(), capture_output=True, text=True, timeout=timeout
    )
