"""The example output shown in the docs is real output: regenerated and compared, so it cannot drift.

A fenced block right after one of these HTML comments (invisible on the
rendered page) is output, not prose:

    <!-- output of the python block above ... -->
        What the ```python block above prints (stdout), run as `tests/test_docs.py`
        runs it (a `# continued` chain runs from its first block) in a module
        named `example`.

    <!-- output of the $ commands below ... -->
        A ```console block: each `$ ` line is run with bash from the repository
        root (`python` is this interpreter; no CONCURRENCY_* or PYTEST_*
        settings, 80 columns), and followed by what it printed, stdout and
        stderr together.

The test regenerates each block and compares it with the document. Only what
legitimately varies between runs is ignored: durations (`0.12s`), the `^^^`
lines under a traceback (they differ between Python versions) and trailing
spaces. Absolute paths under the repository are written relative to it.

When the output changes on purpose (a new report layout), rewrite the blocks:

    python tests/test_docs_output.py --write

which touches only the blocks whose output changed, then review the diff.
"""

from __future__ import annotations

import contextlib
import difflib
import io
import os
import re
import subprocess
import sys
import threading
import types
from dataclasses import dataclass
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))  # for `python tests/test_docs_output.py`

from test_docs import (
    DOC_FILES,
    OPENING_FENCE,
    ROOT,
    Block,
    Chain,
    DocFormatError,
    _assert_no_thread_left,
    _compile,
    chain_blocks,
    extract_blocks,
)

MARKER = re.compile(r"^\s*<!--\s*output of the (?P<source>python block above|\$ commands below)\b")
REGENERATE = "python tests/test_docs_output.py --write"
COMMAND_TIMEOUT = 300  # seconds for one `$ ` command
EXAMPLE_MODULE = "example"


@dataclass
class OutputBlock:
    """A fenced block of generated output in a Markdown file."""

    path: str  # relative to the repository root
    marker_line: int  # 1-based
    source: str  # "python" or "console"
    first: int  # 0-based index of the first line inside the fence
    end: int  # 0-based index of the closing fence
    text: str  # what the document shows now
    python: list[Block] | None = None  # the chain to run; the output is its last block's

    @property
    def test_id(self) -> str:
        return f"{self.path}:{self.marker_line}"

    def commands(self) -> list[str]:
        return [line[2:] for line in self.text.splitlines() if line.startswith("$ ")]


def find_output_blocks(text: str, path: str) -> list[OutputBlock]:
    """Every marked output block of a Markdown text, in order."""
    lines = text.splitlines()
    chains = chain_blocks(extract_blocks(text, path))
    found: list[OutputBlock] = []
    for index, line in enumerate(lines):
        marker = MARKER.match(line)
        if not marker:
            continue
        where = f"{path}:{index + 1}"
        opening_at = index + 1
        while opening_at < len(lines) and not lines[opening_at].strip():
            opening_at += 1
        opening = OPENING_FENCE.match(lines[opening_at]) if opening_at < len(lines) else None
        if not opening:
            raise DocFormatError(f"{where}: an output marker must be followed by a fenced block")
        fence = opening.group("fence")
        closing = re.compile(rf"^[ \t]*{re.escape(fence[0])}{{{len(fence)},}}[ \t]*$")
        end = opening_at + 1
        while end < len(lines) and not closing.match(lines[end]):
            end += 1
        if end == len(lines):
            raise DocFormatError(f"{path}:{opening_at + 1}: code fence opened here is never closed")
        block = OutputBlock(path, index + 1, "python" if marker.group("source").startswith("python")
                            else "console", opening_at + 1, end, "\n".join(lines[opening_at + 1:end]))
        if block.source == "python":
            block.python = _chain_ending_before(chains, index + 1, where)
        elif not block.commands():
            raise DocFormatError(f"{where}: the console block below has no `$ ` command line")
        found.append(block)
    return found


def _chain_ending_before(chains: list[Chain], line: int, where: str) -> list[Block]:
    """The blocks to run for the python block just above `line`: its chain, up to it."""
    for chain in reversed(chains):
        for position in range(len(chain.blocks) - 1, -1, -1):
            block = chain.blocks[position]
            if block.line < line:
                if block.not_run_reason is not None:
                    raise DocFormatError(f"{where}: the python block above is marked not-run")
                return chain.blocks[: position + 1]
    raise DocFormatError(f"{where}: there is no python block above this output marker")


