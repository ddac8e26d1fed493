"""``corral.core.settings``: CORRAL_* variables, overrides, the run directory, loopback hosts."""

from __future__ import annotations

from pathlib import Path

import pytest

from corral.core import errors, settings


def _from_env(tmp_path: Path, **variables: str) -> settings.Settings:
    # HOME points into tmp_path so no real pyenv or runtimes directory is looked at.
    return settings.Settings.from_env({"HOME": str(tmp_path), "PATH": "", **variables})


def test_corral_variables_are_read_with_their_types(tmp_path: Path) -> None:
    s = _from_env(
        tmp_path,
        CORRAL_PORT="9100",
        CORRAL_HOST="0.0.0.0",
        CORRAL_DATA_DIR="/srv/corral",
        CORRAL_CLASSIC_IDLE_TIMEOUT_S="12.5",
        CORRAL_REGION="eu-west-1",
    )
    assert s.port == 9100
    assert s.host == "0.0.0.0"
    assert s.data_dir == Path("/srv/corral")
    assert s.classic_idle_timeout_s == 12.5
    assert s.region == "eu-west-1"


def test_unset_and_empty_variables_keep_the_defaults(tmp_path: Path) -> None:
    s = _from_env(tmp_path, CORRAL_PORT="")
    assert s.port == 9000
    assert s.data_dir == Path(".corral")
    assert s.account_concurrency_limit == 1000


def test_variables_without_the_corral_prefix_are_ignored(tmp_path: Path) -> None:
    assert _from_env(tmp_path, PORT="1234", corral_port="1234").port == 9000


def test_runtimes_dir_defaults_under_the_xdg_data_home(tmp_path: Path) -> None:
    s = _from_env(tmp_path, XDG_DATA_HOME="/data")
    assert s.runtimes_dir == Path("/data/corral/runtimes")
    assert _from_env(tmp_path).runtimes_dir == tmp_path / ".local/share/corral/runtimes"


@pytest.mark.parametrize(
    ("variable", "value"), [("CORRAL_PORT", "ninety"), ("CORRAL_SCALE_INTERVAL_S", "soon")]
)
def test_a_value_of_the_wrong_type_is_an_invalid_request_naming_the_variable(
    tmp_path: Path, variable: str, value: str
) -> None:
    with pytest.raises(errors.InvalidRequest) as info:
        _from_env(tmp_path, **{variable: value})
    assert f"{variable}='{value}'" in info.value.message


def test_with_overrides_replaces_given_values_and_ignores_none(tmp_path: Path) -> None:
    base = _from_env(tmp_path, CORRAL_PORT="9100")
    changed = base.with_overrides(port=None, host="10.0.0.1", drain_timeout_s=None)
    assert changed.port == 9100
    assert changed.host == "10.0.0.1"
    assert changed.drain_timeout_s == base.drain_timeout_s
    assert base.host == "127.0.0.1"


def test_data_paths_live_in_the_data_dir(tmp_path: Path) -> None:
    s = settings.Settings(data_dir=tmp_path, runtimes_dir=tmp_path)
    assert s.database_path == tmp_path / "corral.db"
    assert s.code_dir == tmp_path / "code"


def test_run_dir_is_short_and_stable_per_data_dir(tmp_path: Path) -> None:
    deep = tmp_path / ("d" * 120)
    one = settings.Settings(data_dir=deep, runtimes_dir=tmp_path)
    again = settings.Settings(data_dir=deep, runtimes_dir=tmp_path)
    other = settings.Settings(data_dir=tmp_path / "other", runtimes_dir=tmp_path)
    assert one.run_dir == again.run_dir
    assert one.run_dir != other.run_dir
    assert one.run_dir.parent == Path("/tmp")
    # Room is left for socket names under the 108-byte limit of Unix socket paths.
    assert len(str(one.run_dir)) <= 32


def test_run_root_moves_the_run_dir(tmp_path: Path) -> None:
    s = _from_env(tmp_path, CORRAL_RUN_ROOT="/run/x", CORRAL_DATA_DIR=str(tmp_path))
    assert s.run_dir.parent == Path("/run/x")


def test_is_loopback_accepts_only_hosts_of_this_machine() -> None:
    cases = {
        "localhost": True,
        "127.0.0.1": True,
        "127.8.9.10": True,
        "::1": True,
        "0.0.0.0": False,
        "192.168.1.5": False,
        "example.com": False,
    }
    assert {host: settings.is_loopback(host) for host in cases} == cases
