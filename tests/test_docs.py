"""Every ```python block in README.md and docs/*.md runs, and its assertions hold.

Conventions for documentation authors:

- Each block runs in a fresh module namespace.
- A block whose first line is `# continued` runs in the namespace of the block
  before it in the same file (which must itself have run), so a walkthrough can
  build on earlier steps.
- A block whose first line is `# not-run: <reason>` is compiled (so it must be
  valid Python) but not executed; the test is reported as skipped with the reason.
  Use it sparingly.

A run of blocks joined by `# continued` is one test, named after the file and the
line of its first block. Tracebacks point at lines of the Markdown file itself.
Examples must join every thread they start: a thread still alive after the
example (given a short grace period) fails the test.
"""

from __future__ import annotations

import re
import sys
import threading
import types
from dataclasses import dataclass, field
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
DOC_FILES = (ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md")))

OPENING_FENCE = re.compile(r"^(?P<indent>[ \t]*)(?P<fence>`{3,}|~{3,})[ \t]*(?P<info>[^`]*)$")
CONTINUED = re.compile(r"#\s*continued\b")
NOT_RUN = re.compile(r"#\s*not-run\b:?(?P<reason>.*)")

# Seconds a thread started by an example may take to finish after the example returns.
THREAD_GRACE = 5.0


class DocFormatError(ValueError):
    """A Markdown file breaks the conventions this module relies on."""


@dataclass
class Block:
    """One fenced ```python block: its source (dedented) and where it starts."""

    path: str
    line: int  # 1-based line number of the first line of code
    source: str
    continued: bool = False
    not_run_reason: str | None = None


@dataclass
class Chain:
    """Blocks that share one namespace: a block and the `# continued` blocks after it."""

    blocks: list[Block] = field(default_factory=list)

    @property
    def test_id(self) -> str:
        first = self.blocks[0]
        return f"{first.path}:{first.line}"


def _classify(block: Block) -> Block:
    lines = block.source.splitlines()
    first = lines[0].strip() if lines else ""
    if CONTINUED.match(first):
        block.continued = True
        return block
    not_run = NOT_RUN.match(first)
    if not_run:
        reason = not_run.group("reason").strip()
        if not reason:
            raise DocFormatError(
                f"{block.path}:{block.line}: `# not-run:` needs a reason after the colon"
            )
        block.not_run_reason = reason
    return block


def extract_blocks(text: str, path: str) -> list[Block]:
    """The ```python blocks of a Markdown text, in order, with their 1-based line numbers."""
    blocks: list[Block] = []
    lines = text.splitlines()
    index = 0
    while index < len(lines):
        opening = OPENING_FENCE.match(lines[index])
        index += 1
        if not opening:
            continue
        indent, fence = opening.group("indent"), opening.group("fence")
        info = opening.group("info").strip().split()
        closing = re.compile(rf"^[ \t]*{re.escape(fence[0])}{{{len(fence)},}}[ \t]*$")
        start = index
        while index < len(lines) and not closing.match(lines[index]):
            index += 1
        if index == len(lines):
            raise DocFormatError(f"{path}:{start}: code fence opened here is never closed")
        body = lines[start:index]
        index += 1
        if not info or info[0] != "python":
            continue
        dedented = [line[len(indent) :] if line.startswith(indent) else line for line in body]
        blocks.append(_classify(Block(path, start + 1, "\n".join(dedented) + "\n")))
    return blocks


def chain_blocks(blocks: list[Block]) -> list[Chain]:
    """Group blocks into chains; a `# continued` block must follow a block that runs."""
    chains: list[Chain] = []
    for block in blocks:
        if block.continued:
            previous = chains[-1].blocks[-1] if chains else None
            if previous is None or previous.not_run_reason is not None:
                raise DocFormatError(
                    f"{block.path}:{block.line}: `# continued` must follow an executed "
                    "```python block in the same file"
                )
            chains[-1].blocks.append(block)
        else:
            chains.append(Chain([block]))
    return chains


def collect_chains() -> list[Chain]:
    chains: list[Chain] = []
    for doc in DOC_FILES:
        if doc.exists():
            relative = doc.relative_to(ROOT).as_posix()
            chains.extend(chain_blocks(extract_blocks(doc.read_text(encoding="utf-8"), relative)))
    return chains


def _compile(block: Block) -> types.CodeType:
    # Leading blank lines make the code's line numbers those of the Markdown file.
    padded = "\n" * (block.line - 1) + block.source
    return compile(padded, str(ROOT / block.path), "exec", dont_inherit=True)


def _fresh_module(chain: Chain) -> types.ModuleType:
    name = "docs_example_" + re.sub(r"\W", "_", chain.test_id)
    module = types.ModuleType(name)
    module.__file__ = str(ROOT / chain.blocks[0].path)
    return module


def _assert_no_thread_left(
    before: set[threading.Thread], test_id: str, grace: float = THREAD_GRACE
) -> None:
    left = [t for t in threading.enumerate() if t not in before]
    for stray in left:
        stray.join(grace)
    alive = [t.name for t in left if t.is_alive()]
    assert not alive, f"{test_id} left threads running: {alive}; examples must join their threads"


CHAINS = collect_chains()


@pytest.mark.filterwarnings("error::pytest.PytestUnraisableExceptionWarning")
@pytest.mark.parametrize("chain", CHAINS, ids=[chain.test_id for chain in CHAINS])
def test_doc_example(chain: Chain) -> None:
    codes = [_compile(block) for block in chain.blocks]
    reason = chain.blocks[0].not_run_reason
    if reason is not None:
        pytest.skip(f"{chain.test_id} is marked not-run: {reason}")
    module = _fresh_module(chain)
    before = set(threading.enumerate())
    sys.modules[module.__name__] = module  # dataclasses, pickle and typing look modules up
    try:
        for code in codes:
            exec(code, module.__dict__)
    finally:
        del sys.modules[module.__name__]
    _assert_no_thread_left(before, chain.test_id)


# --------------------------------------------------------------------------- the extractor itself


def test_documentation_is_collected() -> None:
    """Each guide page exists and contributes runnable examples (guards against a silent 0)."""
    by_file: dict[str, int] = {}
    for chain in CHAINS:
        for block in chain.blocks:
            if block.not_run_reason is None:
                by_file[block.path] = by_file.get(block.path, 0) + 1
    for page in ("README.md", "docs/index.md", "docs/guide.md", "docs/backends.md",
                 "docs/migrating.md"):
        assert by_file.get(page, 0) >= 1, f"{page} has no executed ```python block"


SAMPLE = """\
Intro.

```python
x = 1
```

```bash
echo not python
```

- A list item:

  ```python
  # continued
  assert x == 1
  ```

~~~python
# not-run: needs a network
import socket
~~~

````python
y = "```"
````
"""


def test_extract_blocks_reads_languages_indentation_and_markers() -> None:
    blocks = extract_blocks(SAMPLE, "sample.md")
    assert [b.line for b in blocks] == [4, 14, 19, 24]
    assert blocks[0].source == "x = 1\n"
    assert blocks[1].continued and blocks[1].source == "# continued\nassert x == 1\n"
    assert blocks[2].not_run_reason == "needs a network"
    assert blocks[3].source == 'y = "```"\n'
    chains = chain_blocks(blocks)
    assert [len(c.blocks) for c in chains] == [2, 1, 1]
    assert chains[0].test_id == "sample.md:4"


def test_line_numbers_in_tracebacks_are_those_of_the_markdown_file() -> None:
    block = extract_blocks("text\n\n```python\nok = 1\nassert ok == 2\n```\n", "sample.md")[0]
    with pytest.raises(AssertionError) as failure:
        exec(_compile(block), {})
    assert failure.traceback[-1].lineno + 1 == 5


def test_an_example_that_leaves_a_thread_running_fails() -> None:
    before = set(threading.enumerate())
    release = threading.Event()
    stray = threading.Thread(target=release.wait, name="stray")
    stray.start()
    try:
        with pytest.raises(AssertionError, match=r"left threads running: \['stray'\]"):
            _assert_no_thread_left(before, "sample.md:1", grace=0.01)
    finally:
        release.set()
        stray.join()
    _assert_no_thread_left(before, "sample.md:1", grace=0.01)


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("```python\n# continued\nx = 1\n```\n", "must follow an executed"),
        ("```python\n# not-run: slow\nx = 1\n```\n```python\n# continued\n```\n",
         "must follow an executed"),
        ("```python\n# not-run:\nx = 1\n```\n", "needs a reason"),
        ("```python\nx = 1\n", "never closed"),
    ],
)
def test_malformed_documents_are_rejected(text: str, problem: str) -> None:
    with pytest.raises(DocFormatError, match=problem):
        chain_blocks(extract_blocks(text, "bad.md"))
