"""copier's task: a copy keeps its chosen features' lines only, and takes the App's name. The
whole template (copies that run, an update that merges) is `make check-template`, in CI."""

from __future__ import annotations

from pathlib import Path

from tools.template import apply, prune, with_needs

MARKED = """\
A = 1
# [sync]
B = 2
# [/sync]
C = 3  # [events]
<!-- [extensions] -->
D = 4
<!-- [/extensions] -->
E = 5
"""


def test_a_feature_brings_what_it_builds_on() -> None:
    assert with_needs({"events"}) == {"events", "sync", "catalogs"}
    assert with_needs({"catalogs"}) == {"catalogs"}
    assert with_needs(set()) == set()


def test_the_lines_of_dropped_features_go_and_every_marker_with_them() -> None:
    assert prune(MARKED, {"sync", "events"}) == "A = 1\nD = 4\nE = 5\n"
    assert prune(MARKED, set()) == "A = 1\nB = 2\nC = 3\nD = 4\nE = 5\n"


def test_a_copy_is_unwired_from_its_dropped_features_and_named_after_its_app(
    tmp_path: Path,
) -> None:
    (tmp_path / "app").mkdir()
    (tmp_path / "app" / "__init__.py").write_text(
        "from .catalogs import init_app as init_catalogs\n"
        "from .sync import init_app as init_sync\n"
        "def create_app():\n"
        "    init_catalogs(app)  # the catalogs\n"
        "    init_sync(app)  # the sync\n"
    )
    (tmp_path / "README.md").write_text("# Flask Akeneo App\nThe akeneo-flask-app subscriber.\n")
    apply(tmp_path, {"catalogs"}, "Acme Enricher")
    wired = (tmp_path / "app" / "__init__.py").read_text()
    assert "init_sync" not in wired and "init_catalogs(app)" in wired
    readme = (tmp_path / "README.md").read_text()
    assert readme == "# Acme Enricher\nThe acme-enricher subscriber.\n"


def test_what_only_the_template_has_never_reaches_a_copy(tmp_path: Path) -> None:
    makefile = "test:\n\tpytest\n# [template]\ncheck-template:\n# [/template]\n"
    (tmp_path / "Makefile").write_text(makefile)
    apply(tmp_path, {"catalogs", "sync", "events", "extensions"}, "Flask Akeneo App")
    assert (tmp_path / "Makefile").read_text() == "test:\n\tpytest\n"
