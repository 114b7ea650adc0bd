"""``image`` follows Docker's reference grammar, so it can never be read as an option."""

from __future__ import annotations

from pathlib import Path

import pytest

from controller.spec import image_reference_problem, load_file

DIGEST = "sha256:" + "0123456789abcdef" * 4


class TestImageReferenceGrammar:
    @pytest.mark.parametrize(
        "image",
        [
            pytest.param("busybox", id="bare-name"),
            pytest.param("cartpole:1.0", id="tag"),
            pytest.param("myacr.azurecr.io/team/cartpole:1.0", id="registry-and-path"),
            pytest.param("localhost:5000/sim:latest", id="registry-port"),
            pytest.param("Registry.Example.COM/sim", id="domain-is-case-insensitive"),
            pytest.param("[::1]:5000/sim", id="ipv6-registry"),
            pytest.param(f"sim@{DIGEST}", id="digest"),
            pytest.param(f"sim:1.0@{DIGEST}", id="tag-and-digest"),
            pytest.param("a__b--c.d/e_f", id="separators"),
            pytest.param("sim:_Tag.1-x", id="tag-characters"),
            pytest.param("x/" + "a" * 255, id="path-of-255"),
        ],
    )
    def test_docker_references_are_accepted(self, image: str) -> None:
        assert image_reference_problem(image) is None

    @pytest.mark.parametrize(
        ("image", "problem"),
        [
            pytest.param("--volume=/:/host", "not an image reference", id="an-option"),
            pytest.param("-v", "not an image reference", id="a-short-option"),
            pytest.param("", "must not be empty", id="empty"),
            pytest.param(" ", "not an image reference", id="blank"),
            pytest.param("sim 1", "not an image reference", id="space"),
            pytest.param("CartPole:1", "must be lowercase", id="uppercase"),
            pytest.param("a___b", "not an image reference", id="three-underscores"),
            pytest.param("a.-b", "not an image reference", id="separators-in-a-row"),
            pytest.param("sim:-x", "not an image reference", id="tag-starts-with-dash"),
            pytest.param("sim:" + "t" * 129, "not an image reference", id="tag-too-long"),
            pytest.param("sim:tag\u00e9", "not an image reference", id="non-ascii-tag"),
            pytest.param("a" * 256, "more than 255", id="path-too-long"),
            pytest.param("f" * 64, "image id", id="an-image-id"),
            pytest.param("sim@md5:" + "0" * 32, "unsupported digest", id="unknown-digest"),
            pytest.param("sim@sha256:" + "0" * 63, "64 lowercase", id="short-digest"),
            pytest.param("sim@sha256:" + "A" * 64, "64 lowercase", id="uppercase-digest"),
            pytest.param("sim:1\n", "not an image reference", id="trailing-newline"),
        ],
    )
    def test_anything_else_is_refused_with_a_reason(self, image: str, problem: str) -> None:
        found = image_reference_problem(image)
        assert found is not None
        assert problem in found


def test_an_option_as_image_is_a_spec_error_at_the_image(tmp_path: Path) -> None:
    path = tmp_path / "sim.yaml"
    path.write_text(
        "apiVersion: simfleet/v1\n"
        "kind: Simulation\n"
        "metadata: {name: sneaky}\n"
        "spec:\n"
        "  pool: sims\n"
        "  image: --volume=/:/host\n"
        "  command: [busybox, sh]\n"
    )
    (error,) = load_file(path).errors
    assert (error.line, error.column, error.path) == (6, 10, "spec.image")
    assert "is not an image reference" in error.message
