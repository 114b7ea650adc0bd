"""The run-options policy: what a spec's ``containerRunOptions`` may hold, and where it says no.

Rows of option text and the verdict, as the docker CLI would parse the text (``pflag``):
``--flag=value``, ``--flag value``, short flags with attached or separate values, and
clusters of short booleans.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from controller.spec import (
    DEFAULT_ALLOWED_RUN_OPTIONS,
    PolicyError,
    RunOptionsPolicy,
    build_catalog,
    load_paths,
    policy_errors,
)

STRICT = RunOptionsPolicy()


class TestDefaultPolicy:
    @pytest.mark.parametrize(
        "text",
        [
            pytest.param("", id="nothing"),
            pytest.param("--shm-size=1g", id="long-equals"),
            pytest.param("--shm-size 1g", id="long-space"),
            pytest.param("-m 512m", id="short-space"),
            pytest.param("-m512m", id="short-attached"),
            pytest.param("-m=512m", id="short-equals"),
            pytest.param("--memory 1g --memory-swap 2g --cpus 1.5 --cpu-shares 512", id="res"),
            pytest.param("-c 512 --pids-limit 100 --ulimit nofile=1024:2048", id="limits"),
            pytest.param("--gpus all", id="gpus"),
            pytest.param("-u 1000:1000 -w /sim --entrypoint /bin/sh", id="user-workdir"),
            pytest.param("--read-only --tmpfs /tmp:rw,size=64m", id="read-only-tmpfs"),
            pytest.param("--cap-drop ALL --security-opt no-new-privileges", id="hardening"),
            pytest.param("--security-opt=no-new-privileges:true", id="nnp-true"),
            pytest.param("--stop-signal SIGINT --stop-timeout 30", id="stopping"),
            pytest.param("--network none", id="network-none"),
            pytest.param("--network=bridge", id="network-bridge"),
            pytest.param("--net=none", id="net-alias"),
            pytest.param("--init --init=false", id="init"),
            pytest.param("-h sim-host --hostname=other", id="hostname"),
            pytest.param("--read-only=true", id="boolean-with-value"),
            pytest.param("--memory '1g'", id="quoted"),
        ],
    )
    def test_resource_and_runtime_limits_pass(self, text: str) -> None:
        assert STRICT.problems(text) == []

    @pytest.mark.parametrize(
        ("text", "problem"),
        [
            pytest.param("-v /:/host", "-v (--volume) is not allowed", id="volume-short"),
            pytest.param("--volume=/:/host", "--volume is not allowed", id="volume-long"),
            pytest.param("-v/var/run/docker.sock:/s", "-v (--volume)", id="volume-attached"),
            pytest.param("--mount type=bind,src=/,dst=/h", "--mount is not allowed", id="mount"),
            pytest.param("--privileged", "--privileged is not allowed", id="privileged"),
            pytest.param("--pid=host", "--pid is not allowed", id="pid"),
            pytest.param("--ipc host", "--ipc is not allowed", id="ipc"),
            pytest.param("--uts=host", "--uts is not allowed", id="uts"),
            pytest.param("--userns=host", "--userns is not allowed", id="userns"),
            pytest.param("--network=host", "--network host: only none or bridge", id="net-host"),
            pytest.param("--net host", "--net host: only none or bridge", id="net-alias-host"),
            pytest.param("--network container:x", "only none or bridge", id="net-container"),
            pytest.param("--cap-add SYS_ADMIN", "--cap-add is not allowed", id="cap-add"),
            pytest.param("--device /dev/sda", "--device is not allowed", id="device"),
            pytest.param("--env-file /etc/shadow", "variables come from env", id="env-file"),
            pytest.param("-e A=1", "-e (--env) is not allowed: variables", id="env-short"),
            pytest.param("--env=A=1", "--env is not allowed", id="env-long"),
            pytest.param("--name keep-me", "--name is not allowed", id="name"),
            pytest.param("--rm=false", "--rm is not allowed", id="rm"),
            pytest.param("-l a=b", "labels are simfleet's", id="label-short"),
            pytest.param("--label-file /x", "labels are simfleet's", id="label-file"),
            pytest.param("-d", "-d (--detach) is not allowed", id="detach"),
            pytest.param("--restart always", "--restart is not allowed", id="restart"),
            pytest.param("--sig-proxy=false", "--sig-proxy is not allowed", id="sig-proxy"),
            pytest.param(
                "--security-opt seccomp=unconfined", "only no-new-privileges", id="seccomp"
            ),
            pytest.param("--security-opt apparmor=unconfined", "only no-new", id="apparmor"),
            pytest.param("--cgroup-parent /", "--cgroup-parent is not allowed", id="cgroup"),
            pytest.param("--cgroupns host", "--cgroupns is not allowed", id="cgroupns"),
            pytest.param("--volumes-from other", "--volumes-from is not", id="volumes-from"),
            pytest.param("--use-api-socket", "--use-api-socket is not", id="api-socket"),
            pytest.param("--cidfile /etc/x", "--cidfile is not allowed", id="cidfile"),
            pytest.param("--sysctl kernel.x=1", "--sysctl is not allowed", id="sysctl"),
            pytest.param("-p 80:80", "-p (--publish) is not allowed", id="publish"),
            pytest.param("--log-driver syslog", "--log-driver is not allowed", id="log"),
            pytest.param("--oom-score-adj -1000", "--oom-score-adj is not", id="oom"),
            pytest.param("-it", "-i (--interactive) is not allowed", id="cluster"),
            pytest.param("-hv /:/h", "'/:/h' is not an option", id="cluster-value"),
            pytest.param("--bogus", "--bogus is not a docker run option", id="unknown-long"),
            pytest.param("-Z", "-Z is not a docker run option", id="unknown-short"),
            pytest.param("busybox", "'busybox' is not an option", id="positional"),
            pytest.param("-- busybox", "'--' is not allowed", id="double-dash"),
            pytest.param("--memory", "--memory needs a value", id="missing-value"),
            pytest.param("-m", "-m (--memory) needs a value", id="missing-short-value"),
            pytest.param("--shm-size='1g", "cannot be split", id="unbalanced-quote"),
        ],
    )
    def test_anything_else_is_refused_by_name(self, text: str, problem: str) -> None:
        problems = STRICT.problems(text)
        assert problems, text
        assert problem in problems[0]

    def test_every_problem_is_listed(self) -> None:
        problems = STRICT.problems("--memory 1g --privileged -v /:/h --pid=host")
        assert [p.split(" ")[0] for p in problems] == ["--privileged", "-v", "--pid"]

    def test_a_refusal_tells_the_operator_how_to_allow_it(self) -> None:
        (problem,) = STRICT.problems("--privileged")
        assert "--allow-run-option privileged" in problem

    def test_the_value_after_a_refused_flag_is_not_read_as_an_option(self) -> None:
        assert len(STRICT.problems("--device --privileged")) == 1  # the value of --device


class TestOperatorPolicy:
    def test_allowing_an_option_by_any_spelling_lets_it_through(self) -> None:
        for spelling in ("volume", "--volume", "-v"):
            assert RunOptionsPolicy.strict([spelling]).problems("-v /data:/data") == []

    def test_allowing_a_restricted_option_lifts_its_value_restriction(self) -> None:
        assert RunOptionsPolicy.strict(["network"]).problems("--network=host") == []
        assert RunOptionsPolicy.strict(["net"]).problems("--net=host") == []

    def test_widening_keeps_the_rest_of_the_policy(self) -> None:
        problems = RunOptionsPolicy.strict(["volume"]).problems("-v /x:/x --privileged")
        assert len(problems) == 1
        assert "--privileged" in problems[0]

    @pytest.mark.parametrize("name", ["env", "-e", "env-file", "label", "name", "rm", "detach"])
    def test_what_simfleet_relies_on_can_never_be_allowed_by_name(self, name: str) -> None:
        with pytest.raises(PolicyError, match="cannot be allowed"):
            RunOptionsPolicy.strict([name])

    def test_an_unknown_option_cannot_be_allowed(self) -> None:
        with pytest.raises(PolicyError, match="not a docker run option"):
            RunOptionsPolicy.strict(["--no-such-option"])

    def test_unsafe_passes_anything_and_says_so(self) -> None:
        unsafe = RunOptionsPolicy.unsafe()
        assert unsafe.problems("--privileged -v /:/host -e A=1 'unbalanced") == []
        assert "take over this host" in unsafe.warning

    def test_pass_through_passes_anything_without_a_warning(self) -> None:
        through = RunOptionsPolicy.pass_through()
        assert through.problems("--privileged") == []
        assert through.warning == ""

    def test_the_default_allow_list_is_what_the_readme_promises(self) -> None:
        assert {"shm-size", "memory", "cpus", "pids-limit", "ulimit", "gpus", "user"} <= (
            DEFAULT_ALLOWED_RUN_OPTIONS
        )
        assert {"volume", "mount", "privileged", "pid", "cap-add", "device"}.isdisjoint(
            DEFAULT_ALLOWED_RUN_OPTIONS
        )


def test_policy_errors_point_at_the_run_options_of_each_simulation(tmp_path: Path) -> None:
    (tmp_path / "a.yaml").write_text(
        "apiVersion: simfleet/v1\n"
        "kind: Simulation\n"
        "metadata: {name: good}\n"
        "spec: {pool: sims, image: sim:1, containerRunOptions: --shm-size=1g}\n"
        "---\n"
        "apiVersion: simfleet/v1\n"
        "kind: Simulation\n"
        "metadata: {name: bad}\n"
        "spec:\n"
        "  pool: sims\n"
        "  image: sim:1\n"
        "  containerRunOptions: --privileged -v /:/host\n"
    )
    errors = policy_errors(build_catalog(load_paths([tmp_path / "a.yaml"])), STRICT)
    assert [(e.line, e.column, e.path) for e in errors] == [
        (12, 24, "spec.containerRunOptions"),
        (12, 24, "spec.containerRunOptions"),
    ]
    assert str(errors[0]).startswith(f"{tmp_path / 'a.yaml'}:12:24: spec.containerRunOptions:")
