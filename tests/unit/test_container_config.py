"""The container sandbox's pure parts: the OCI config, the pid-1 command, exit statuses,
the root skeleton, and the cgroup files written on v1 and v2 hosts (a fake cgroupfs)."""

from __future__ import annotations

import signal
from pathlib import Path
from typing import Any

import pytest

from corral.sandbox import oci
from corral.sandbox.cgroups import CgroupTree, Limits, detect_version
from corral.sandbox.container import _as_pid1, _exit_status
from corral.sandbox.rootfs import RUNTIME_UID, build_rootfs


def config(**changes: Any) -> dict[str, Any]:
    inputs: dict[str, Any] = {
        "argv": ["/var/runtime/bin/python", "-m", "awslambdaric", "app.handler"],
        "env": {"A": "1", "_HANDLER": "app.handler"},
        "rootfs": Path("/run/corral/rootfs"),
        "code_dir": Path("/data/code/abc"),
        "runtime_dir": Path("/runtimes/python3.12"),
        "log_dir": Path("/run/corral/ee/ipc"),
        "read_only_dirs": [Path("/usr"), Path("/opt/python")],
        "network_namespace": Path("/proc/1/fd/7"),
        "cgroup_path": "/corral-x/ee/runtime",
        "tmp_size_mb": 512,
        "pids_limit": 1024,
    }
    inputs.update(changes)
    return oci.oci_config(oci.ContainerInputs(**inputs))


def test_the_runtime_runs_unprivileged_in_its_own_namespaces() -> None:
    spec = config()
    process = spec["process"]
    assert process["user"] == {"uid": RUNTIME_UID, "gid": 990}
    assert all(caps == [] for caps in process["capabilities"].values())
    assert process["noNewPrivileges"] is True
    assert process["env"] == ["A=1", "_HANDLER=app.handler"]
    namespaces = {n["type"]: n.get("path") for n in spec["linux"]["namespaces"]}
    assert namespaces == {
        "pid": None,
        "ipc": None,
        "uts": None,
        "mount": None,
        "network": "/proc/1/fd/7",  # the namespace holding its Runtime API
    }
    assert spec["linux"]["resources"]["pids"] == {"limit": 1024}
    assert "/proc/kcore" in spec["linux"]["maskedPaths"]


def test_only_tmp_is_writable_and_it_is_sized_to_the_ephemeral_storage() -> None:
    spec = config(tmp_size_mb=2048)
    assert spec["root"]["readonly"] is True
    by_destination = {m["destination"]: m for m in spec["mounts"]}
    assert "size=2048m" in by_destination["/tmp"]["options"]
    binds = [m for m in spec["mounts"] if m["type"] == "bind"]
    assert binds and all("ro" in m["options"] and "nosuid" in m["options"] for m in binds)
    assert by_destination["/var/task"]["source"] == "/data/code/abc"
    assert by_destination["/var/runtime"]["source"] == "/runtimes/python3.12"
    assert by_destination["/run/corral"]["source"] == "/run/corral/ee/ipc"
    assert by_destination["/opt/python"]["source"] == "/opt/python"


def test_the_runtime_becomes_a_pid_1_that_sigterm_can_stop() -> None:
    argv = _as_pid1(["/var/runtime/bin/python", "-m", "awslambdaric", "app.handler"])
    assert argv[:2] == ["/var/runtime/bin/python", "-c"]
    assert "c.signal(15" in argv[2] and "_run_module_as_main" in argv[2]
    assert argv[3:] == ["", "-m", "awslambdaric", "app.handler"]  # no output socket: stdio as is
    assert _as_pid1(["/bin/true"]) == ["/bin/true"]


def test_the_pid_1_prelude_connects_stdout_and_stderr_to_the_output_socket() -> None:
    argv = _as_pid1(
        ["/var/runtime/bin/python", "-m", "awslambdaric", "app.handler"],
        Path("/run/corral/log.sock"),
    )
    assert argv[3:] == ["/run/corral/log.sock", "-m", "awslambdaric", "app.handler"]
    assert "os.dup2(s.fileno(), fd)" in argv[2]
    compile(argv[2], "<prelude>", "exec")  # the prelude is valid Python


@pytest.mark.parametrize(
    ("code", "oom", "returncode", "text"),
    [
        (0, False, 0, "exit status 0"),
        (1, False, 1, "exit status 1"),
        (137, False, -signal.SIGKILL, "signal: killed"),
        (137, True, -signal.SIGKILL, "signal: killed"),
        (143, False, -signal.SIGTERM, "signal: terminated"),
        (255, False, 255, "exit status 255"),
    ],
)
def test_runc_exit_codes_read_as_lambda_writes_them(
    code: int, oom: bool, returncode: int, text: str
) -> None:
    status = _exit_status(code, oom)
    assert (status.returncode, status.out_of_memory, status.describe()) == (returncode, oom, text)


def test_the_root_skeleton_has_mount_points_a_private_etc_and_a_sticky_tmp(
    tmp_path: Path,
) -> None:
    root = build_rootfs(
        tmp_path / "rootfs",
        extra_dirs=(Path("/root/.pyenv/versions/3.12.1"),),
        nameserver="10.0.2.3",
    )
    for mount_point in ("var/task", "var/runtime", "run/corral", "proc", "dev", "usr"):
        assert (root / mount_point).is_dir(), mount_point
    assert (root / "tmp").stat().st_mode & 0o7777 == 0o1777
    assert (root / "root").stat().st_mode & 0o777 == 0o755  # reachable by the runtime user
    assert "sbx_user1051:x:993:990" in (root / "etc/passwd").read_text()
    assert (root / "etc/resolv.conf").read_text() == "nameserver 10.0.2.3\n"
    assert not (root / "etc/shadow").exists()


