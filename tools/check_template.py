"""Prove the starter works as a copier template: `make check-template` (CI runs it).

For the combinations that matter (core only, catalogs, catalogs + sync, everything), copier
copies this tree as "Acme Enricher"; each copy must hold only its features, be named after the
App, pass its own tests (not for everything: that is this repository's own `make test`) and
serve its welcome page under `make run`'s launcher. Then a customised catalogs-only copy takes
an upstream fix with `copier update`: the fix arrives, the customisation stays, dropped features
stay dropped, nothing conflicts.

The copies use this repository's venv (the same lock) and copier from its own venv, pinned.
Loopback only; it cleans up after itself.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
COPIER = "copier==9.19.1"
FEATURES = ("catalogs", "sync", "events", "extensions")
COMBINATIONS = {
    "core only": [],
    "catalogs": ["catalogs"],
    "catalogs + sync": ["catalogs", "sync"],
    "everything": list(FEATURES),
}
#: how much of its own tests a copy runs: all of them, the quick ones, or none (everything is
#: this repository itself, whose `make test` runs them all); CI's time is the limit
TESTS = {"core only": "quick", "catalogs": "all", "catalogs + sync": "quick", "everything": "none"}
NAME = "Acme Enricher"


def run(*command: str | Path, cwd: Path, env: dict[str, str] | None = None) -> str:
    """Run a command; its output, or SystemExit with it when it fails."""
    done = subprocess.run(
        [str(part) for part in command],
        cwd=cwd,
        env={**os.environ, **(env or {})},
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        said = f"{done.stdout}\n{done.stderr}"
        sys.exit(f"failed ({done.returncode}): {' '.join(map(str, command))}\n{said}")
    return done.stdout


def snapshot(into: Path) -> Path:
    """This tree as git tracks it (uncommitted changes included), as a repository of its own:
    what copier copies from, and what an upstream commit then changes."""
    files = run("git", "ls-files", "--cached", "--others", "--exclude-standard", cwd=ROOT).split(
        "\n"
    )
    for name in filter(None, files):
        source = ROOT / name
        if source.is_file():
            target = into / name
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target)
    git = ("git", "-c", "user.name=template", "-c", "user.email=template@example.com")
    run("git", "init", "-q", "-b", "main", cwd=into)
    run("git", "add", "-A", cwd=into)
    run(*git, "commit", "-q", "-m", "the starter", cwd=into)
    return into


def copier_bin(folder: Path) -> Path:
    venv = folder / "copier-venv"
    run(sys.executable, "-m", "venv", venv, cwd=folder)
    run(
        venv / "bin" / "pip",
        "install",
        "--quiet",
        "--disable-pip-version-check",
        COPIER,
        cwd=folder,
    )
    return venv / "bin" / "copier"


def copy(copier: Path, template: Path, dst: Path, features: list[str]) -> None:
    run(
        copier,
        "copy",
        "--trust",
        "--defaults",
        "--vcs-ref",
        "HEAD",
        "--data",
        f"app_name={NAME}",
        "--data",
        f"features={json.dumps(features)}",
        template,
        dst,
        cwd=template.parent,
    )


def check_layout(dst: Path, features: list[str]) -> None:
    kept = set(features)
    for name in FEATURES:
        for folder in (dst / "app" / name, dst / "tests" / name):
            if folder.exists() != (name in kept):
                sys.exit(f"{folder}: {'missing' if name in kept else 'should not be there'}")
    readme = (dst / "README.md").read_text()
    if not readme.startswith(f"# {NAME}\n") or "<!-- [" in readme:
        sys.exit(f"{dst}/README.md: not named after the App, or markers left")
    if not (dst / ".copier-answers.yml").is_file():
        sys.exit(f"{dst}: no .copier-answers.yml")
    if "check-template" in (dst / ".ci" / "run").read_text():
        sys.exit(f"{dst}/.ci/run: runs the template's own check, which a copy does not have")


def check_tests(dst: Path, *, quick: bool = False) -> None:
    """The copy's own tests, as its `make test` runs them (with this repository's venv), in a
    git repository as a copy is kept; `quick`: without the browser, worker and server tests
    (this repository's own run has them all)."""
    git = ("git", "-c", "user.name=copier", "-c", "user.email=copier@example.com")
    run("git", "init", "-q", "-b", "main", cwd=dst)
    run("git", "add", "-A", cwd=dst)
    run(*git, "commit", "-q", "-m", "my App", cwd=dst)
    pytest = ROOT / ".venv" / "bin" / "pytest"
    only = ["-m", "not browser and not worker and not server"] if quick else []
    run(pytest, "-n", "3", "--dist", "worksteal", "-q", "-p", "no:cacheprovider", *only, cwd=dst)


def check_welcome_page(dst: Path) -> None:
    """`make run`'s launcher in the copy serves its welcome page, named after the App."""
    from launcher import free_port  # this repository's: a free loopback port

    port, pim_port = free_port(), free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AKENEO_", "DATABASE_URL"))}
    python = str(ROOT / ".venv" / "bin" / "python")
    server = subprocess.Popen(
        [python, "-m", "launcher", "--no-reload", "--port", str(port), "--pim-port", str(pim_port)],
        cwd=dst,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=5) as answer:
                    page = answer.read().decode()
                break
            except OSError:
                if time.monotonic() > deadline or server.poll() is not None:
                    sys.exit(f"{dst}: make run served no page")
                time.sleep(0.5)
        if NAME not in page or "Your Akeneo App is running" not in page:
            sys.exit(f"{dst}: the welcome page does not name {NAME}")
    finally:
        server.terminate()
        server.wait(30)


def check_update(copier: Path, template: Path, dst: Path) -> None:
    """A customised catalogs-only copy takes an upstream fix of the core, cleanly."""
    git = ("git", "-c", "user.name=copier", "-c", "user.email=copier@example.com")
    run("git", "init", "-q", "-b", "main", cwd=dst)
    run("git", "add", "-A", cwd=dst)
    run(*git, "commit", "-q", "-m", "my App", cwd=dst)
    welcome = dst / "templates" / "welcome.html"
    mine = '  <p id="acme">Acme\'s own words.</p>\n'
    welcome.write_text(
        welcome.read_text().replace("{% block content %}\n", "{% block content %}\n" + mine)
    )
    run("git", "commit", "-q", "-am", "my own welcome", cwd=dst)

    fixed = template / "app" / "pim_url.py"
    fix = "# an upstream fix of the core (check_template)\n"
    fixed.write_text(fixed.read_text() + fix)
    run(
        "git",
        "-c",
        "user.name=t",
        "-c",
        "user.email=t@example.com",
        "commit",
        "-q",
        "-am",
        "a fix",
        cwd=template,
    )

    run(copier, "update", "--trust", "--defaults", "--vcs-ref", "HEAD", cwd=dst)
    if fix not in (dst / "app" / "pim_url.py").read_text():
        sys.exit("copier update: the upstream fix did not reach the copy")
    if mine not in welcome.read_text():
        sys.exit("copier update: the copy's own change was lost")
    if (dst / "app" / "sync").exists() or (dst / "tests" / "events").exists():
        sys.exit("copier update: a dropped feature came back")
    status = run("git", "status", "--porcelain", "--untracked-files=all", cwd=dst)
    rejected = [line for line in status.splitlines() if line.endswith(".rej")]
    markers = subprocess.run(
        ["git", "grep", "-l", "-e", "^<<<<<<< "], cwd=dst, capture_output=True, text=True
    ).stdout.strip()
    if rejected or markers:
        sys.exit(f"copier update left conflicts: {rejected or markers}")


def main() -> None:
    parser = argparse.ArgumentParser(prog="python tools/check_template.py", description=__doc__)
    parser.add_argument("--only", choices=list(COMBINATIONS), help="one combination")
    args = parser.parse_args()
    sys.path.insert(0, str(ROOT))
    with tempfile.TemporaryDirectory(prefix="akeneo-template-") as folder:
        work = Path(folder)
        template = snapshot(work / "template")
        copier = copier_bin(work)
        for label, features in COMBINATIONS.items():
            if args.only and label != args.only:
                continue
            started = time.monotonic()
            dst = work / label.replace(" ", "-").replace("+", "and")
            copy(copier, template, dst, features)
            check_layout(dst, features)
            if TESTS[label] != "none":
                check_tests(dst, quick=TESTS[label] == "quick")
            check_welcome_page(dst)
            print(f"{label}: copied, tested and served in {time.monotonic() - started:.0f} s")  # noqa: T201
        if not args.only:
            dst = work / "updated"
            copy(copier, template, dst, ["catalogs"])
            check_update(copier, template, dst)
            print("copier update: the fix arrived, the customisation stayed, no conflict")  # noqa: T201


if __name__ == "__main__":
    main()
