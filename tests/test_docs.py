"""The documentation stays true to the code: every relative link in README.md, docs/ and
results/README.md names a file in the repository (or one kept in history, ``*.git``
pointers), and docs/language.md's op table is the op table of ``programs/ops.py``."""

from __future__ import annotations

import re
from pathlib import Path

from programs.ops import OPS

ROOT = Path(__file__).resolve().parents[1]
LINK = re.compile(r"\]\(([^)\s#]+)(?:#[^)]*)?\)")


def _pages() -> list[Path]:
    return [ROOT / "README.md", ROOT / "results" / "README.md", *sorted((ROOT / "docs").glob("*.md"))]


def test_every_relative_link_in_the_docs_resolves():
    broken = []
    for page in _pages():
        for target in LINK.findall(page.read_text(encoding="utf-8")):
            if re.match(r"[a-z]+:", target):  # http:, https:, mailto:
                continue
            path = (page.parent / target).resolve()
            if not path.exists() and not Path(f"{path}.git").exists():
                broken.append(f"{page.relative_to(ROOT)} -> {target}")
    assert not broken, "broken links:\n" + "\n".join(broken)


def test_the_language_page_lists_every_op_with_its_arity():
    text = (ROOT / "docs" / "language.md").read_text(encoding="utf-8")
    rows = re.findall(r"^\| `(\w+)`[^|]*\| (\d) \| (\w+) \|", text, flags=re.MULTILINE)
    documented = {name: (int(arity), kind) for name, arity, kind in rows}
    assert documented == {name: (op.arity, op.kind) for name, op in OPS.items()}


def test_every_docs_page_is_in_the_index():
    index = (ROOT / "docs" / "README.md").read_text(encoding="utf-8")
    missing = [p.name for p in (ROOT / "docs").glob("*.md")
               if p.name != "README.md" and f"]({p.name})" not in index]
    assert not missing, f"docs/README.md does not link {missing}"