def collect_output_blocks() -> list[OutputBlock]:
    found: list[OutputBlock] = []
    for doc in DOC_FILES:
        if doc.exists():
            relative = doc.relative_to(ROOT).as_posix()
            found.extend(find_output_blocks(doc.read_text(encoding="utf-8"), relative))
    return found


# --------------------------------------------------------------------------- producing the output


def run_python(blocks: list[Block]) -> str:
    """Run a chain of doc blocks in a fresh module; return what the last one printed."""
    codes = [_compile(block) for block in blocks]
    module = types.ModuleType(EXAMPLE_MODULE)
    module.__file__ = str(ROOT / blocks[0].path)
    printed = io.StringIO()
    before = set(threading.enumerate())
    saved = sys.modules.get(EXAMPLE_MODULE)
    sys.modules[EXAMPLE_MODULE] = module
    try:
        for code in codes[:-1]:
            exec(code, module.__dict__)
        with contextlib.redirect_stdout(printed):
            exec(codes[-1], module.__dict__)
    finally:
        if saved is None:
            del sys.modules[EXAMPLE_MODULE]
        else:
            sys.modules[EXAMPLE_MODULE] = saved
    _assert_no_thread_left(before, f"{blocks[0].path}:{blocks[0].line}")
    return printed.getvalue()


# Settings that change what a command prints: a terminal's width, colour, pytest's CI mode.
PRESENTATION = ("PYTHONPATH", "COLUMNS", "LINES", "CI", "BUILD_NUMBER", "FORCE_COLOR",
                "PY_COLORS", "PYTHON_COLORS", "NO_COLOR", "TERM")


def command_env() -> dict[str, str]:
    env = {key: value for key, value in os.environ.items()
           if not key.startswith(("CONCURRENCY_", "PYTEST_")) and key not in PRESENTATION}
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    env["PYTHONUNBUFFERED"] = "1"  # stdout and stderr interleave as they were written
    env["COLUMNS"] = "80"
    env["NO_COLOR"] = "1"
    env["PYTEST_ADDOPTS"] = "-p no:cacheprovider"  # leave no cache behind in the repository
    return env


def run_console(commands: list[str]) -> str:
    """Each command after its `$ ` line, with what it printed (stdout and stderr together)."""
    parts: list[str] = []
    for command in commands:
        done = subprocess.run(["bash", "-c", command], cwd=ROOT, env=command_env(),
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                              timeout=COMMAND_TIMEOUT)
        parts.append(f"$ {command}\n{done.stdout}")
    return "".join(parts)


def generate(block: OutputBlock) -> str:
    """The block's output from a real run, as the document should show it."""
    if block.python is not None:
        return present(run_python(block.python))
    return present(run_console(block.commands()))


# --------------------------------------------------------------------------- comparing


def present(text: str) -> str:
    """Output as written into a document: paths relative to the repository, no trailing spaces."""
    text = text.replace(str(ROOT) + os.sep, "").replace(str(ROOT), ".")
    lines = [line.rstrip() for line in text.splitlines()]
    while lines and not lines[-1]:
        lines.pop()
    while lines and not lines[0]:
        lines.pop(0)
    return "\n".join(lines)


DURATION = re.compile(r"\b\d+\.\d+s\b")
CARETS = re.compile(r"^\s*[\^~]+\s*$")


def normalise(text: str) -> str:
    """What must match: `present`ed output without durations or traceback caret lines."""
    lines = [DURATION.sub("<duration>", line) for line in present(text).splitlines()
             if not CARETS.match(line)]
    return "\n".join(lines)


def differences(block: OutputBlock, fresh: str) -> str:
    diff = difflib.unified_diff(normalise(block.text).splitlines(), normalise(fresh).splitlines(),
                                f"{block.test_id} (the document)", "a real run now", lineterm="")
    return "\n".join(diff)


OUTPUT_BLOCKS = collect_output_blocks()


@pytest.mark.parametrize("block", OUTPUT_BLOCKS, ids=[block.test_id for block in OUTPUT_BLOCKS])
def test_documented_output_is_real_output(block: OutputBlock) -> None:
    fresh = generate(block)
    if normalise(fresh) != normalise(block.text):
        pytest.fail(
            f"the output shown at {block.test_id} is not what the code prints now; if the "
            f"change is intended, run `{REGENERATE}` and review the diff\n"
            + differences(block, fresh),
            pytrace=False,
        )


