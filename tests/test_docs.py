"""The README and docs/ stay true: links resolve, the front door stays short, the limits they quote are the code's."""

from __future__ import annotations

import importlib
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md")), ROOT / "training-runs" / "README.md"]
LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")
# Words of a lab notebook, not of a description of the software and its measurements.
HISTORY = re.compile(r"\b(this session|later session|sessions of this project|ticket|issue \d+|the issue'?s?|"
                     r"no GPU was lent|Intel machine|this AMD|later we tried|previous release)\b", re.IGNORECASE)


def _anchor(heading: str) -> str:
    """GitHub's anchor of a markdown heading."""
    text = re.sub(r"[^\w\- ]", "", heading.strip().lower())
    return text.replace(" ", "-")


def _anchors(page: Path) -> set[str]:
    return {_anchor(m.group(1)) for m in re.finditer(r"^#+ (.+)$", page.read_text(encoding="utf-8"), re.M)}


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_links_resolve(page: Path):
    bad = []
    for target in LINK.findall(page.read_text(encoding="utf-8")):
        if re.match(r"[a-z]+://", target) or target.startswith("mailto:"):
            continue
        path, _, anchor = target.partition("#")
        dest = (page.parent / path).resolve() if path else page
        if not dest.exists():
            bad.append(f"{target}: no such file")
        elif anchor and dest.suffix == ".md" and anchor not in _anchors(dest):
            bad.append(f"{target}: no heading with that anchor")
    assert not bad, f"{page.name}: " + "; ".join(bad)


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_pages_describe_the_software_not_its_history(page: Path):
    hits = [m.group(0) for m in HISTORY.finditer(page.read_text(encoding="utf-8"))]
    assert not hits, f"{page.name}: {hits}"


def test_readme_is_a_front_door_that_starts_with_the_two_setup_commands():
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    assert len(text.splitlines()) <= 250
    first_block = re.search(r"```bash\n(.*?)```", text, re.S).group(1)
    assert [line.split("#")[0].strip() for line in first_block.strip().splitlines()] == ["make heal", "make test"]
    makefile = (ROOT / "Makefile").read_text(encoding="utf-8")
    assert "\nheal:" in makefile and "\ntest:" in makefile
    setup = (ROOT / "scripts" / "setup.sh").read_text(encoding="utf-8")
    assert "sketchheal\" heal --example" in setup or "sketchheal heal --example" in setup
    assert "-n 2" in setup and "install_browser.sh" in setup
    assert "make test" in (ROOT / ".ci" / "run").read_text(encoding="utf-8")


# (module, constant, how docs/security.md states it)
LIMITS = [
    ("sketchheal.utils.npfile", "MAX_MEMBER_BYTES", lambda v: v == 4 << 30, "4 GiB"),
    ("sketchheal.sketch.image", "MAX_IMAGE_PIXELS", lambda v: v == 40_000_000, "40 million pixels"),
    ("sketchheal.sketch.svg", "MAX_COORDINATE", lambda v: v == 1e9, "1e9"),
    ("sketchheal.demo.logic", "MAX_UPLOAD_MB", lambda v: v == 10, "10 MB"),
    ("sketchheal.demo.logic", "MAX_CANVAS_PIXELS", lambda v: v == 4096 * 4096, "4096 x 4096"),
]


@pytest.mark.parametrize("module, name, check, words", LIMITS, ids=[x[1] for x in LIMITS])
def test_security_page_quotes_the_limits_in_the_code(module, name, check, words):
    page = (ROOT / "docs" / "security.md").read_text(encoding="utf-8")
    assert f"`{name}` ({words}" in page
    value = getattr(importlib.import_module(module), name, None)
    assert value is not None, f"{module}.{name} is gone: update docs/security.md"
    assert check(value), f"{module}.{name} = {value!r}: update docs/security.md"
