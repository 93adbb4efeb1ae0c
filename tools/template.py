"""copier's task (see copier.yml): a fresh copy holds its chosen features only, named after its App.

    python tools/template.py --features catalogs,sync --app-name "Acme Enricher"   # in the copy

copier leaves out the folders of the features not chosen (`_exclude`); this removes what names
them elsewhere:
- in `app/__init__.py`, a dropped feature's import and its `init_<feature>(app)` line;
- in any text file, the lines marked for a dropped feature: a block between a comment line
  `[name]` and one `[/name]` (`# [sync]` … `# [/sync]`, `<!-- [sync] -->` … `<!-- [/sync] -->`),
  or one line ending with such a comment; the markers themselves go from every copy;
- then the starter's names become the App's: "Flask Akeneo App" and its slug.

It is deterministic: copier update runs it on the template's old and new versions alike, so
the three-way merge sees only the template's own change and yours.
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

FEATURES = ("catalogs", "sync", "events", "extensions")
#: what only the template itself has (its own check): marked `[template]`, never in a copy
TEMPLATE_ONLY = "template"
MARKERS = (*FEATURES, TEMPLATE_ONLY)
#: what each feature builds on
NEEDS = {"sync": ("catalogs",), "events": ("sync",), "extensions": ("sync",)}
STARTER_NAME, STARTER_SLUG = "Flask Akeneo App", "akeneo-flask-app"
TEXT_SUFFIXES = {".py", ".md", ".html", ".yaml", ".yml", ".toml", ".example", ".css", ".js", ".txt"}
TEXT_NAMES = {"Makefile", "Dockerfile", ".env.example", ".dockerignore", ".gitignore", "run"}
SKIPPED = {".git", ".venv", "node_modules", "__pycache__", "instance"}

_MARK = r"(?:#|<!--)\s*\[(/?)([a-z]+)\]\s*(?:-->)?"
BLOCK = re.compile(rf"^\s*{_MARK}\s*$")  # a line that is only a marker
TRAILING = re.compile(rf"\s*{_MARK}\s*$")  # a marker ending a line of content


def with_needs(chosen: set[str]) -> set[str]:
    """The chosen features and every feature they build on."""
    wanted = set(chosen)
    while missing := {n for f in wanted for n in NEEDS.get(f, ()) if n not in wanted}:
        wanted |= missing
    return wanted


def prune(text: str, dropped: set[str]) -> str:
    """`text` without the lines marked for a dropped feature, and without any marker."""
    kept: list[str] = []
    inside: list[str] = []  # the blocks open at this line
    for line in text.splitlines(keepends=True):
        block = BLOCK.match(line)
        if block and block.group(2) in MARKERS:
            closing, name = block.groups()
            if closing:
                if inside and inside[-1] == name:
                    inside.pop()
            else:
                inside.append(name)
            continue
        if any(name in dropped for name in inside):
            continue
        trailing = TRAILING.search(line)
        if trailing and trailing.group(2) in MARKERS:
            if trailing.group(2) in dropped:
                continue
            end = "\n" if line.endswith("\n") else ""
            line = line[: trailing.start()] + end
        kept.append(line)
    return "".join(kept)


def unwire(text: str, dropped: set[str]) -> str:
    """`app/__init__.py` without a dropped feature's import and `init_<feature>(app)` call."""
    lines = text.splitlines(keepends=True)
    for name in dropped:
        wiring = re.compile(rf"^(from \.{name} import |\s+init_{name}\(app\))")
        lines = [line for line in lines if not wiring.match(line)]
    return "".join(lines)


def slug(name: str) -> str:
    """ "Acme Enricher" → "acme-enricher"."""
    return re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-") or STARTER_SLUG


def text_files(root: Path) -> list[Path]:
    found = []
    for path in sorted(root.rglob("*")):
        if set(path.relative_to(root).parts) & SKIPPED or not path.is_file():
            continue
        if path.suffix in TEXT_SUFFIXES or path.name in TEXT_NAMES:
            found.append(path)
    return found


def apply(root: Path, chosen: set[str], app_name: str) -> None:
    """Make the copy at `root` hold `chosen` (and what it needs), named `app_name`."""
    dropped = set(FEATURES) - with_needs(chosen) | {TEMPLATE_ONLY}
    for path in text_files(root):
        original = path.read_text(encoding="utf-8")
        text = prune(original, dropped)
        if path.relative_to(root) == Path("app/__init__.py"):
            text = unwire(text, dropped)
        if app_name != STARTER_NAME:
            text = text.replace(STARTER_NAME, app_name).replace(STARTER_SLUG, slug(app_name))
        if text != original:
            path.write_text(text, encoding="utf-8")


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python tools/template.py", description=__doc__)
    parser.add_argument("--features", default=",".join(FEATURES))
    parser.add_argument("--app-name", default=STARTER_NAME)
    parser.add_argument("--root", type=Path, default=Path.cwd())
    args = parser.parse_args(argv)
    chosen = {f for f in args.features.split(",") if f}
    unknown = chosen - set(FEATURES)
    if unknown:
        parser.error(f"unknown features: {', '.join(sorted(unknown))}")
    apply(args.root, chosen, args.app_name)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
