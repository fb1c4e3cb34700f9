"""Two revisions of this repository side by side: temporary ``git worktree`` checkouts.

A benchmark runs each revision with its cwd and PYTHONPATH at that revision's
worktree (``crawl_env``), so that ``scrapy crawl`` finds that revision's
scrapy.cfg and imports its plt, with the same Python for both.
"""

from __future__ import annotations

import contextlib
import shutil
import signal
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from benchmarks.common import ROOT, child_env, log


class RevisionError(RuntimeError):
    """A revision that cannot be checked out or does not import its own plt."""


@dataclass(frozen=True)
class Revision:
    name: str  # "before" or "after"
    given: str  # as on the command line
    sha: str
    subject: str
    path: Path  # its worktree

    @property
    def label(self) -> str:
        return f"{self.name} {self.sha[:7]}"


def _git(*argv: str) -> str:
    done = subprocess.run(
        ["git", "-C", str(ROOT), *argv], capture_output=True, text=True, check=False
    )
    if done.returncode != 0:
        raise RevisionError(f"git {' '.join(argv)}: {done.stderr.strip()}")
    return done.stdout.strip()


def resolve(rev: str) -> tuple[str, str]:
    """The commit ``rev`` names in this repository, and its subject line."""
    try:
        sha = _git("rev-parse", "--verify", "--quiet", f"{rev}^{{commit}}")
    except RevisionError:
        raise RevisionError(f"{rev!r} names no commit in {ROOT}") from None
    return sha, _git("log", "-1", "--format=%s", sha)


def crawl_env(worktree: Path) -> dict[str, str]:
    return child_env(PYTHONPATH=str(worktree))


def check_imports(worktree: Path) -> None:
    """The crawl at ``worktree`` must import that revision's plt, not this tree's."""
    code = "import plt; print(plt.__file__)"
    done = subprocess.run(
        [sys.executable, "-c", code],
        cwd=worktree,
        env=crawl_env(worktree),
        capture_output=True,
        text=True,
        check=False,
    )
    found = Path(done.stdout.strip() or "?").resolve()
    if done.returncode != 0 or not found.is_relative_to(worktree.resolve()):
        raise RevisionError(f"{worktree}: imports plt from {found} {done.stderr.strip()[-500:]}")


@contextlib.contextmanager
def worktrees(specs: dict[str, str]) -> Iterator[dict[str, Revision]]:
    """``git worktree add --detach`` for each (name, rev); removed when the block ends."""
    tmp = Path(tempfile.mkdtemp(prefix="plt-revisions-"))
    added: list[Path] = []
    try:
        revisions = {}
        for name, given in specs.items():
            sha, subject = resolve(given)
            path = tmp / name
            added.append(path)  # before the add: an interrupted add may have registered it
            _git("worktree", "add", "--detach", str(path), sha)
            check_imports(path)
            revisions[name] = Revision(name, given, sha, subject, path)
            log(f"{name}: {given} = {sha[:12]} {subject!r} in {path}")
        yield revisions
    finally:
        # A second Ctrl-C must not leave a worktree registered in the repository.
        previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
        try:
            for path in added:
                with contextlib.suppress(RevisionError):
                    _git("worktree", "remove", "--force", str(path))
            shutil.rmtree(tmp, ignore_errors=True)
            with contextlib.suppress(RevisionError):
                if any(str(p) in _git("worktree", "list", "--porcelain") for p in added):
                    _git("worktree", "prune")  # only entries whose folder is gone
        finally:
            signal.signal(signal.SIGINT, previous)
