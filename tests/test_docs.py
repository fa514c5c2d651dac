"""README.md and docs/*.md: every relative link and anchor resolves, every `python -m MODULE` is a module of
the project (or one of a few named tools), and every configs/*.yaml named exists. Reads text only: no model,
no torch."""

import importlib.util
import re
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
PAGES = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
PROJECT_PACKAGES = ("src", "export", "tests")
# Run with `python -m` in the pages but not part of the project: each must at least be installed.
TOOLS = {"pytest", "venv", "pip", "http.server"}

FENCE = re.compile(r"^(```|~~~).*?^\1[^\n]*$", re.M | re.S)
INLINE_CODE = re.compile(r"(`+)(?!`).*?(?<!`)\1(?!`)", re.S)
LINK = re.compile(r"!?\[(?:[^\[\]]|\[[^\]]*\])*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
HEADING = re.compile(r"^ {0,3}(#{1,6})[ \t]+(.+?)[ \t#]*$", re.M)
HTML_ANCHOR = re.compile(r"<a\s+(?:id|name)=\"([^\"]+)\"", re.I)


def page_id(page: Path) -> str:
    return str(page.relative_to(REPO))


def prose(text: str) -> str:
    """The text outside fenced code blocks and inline code spans (where links and headings live)."""
    return INLINE_CODE.sub("", FENCE.sub("", text))


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: the rendered text, lowercase, punctuation dropped, spaces to '-'."""
    text = re.sub(r"!?\[([^\]]*)\]\([^)]*\)", r"\1", heading)  # a link in a heading: its text
    text = re.sub(r"<[^>]+>", "", text)  # inline HTML
    text = text.strip().lower()
    text = re.sub(r"[^\w\- ]", "", text)  # keeps letters, digits, '_', '-' and spaces
    return text.replace(" ", "-")


def anchors(page: Path) -> set[str]:
    text = FENCE.sub("", page.read_text())
    seen: dict[str, int] = {}
    found = set(HTML_ANCHOR.findall(text))
    for _, title in HEADING.findall(text):
        base = slug(title)
        n = seen.get(base, 0)
        seen[base] = n + 1
        found.add(base if n == 0 else f"{base}-{n}")  # GitHub numbers repeated headings
    return found


def links(page: Path) -> list[str]:
    return LINK.findall(prose(page.read_text()))


def broken_links(page: Path) -> list[str]:
    broken = []
    for target in links(page):
        if re.match(r"^[a-z][a-z0-9+.-]*:", target, re.I):  # http:, https:, mailto: ...: not ours to check
            continue
        path, _, anchor = target.partition("#")
        dest = (page.parent / path).resolve() if path else page
        if not dest.exists():
            broken.append(f"{target}: no such file {dest.relative_to(REPO) if dest.is_relative_to(REPO) else dest}")
        elif anchor and dest.suffix == ".md" and anchor not in anchors(dest):
            broken.append(f"{target}: no heading with anchor #{anchor} in {page_id(dest)}")
        elif anchor and dest.suffix != ".md":
            broken.append(f"{target}: an anchor into a file that is not Markdown")
    return broken


def commands(text: str) -> str:
    return text.replace("\\\n", " ")  # shell line continuations: `torchrun ... \` then `-m src.train`


def modules(page: Path) -> set[str]:
    text = commands(page.read_text())
    found = set(re.findall(r"\bpython3?\s+-m\s+([A-Za-z_][\w.]*)", text))
    found |= set(re.findall(r"\btorchrun\b[^\n]*?\s-m\s+([A-Za-z_][\w.]*)", text))
    return {m.rstrip(".") for m in found}


def is_project_module(name: str) -> bool:
    """`python -m name` runs a file of the repository: a.b is a/b.py or a/b/__main__.py, inside packages."""
    parts = name.split(".")
    if parts[0] not in PROJECT_PACKAGES:
        return False
    for i in range(1, len(parts)):
        if not (REPO.joinpath(*parts[:i]) / "__init__.py").is_file():
            return False
    path = REPO.joinpath(*parts)
    return path.with_suffix(".py").is_file() or (path / "__main__.py").is_file()


def configs(page: Path) -> set[str]:
    return set(re.findall(r"\bconfigs/([\w.-]+\.ya?ml)\b", page.read_text()))


# ---- the checker itself --------------------------------------------------------------------------------


def test_slugs_follow_github():
    assert slug("Stopping, resuming, repeating") == "stopping-resuming-repeating"
    assert slug("The default's size, and the frontier") == "the-defaults-size-and-the-frontier"
    assert slug("Same answers as predict.py") == "same-answers-as-predictpy"
    assert slug("AMD EPYC Zen 3, AVX2 only (2026-12-01)") == "amd-epyc-zen-3-avx2-only-2026-12-01"
    assert slug("The `default` recipe: 99.60 ± 0.03%") == "the-default-recipe-9960--003"
    assert slug("Weight decay 2.5e-4 kept") == "weight-decay-25e-4-kept"


def test_the_checker_finds_what_is_broken(tmp_path, monkeypatch):
    monkeypatch.setattr(sys.modules[__name__], "REPO", tmp_path)
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "a.md").write_text("# A page\n\n## Its part\n\n## Its part\n\n```bash\n# not a heading\n```\n")
    page = tmp_path / "README.md"
    page.write_text(
        "# Top\n\n[ok](docs/a.md) [ok](docs/a.md#its-part) [ok](docs/a.md#its-part-1) [ok](#top) [web](https://x.org)\n"
        "[gone](docs/b.md) [bad anchor](docs/a.md#not-a-heading) [bad](#nowhere) `[in code](docs/c.md)`\n"
        "```bash\npython -m src.nothing  # in a code block: still checked\ntorchrun --nnodes 2 \\\n    -m export.gone\n```\n"
        "configs/default.yaml and configs/<recipe>.yaml\n"
    )
    assert [b.split(":")[0] for b in broken_links(page)] == ["docs/b.md", "docs/a.md#not-a-heading", "#nowhere"]
    assert modules(page) == {"src.nothing", "export.gone"}
    assert configs(page) == {"default.yaml"}


# ---- the pages ---------------------------------------------------------------------------------------------


def test_the_pages_are_there():
    names = {p.name for p in PAGES}
    assert {"README.md", "training.md", "results.md", "edge.md", "web.md", "benchmarks.md", "testing.md",
            "model-card.md"} <= names, names


@pytest.mark.parametrize("page", PAGES, ids=page_id)
def test_every_relative_link_and_anchor_resolves(page):
    assert broken_links(page) == []


@pytest.mark.parametrize("page", PAGES, ids=page_id)
def test_every_python_m_names_a_module_of_the_project(page):
    named = modules(page)
    unknown = sorted(m for m in named if not is_project_module(m) and m not in TOOLS)
    assert unknown == [], f"{page_id(page)}: `python -m` of modules the project does not have: {unknown}"
    missing_tools = sorted(m for m in named & TOOLS if importlib.util.find_spec(m) is None)
    assert missing_tools == [], f"{page_id(page)}: tools not installed: {missing_tools}"


@pytest.mark.parametrize("page", PAGES, ids=page_id)
def test_every_config_named_exists(page):
    missing = sorted(c for c in configs(page) if not (REPO / "configs" / c).is_file())
    assert missing == [], f"{page_id(page)}: no such configs/: {missing}"
