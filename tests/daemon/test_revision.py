"""The git commit a specs directory stands at, read from ``.git`` without the git binary."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

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


def edit(path: Path) -> None:
    path.write_text("# edited\n")


def edit_same_size(path: Path) -> None:
    path.write_text(path.read_text().upper())


def stage(path: Path) -> None:
    edit(path)
    git(path.parent.parent, "add", path.relative_to(path.parent.parent).as_posix())


DIRT = [
    pytest.param(lambda r: None, False, id="a fresh commit is clean"),
    pytest.param(lambda r: edit(r / "specs" / "a.yaml"), True, id="an edited spec"),
    pytest.param(
        lambda r: edit_same_size(r / "specs" / "a.yaml"), True, id="an edit of the same size"
    ),
    pytest.param(lambda r: (r / "specs" / "a.yaml").unlink(), True, id="a removed spec"),
    pytest.param(lambda r: edit(r / "specs" / "new.yml"), True, id="an untracked spec"),
    pytest.param(lambda r: edit(r / "specs" / "notes.txt"), False, id="an untracked non-spec"),
    pytest.param(lambda r: edit(r / "specs" / ".hidden.yaml"), False, id="a hidden file"),
    pytest.param(lambda r: stage(r / "specs" / "a.yaml"), True, id="a staged edit"),
    pytest.param(lambda r: edit(r / "README.md"), False, id="an edit outside the specs"),
    pytest.param(lambda r: stage(r / "other" / "x.yaml"), False, id="staged outside the specs"),
]


@pytest.mark.parametrize(("change", "is_dirty"), DIRT)
@pytest.mark.parametrize("version", ["2", "4"])
def test_uncommitted_edits_of_the_specs_say_dirty(
    repo: Path, change: Any, is_dirty: bool, version: str
) -> None:
    (repo / "other").mkdir()
    (repo / "other" / "x.yaml").write_text("# other\n")
    (repo / "README.md").write_text("# readme\n")
    git(repo, "config", "index.version", version)
    git(repo, "add", ".")
    git(repo, "commit", "-q", "-m", "more")
    head = git(repo, "rev-parse", "HEAD")
    change(repo)
    assert git_revision(repo / "specs") == head + ("-dirty" if is_dirty else "")


def test_a_commit_makes_it_clean_again(repo: Path) -> None:
    stage(repo / "specs" / "a.yaml")
    assert (git_revision(repo / "specs") or "").endswith("-dirty")
    git(repo, "commit", "-q", "-m", "edit")
    assert git_revision(repo / "specs") == git(repo, "rev-parse", "HEAD")


def test_an_edit_in_a_worktree_is_dirty_there_only(repo: Path, tmp_path: Path) -> None:
    worktree = tmp_path / "wt"
    git(repo, "worktree", "add", "-q", "--detach", str(worktree))
    edit(worktree / "specs" / "a.yaml")
    head = git(repo, "rev-parse", "HEAD")
    assert git_revision(worktree / "specs") == head + "-dirty"
    assert git_revision(repo / "specs") == head
