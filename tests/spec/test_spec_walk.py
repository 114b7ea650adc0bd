"""Walking the specs directory: what is read, what is ignored, and a symlinked root."""

from __future__ import annotations

import os
import socket
from collections.abc import Callable
from pathlib import Path

import pytest

from controller.spec import build_catalog, load_directory, load_file

Write = Callable[[str, str], Path]

POOL = "apiVersion: simfleet/v1\nkind: Pool\nmetadata: {name: %s}\nspec: {vmSize: x}\n"


def paths(root: Path) -> list[str]:
    return [f.path for f in load_directory(root).files]


class TestWhatIsRead:
    def test_yaml_and_yml_files_recursively_sorted(self, write: Write, specs: Path) -> None:
        write("b.yaml", POOL % "b")
        write("a.yml", POOL % "a")
        write("team/deep/c.yaml", POOL % "c")
        write("README.md", "# not a spec\n")
        write("notes.txt", "nope\n")
        assert paths(specs) == ["specs/a.yml", "specs/b.yaml", "specs/team/deep/c.yaml"]

    def test_a_symlink_to_a_file_inside_the_root_is_read(self, write: Write, specs: Path) -> None:
        write("real/a.yaml", POOL % "a")
        (specs / "link.yaml").symlink_to("real/a.yaml")
        assert paths(specs) == ["specs/link.yaml", "specs/real/a.yaml"]

    def test_a_missing_directory_is_reported_as_missing(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.chdir(tmp_path)
        result = load_directory(Path("specs"))
        assert (result.root, result.exists, result.files) == ("specs", False, ())

    def test_an_empty_directory_exists_with_no_files(self, specs: Path) -> None:
        result = load_directory(specs)
        assert (result.root, result.exists, result.files) == ("specs", True, ())

    def test_a_file_as_root_is_an_error(self, write: Write) -> None:
        path = write("a.yaml", POOL % "a")
        result = load_directory(path)
        assert [str(e) for f in result.files for e in f.errors] == [
            "specs/a.yaml:1:1: not a directory"
        ]

    @pytest.mark.skipif(os.geteuid() == 0, reason="root can list any directory")
    def test_an_unlistable_subdirectory_is_an_error_not_a_deletion(
        self, write: Write, specs: Path
    ) -> None:
        write("locked/a.yaml", POOL % "a")
        (specs / "locked").chmod(0)
        try:
            result = load_directory(specs)
        finally:
            (specs / "locked").chmod(0o755)
        assert [str(e) for f in result.files for e in f.errors] == [
            "specs/locked:1:1: cannot list this directory; its files were not read"
        ]


class TestWhatIsIgnored:
    @pytest.mark.parametrize(
        "name",
        [
            pytest.param(".hidden.yaml", id="hidden-file"),
            pytest.param(".git/config.yaml", id="inside-hidden-directory"),
            pytest.param("team/.cache/x.yaml", id="inside-nested-hidden-directory"),
            pytest.param("a.yaml~", id="tilde-backup"),
            pytest.param("#a.yaml#", id="emacs-autosave"),
            pytest.param(".#a.yaml", id="emacs-lock"),
            pytest.param(".a.yaml.swp", id="vim-swap"),
            pytest.param("a.yaml.swo", id="vim-swap-2"),
            pytest.param("a.yaml.bak", id="bak"),
            pytest.param("a.yaml.orig", id="merge-orig"),
            pytest.param("a.yaml.tmp", id="tmp"),
            pytest.param("#weird.yaml#", id="emacs-autosave-of-yaml"),
        ],
    )
    def test_hidden_and_editor_files(self, write: Write, specs: Path, name: str) -> None:
        write("kept.yaml", POOL % "kept")
        write(name, POOL % "ignored")
        assert paths(specs) == ["specs/kept.yaml"]

    def test_a_fifo_is_ignored_without_blocking(self, specs: Path) -> None:
        os.mkfifo(specs / "pipe.yaml")
        assert paths(specs) == []

    def test_a_socket_is_ignored(self, specs: Path) -> None:
        with socket.socket(socket.AF_UNIX) as server:
            server.bind(str(specs / "s.yaml"))
            assert paths(specs) == []

    def test_a_symlinked_directory_is_not_followed(self, write: Write, specs: Path) -> None:
        write("real/a.yaml", POOL % "a")
        (specs / "again").symlink_to("real", target_is_directory=True)
        assert paths(specs) == ["specs/real/a.yaml"]

    def test_a_symlink_to_a_fifo_inside_is_ignored(self, specs: Path) -> None:
        os.mkfifo(specs / "pipe")
        (specs / "pipe.yaml").symlink_to("pipe")
        assert paths(specs) == []

    @pytest.mark.skipif(not Path("/dev/null").exists(), reason="needs /dev/null")
    def test_a_device_named_directly_is_refused(self) -> None:
        assert [str(e) for e in load_file(Path("/dev/null")).errors] == [
            "/dev/null:1:1: not a regular file"
        ]


class TestLinksThatAreNotRead:
    """A spec-named link that leaves the directory, or leads nowhere, is that file's error.

    Ignoring it would read as "the file is gone" and prune what it defined.
    """

    @pytest.mark.parametrize(
        ("target", "message"),
        [
            pytest.param(
                "ABSOLUTE",
                "a link to {outside} outside the specs directory is not read",
                id="absolute-out",
            ),
            pytest.param(
                "../outside.yaml",
                "a link to ../outside.yaml outside the specs directory is not read",
                id="relative-out",
            ),
            pytest.param(
                "/dev/null",
                "a link to /dev/null outside the specs directory is not read",
                id="device-out",
            ),
            pytest.param(
                "nowhere.yaml",
                "a link to nowhere.yaml, which does not exist; the link is not read",
                id="broken",
            ),
            pytest.param(
                "link.yaml",
                "a link to link.yaml that loops back on itself; the link is not read",
                id="loop",
            ),
        ],
    )
    def test_is_an_error_on_the_link(self, specs: Path, target: str, message: str) -> None:
        outside = Path("outside.yaml").absolute()
        outside.write_text(POOL % "secret")
        (specs / "link.yaml").symlink_to(str(outside) if target == "ABSOLUTE" else target)
        (result,) = load_directory(specs).files
        assert (result.path, result.objects) == ("specs/link.yaml", ())
        assert [str(e) for e in result.errors] == [
            "specs/link.yaml:1:1: " + message.format(outside=outside)
        ]

    def test_the_objects_it_defined_are_held(self, write: Write, specs: Path) -> None:
        write("real.yaml", POOL % "kept")
        good = build_catalog(load_directory(specs))
        moved = Path("moved.yaml")
        (specs / "real.yaml").rename(moved)
        (specs / "real.yaml").symlink_to(moved.absolute())
        held = build_catalog(load_directory(specs), good)
        assert list(held.pools) == ["kept"]
        assert held.pools["kept"] is good.pools["kept"]
        assert [e.message for e in held.errors] == [
            f"a link to {moved.absolute()} outside the specs directory is not read"
        ]


class TestSymlinkedRoot:
    @pytest.fixture
    def checkouts(self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
        """Two checkouts and ``specs -> rev1``, the way git-sync lays them out."""
        monkeypatch.chdir(tmp_path)
        for revision, name in (("rev1", "one"), ("rev2", "two")):
            folder = tmp_path / ".worktrees" / revision
            folder.mkdir(parents=True)
            (folder / "a.yaml").write_text(POOL % name)
        Path("specs").symlink_to(".worktrees/rev1", target_is_directory=True)
        return Path("specs")

    def swap(self, target: str) -> None:
        """Repoint ``specs`` atomically, as git-sync does (rename over the old link)."""
        Path("specs.new").symlink_to(target, target_is_directory=True)
        Path("specs.new").replace("specs")

    def test_reads_through_the_link_but_shows_the_given_path(self, checkouts: Path) -> None:
        result = load_directory(checkouts)
        assert [(f.path, f.objects[0].name) for f in result.files] == [("specs/a.yaml", "one")]

    def test_a_swapped_link_is_followed_on_the_next_load(self, checkouts: Path) -> None:
        load_directory(checkouts)
        self.swap(".worktrees/rev2")
        result = load_directory(checkouts)
        assert [(f.path, f.objects[0].name) for f in result.files] == [("specs/a.yaml", "two")]

    def test_files_inside_the_resolved_root_are_inside(self, checkouts: Path) -> None:
        # A relative link inside the checkout resolves within .worktrees/rev1: it counts,
        # even though .worktrees is hidden and outside the path the user gave.
        (checkouts / "b.yaml").symlink_to("a.yaml")
        assert paths(checkouts) == ["specs/a.yaml", "specs/b.yaml"]