def _fake_v1(root: Path) -> None:
    for controller in ("memory", "cpu", "cpuacct", "pids"):
        (root / controller).mkdir(parents=True)


def _fake_v2(root: Path) -> None:
    root.mkdir(parents=True, exist_ok=True)
    (root / "cgroup.controllers").write_text("cpu memory pids\n")
    (root / "cgroup.subtree_control").write_text("")


def test_v1_and_v2_hosts_are_told_apart(tmp_path: Path) -> None:
    _fake_v1(tmp_path / "v1")
    _fake_v2(tmp_path / "v2")
    assert detect_version(tmp_path / "v1") == 1
    assert detect_version(tmp_path / "v2") == 2


def test_v1_limits_go_to_each_controller(tmp_path: Path) -> None:
    _fake_v1(tmp_path)
    tree = CgroupTree("corral-x", root=tmp_path)
    tree.create()
    environment = tree.environment("ee1")
    environment.create(Limits(memory_bytes=2048 * 2**20, vcpus=2, pids=1024))
    memory = tmp_path / "memory/corral-x/ee1"
    assert (memory / "memory.limit_in_bytes").read_text() == str(2048 * 2**20)
    assert (tmp_path / "cpu/corral-x/ee1/cpu.cfs_quota_us").read_text() == "200000"
    assert (tmp_path / "cpu/corral-x/ee1/cpu.cfs_period_us").read_text() == "100000"
    assert (tmp_path / "pids/corral-x/ee1/pids.max").read_text() == "1024"
    assert environment.runtime_path == "/corral-x/ee1/runtime"


def test_v1_counters_are_read_from_the_environment_and_runcs_leaf(tmp_path: Path) -> None:
    _fake_v1(tmp_path)
    tree = CgroupTree("corral-x", root=tmp_path)
    environment = tree.environment("ee1")
    memory = tmp_path / "memory/corral-x/ee1"
    (memory / "runtime").mkdir(parents=True)
    (memory / "memory.oom_control").write_text("oom_kill_disable 0\nunder_oom 0\noom_kill 0\n")
    (memory / "runtime/memory.oom_control").write_text("oom_kill_disable 0\noom_kill 1\n")
    (memory / "memory.usage_in_bytes").write_text("300\n")
    (memory / "memory.stat").write_text("cache 10\ntotal_inactive_file 100\n")
    (memory / "memory.limit_in_bytes").write_text("1000\n")
    (memory / "memory.max_usage_in_bytes").write_text("1000\n")
    (tmp_path / "cpuacct/corral-x/ee1").mkdir(parents=True)
    (tmp_path / "cpuacct/corral-x/ee1/cpuacct.usage").write_text("2500000000\n")
    assert environment.oom_kills() == 1
    assert environment.memory_bytes() == 200
    assert environment.peak_memory_bytes() == 1000
    assert environment.reached_limit() is True
    assert environment.cpu_seconds() == 2.5


def test_v2_limits_and_counters_live_in_one_directory(tmp_path: Path) -> None:
    _fake_v2(tmp_path)
    tree = CgroupTree("corral-x", root=tmp_path)
    tree.create()
    assert (tmp_path / "corral-x/cgroup.subtree_control").read_text() == "+memory +cpu +pids"
    environment = tree.environment("ee1")
    environment.create(Limits(memory_bytes=4096, vcpus=1, pids=64))
    base = tmp_path / "corral-x/ee1"
    assert (base / "memory.max").read_text() == "4096"
    assert (base / "memory.swap.max").read_text() == "0"
    assert (base / "memory.oom.group").read_text() == "1"
    assert (base / "cpu.max").read_text() == "100000 100000"
    assert (base / "pids.max").read_text() == "64"
    (base / "memory.events").write_text("low 0\nhigh 0\nmax 3\noom 1\noom_kill 1\n")
    (base / "memory.current").write_text("500\n")
    (base / "memory.peak").write_text("900\n")
    (base / "memory.stat").write_text("anon 400\ninactive_file 50\n")
    (base / "cpu.stat").write_text("usage_usec 1500000\nuser_usec 1000000\n")
    (base / "cgroup.procs").write_text("")
    (base / "runtime").mkdir()
    (base / "runtime/cgroup.procs").write_text("41\n42\n")
    assert environment.oom_kills() == 1
    assert environment.reached_limit() is True
    assert environment.memory_bytes() == 450
    assert environment.peak_memory_bytes() == 900
    assert environment.cpu_seconds() == 1.5
    assert sorted(environment.pids()) == [41, 42]


def test_a_cgroup_that_refuses_a_limit_is_a_sandbox_error(tmp_path: Path) -> None:
    from corral.core import errors

    _fake_v1(tmp_path)
    tree = CgroupTree("corral-x", root=tmp_path)
    tree.create()
    (tmp_path / "memory/corral-x/ee1/memory.limit_in_bytes").mkdir(parents=True)  # unwritable
    with pytest.raises(errors.SandboxError, match="memory.limit_in_bytes"):
        tree.environment("ee1").create(Limits(memory_bytes=1, vcpus=1, pids=1))
