"""Run the ``>>>`` examples of one section of a docs file (the text between its heading and the next
``## `` heading), as doctest does; used by the tests of the modules the section documents."""
import doctest
from pathlib import Path

DOCS = Path(__file__).resolve().parent.parent / "docs"


def run_section(name: str, heading: str) -> doctest.TestResults:
    """``(failed, attempted)`` of the examples in the section of ``docs/name`` that starts with ``heading``."""
    text = (DOCS / name).read_text(encoding="utf-8")
    start = text.index(heading)
    end = text.find("\n## ", start + 1)
    section = text[start:end if end >= 0 else len(text)].replace("```python", "").replace("```", "")
    test = doctest.DocTestParser().get_doctest(section, {}, f"docs/{name}: {heading}", None, 0)
    runner = doctest.DocTestRunner(optionflags=doctest.NORMALIZE_WHITESPACE)
    runner.run(test)
    return runner.summarize(verbose=False)
