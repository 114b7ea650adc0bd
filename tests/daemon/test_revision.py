"""The git commit a specs directory stands at, read from ``.git`` without the git binary."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from controller.daemon import git_revision

pytestmark = pytest.mark.skipif(
    shutil.which("git") is None and os.environ.get("CI") != "true",  # on CI: fail, not skip
    reason="needs git to make repos",
)


def git(repo: Path, *args: str) -> str:
    return subprocess.run(
        ["git", "-c", "user.email=t@example.com", "-c", "user.name=t", *args],
        cwd=repo,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    git(tmp_path, "init", "-q", "-b", "main")
    (tmp_path / "specs").mkdir()
    (tmp_path / "specs" / "a.yaml").write_text("# spec\n")
    git(tmp_path, "add", ".")
    git(tmp_path, "commit", "-q", "-m", "first")
    return tmp_path


def test_the_commit_of_a_checkout(repo: Path) -> None:
    assert git_revision(repo / "specs") == git(repo, "rev-parse", "HEAD")


def test_packed_refs_are_followed(repo: Path) -> None:
    git(repo, "pack-refs", "--all")
    assert not (repo / ".git" / "refs" / "heads" / "main").exists()
    assert git_revision(repo / "specs") == git(repo, "rev-parse", "HEAD")


def test_a_detached_head_and_a_worktree(repo: Path, tmp_path: Path) -> None:
    first = git(repo, "rev-parse", "HEAD")
    (repo / "specs" / "b.yaml").write_text("# more\n")
    git(repo, "add", ".")
    git(repo, "commit", "-q", "-m", "second")
    worktree = tmp_path / "wt"
    git(repo, "worktree", "add", "-q", "--detach", str(worktree), first)
    assert git_revision(worktree / "specs") == first
    assert git_revision(repo / "specs") == git(repo, "rev-parse", "HEAD")


def test_not_a_checkout_is_none(tmp_path: Path) -> None:
    (tmp_path / "specs").mkdir()
    assert git_revision(tmp_path / "specs") is None