def test_documented_budgets_are_the_real_ones() -> None:
    from concurrency._testing import DEFAULT_REAL_ITERATIONS
    from concurrency.backends.model.api import DEFAULT_ITERATIONS, DEFAULT_MAX_STEPS, TEST_ITERATIONS

    text = (ROOT / "docs" / "model-checking.md").read_text(encoding="utf-8")
    test, check = TEST_ITERATIONS, DEFAULT_ITERATIONS
    rows = [
        f"| `@concurrency.test` | {DEFAULT_REAL_ITERATIONS} runs of the body on real threads | "
        f"{test['random']} executions | {test['pct']} executions | {test['dfs']} executions |",
        "| `concurrency.check`, `python -m concurrency check` | (always the model) | "
        f"{check['random']} executions | {check['pct']} executions | {check['dfs']} executions |",
        f"(default {DEFAULT_MAX_STEPS})",
    ]
    for row in rows:
        assert row in text, f"docs/model-checking.md should say: {row}"


def test_the_docs_have_generated_output() -> None:
    by_file = {block.path for block in OUTPUT_BLOCKS}
    assert "docs/model-checking.md" in by_file
    assert {block.source for block in OUTPUT_BLOCKS} == {"python", "console"}


# --------------------------------------------------------------------------- the machinery itself


SAMPLE = """\
```python
print("one")
```

```python
# continued
print("two")
```

<!-- output of the python block above -->
```text
two
```

<!-- output of the $ commands below, from the repository root -->

```console
$ echo hi
hi
```
"""


def test_markers_are_found_with_what_produces_them() -> None:
    python, console = find_output_blocks(SAMPLE, "sample.md")
    assert (python.source, python.marker_line, python.text) == ("python", 10, "two")
    assert python.python is not None and [b.line for b in python.python] == [2, 6]
    assert (console.source, console.commands(), console.text) == ("console", ["echo hi"], "$ echo hi\nhi")
    assert normalise(run_python(python.python)) == "two"
    assert run_console(console.commands()) == "$ echo hi\nhi\n"


def test_only_what_legitimately_varies_is_ignored() -> None:
    shown = f"ran  \n  File \"{ROOT}/x.py\", line 3\n    f()\n    ^^^\ndone in 0.50s\n\n"
    assert present(shown) == 'ran\n  File "x.py", line 3\n    f()\n    ^^^\ndone in 0.50s'
    assert normalise(shown) == normalise('ran\n  File "x.py", line 3\n    f()\ndone in 12.25s')
    assert normalise(shown) != normalise('ran\n  File "x.py", line 4\n    f()\ndone in 0.50s')


@pytest.mark.parametrize(("text", "problem"), [
    ("<!-- output of the python block above -->\n```text\nx\n```\n", "no python block above"),
    ("```python\n# not-run: no\n```\n<!-- output of the python block above -->\n```text\n```\n",
     "marked not-run"),
    ("<!-- output of the $ commands below -->\n```console\nno command\n```\n", r"no `\$ ` command"),
    ("<!-- output of the $ commands below -->\nprose\n", "must be followed by a fenced block"),
])
def test_malformed_markers_are_rejected(text: str, problem: str) -> None:
    with pytest.raises(DocFormatError, match=problem):
        find_output_blocks(text, "bad.md")


# --------------------------------------------------------------------------- regenerating


def write_all() -> int:
    """Rewrite every output block whose output changed; return how many."""
    changed = 0
    for doc in DOC_FILES:
        if not doc.exists():
            continue
        relative = doc.relative_to(ROOT).as_posix()
        lines = doc.read_text(encoding="utf-8").splitlines()
        blocks = find_output_blocks("\n".join(lines), relative)
        for block in reversed(blocks):  # from the end, so earlier line numbers stay valid
            fresh = generate(block)
            if normalise(fresh) == normalise(block.text):
                continue
            print(f"{block.test_id}: rewritten\n{differences(block, fresh)}\n")
            lines[block.first:block.end] = fresh.splitlines()
            changed += 1
        if blocks:
            doc.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return changed


if __name__ == "__main__":
    if sys.argv[1:] != ["--write"]:
        sys.exit(f"usage: {REGENERATE}   (rewrites the generated output blocks of the docs)")
    count = write_all()
    print(f"{count} output block{'' if count == 1 else 's'} rewritten")
