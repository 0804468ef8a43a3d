"""The user-facing text (docs/, benchmarks/, examples/, README.md) and the code read as reference.

- No work-log narration: "session 4", "this session", "issue 3", "seed 000" name nothing a reader can
  open. A measured figure says when, on which machine and with which command; a reference names the
  paper and equation or a docs section.
- The links hold: every file under docs/ that the text points to exists, and every docs section cited
  by name (``docs/dmft.md, "Horizon windows"``) or by number (``docs/validation.md 7c``) is a heading of
  that file. The citations in the code (prcy/, kernels/, analysis/, tests/) are checked too.

Plain text checks: nothing here imports prcy, so this file runs without the compiled package
(``python -m pytest tests/test_docs.py --noconftest``).
"""
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PROSE = ["docs", "benchmarks", "examples"]
TEXT_SUFFIXES = {".md", ".py", ".toml", ".jl", ".txt", ".rst", ".csv"}
CODE = ["prcy", "kernels", "analysis", "tests", "benchmarks", "examples"]
CODE_SUFFIXES = {".py", ".pyx", ".pxd", ".toml"}

NARRATION = re.compile(
    r"\bsessions?[\s_-]*\d"          # session 4, session-6, sessions 2
    r"|\bthis\s+session\b"
    r"|\bissues?[\s#_-]*\d"          # issue 3, issue #3, issue-3
    r"|\bseeds?[\s_-]*00\d"          # seed 000 (the project's name for a paper)
    r"|(?<![.\d])\b00\d(?:'s|/|\s+(?:eqs?|figs?|conventions)\b)",     # 002 eq 24, 003's, 000/...
    re.IGNORECASE)


def _files(folders, suffixes):
    for folder in folders:
        for path in sorted((ROOT / folder).rglob("*")):
            if path.is_file() and path.suffix in suffixes and "__pycache__" not in path.parts:
                yield path


def _prose_files():
    yield ROOT / "README.md"
    yield from _files(PROSE, TEXT_SUFFIXES)


def _rel(path):
    return path.relative_to(ROOT).as_posix()


def _narrated_files():
    yield from _prose_files()
    yield from (p for p in _files(["prcy", "kernels", "analysis", "tests"], CODE_SUFFIXES)
                if p.name != "test_docs.py")     # this file spells the patterns out


@pytest.mark.parametrize("path", list(_narrated_files()), ids=_rel)
def test_no_work_log_narration(path):
    hits = [f"{_rel(path)}:{number}: {line.strip()}"
            for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
            for _ in NARRATION.finditer(line)]
    assert not hits, ("work-log narration (say what holds now, with date, machine and command; cite a "
                      "paper and equation or a docs section):\n" + "\n".join(hits))


def test_the_pattern_catches_what_it_should():
    for text in ["in session 4", "Session-6 stops", "(this session)", "issue 3's target", "Issue #12",
                 "seed 000", "seeds 003", "(002 eq 24)", "003's conventions", "000/PHYSICS.md", "004 figs 4.1"]:
        assert NARRATION.search(text), text
    for text in ["seed 0", "seed 3", "--seeds 64", "a session of the OS scheduler", "an issue with",
                 "SeedSequence(seed, spawn_key=(i,))", "tissue 3",
                 "0.004 in the norm", "max |dm| = 0.005/0.006"]:
        assert not NARRATION.search(text), text


def _headings(doc):
    return [re.sub(r"[`*]", "", line.lstrip("#").strip()).lower()
            for line in (ROOT / "docs" / doc).read_text(encoding="utf-8").splitlines() if line.startswith("#")]


DOC_LINK = re.compile(r"docs/([\w-]+\.md)")
NAMED_SECTION = re.compile(r'docs/([\w-]+\.md),?\s+(?:section\s+)?\\?"([^"\\]+)\\?"')
NUMBERED_SECTION = re.compile(r"docs/([\w-]+\.md),?\s+(?:section\s+)?(\d+[a-z]?)\b")
FIGURE = re.compile(r"(?:docs/)?(figures/[\w.-]+\.(?:png|svg|pdf)|data/[\w.-]+\.csv)")


def _citations():
    for path in list(_prose_files()) + list(_files(CODE, CODE_SUFFIXES)):
        text = path.read_text(encoding="utf-8")
        for pattern, kind in [(DOC_LINK, "file"), (NAMED_SECTION, "named"), (NUMBERED_SECTION, "numbered"),
                              (FIGURE, "figure")]:
            for match in pattern.finditer(text):
                yield _rel(path), kind, match.groups()


@pytest.mark.parametrize("source, kind, target", sorted(set(_citations())),
                         ids=lambda x: x if isinstance(x, str) else "/".join(x))
def test_cited_docs_and_sections_exist(source, kind, target):
    if kind == "file":
        assert (ROOT / "docs" / target[0]).is_file(), f"{source} cites docs/{target[0]}, which does not exist"
    elif kind == "figure":
        assert (ROOT / "docs" / target[0]).is_file(), f"{source} cites docs/{target[0]}, which does not exist"
    elif kind == "named":
        doc, name = target
        name = re.sub(r"[\s#]+", " ", re.sub(r"[`*]", "", name)).strip().lower()   # a citation may wrap
        assert any(name in h for h in _headings(doc)), f'{source} cites docs/{doc}, "{target[1]}": no such heading'
    else:
        doc, number = target
        assert any(re.match(rf"{number}\b[.:]?", h) for h in _headings(doc)), \
            f"{source} cites docs/{doc} section {number}: no heading starts with it"
