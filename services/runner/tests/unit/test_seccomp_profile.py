"""The sandbox's seccomp profile: the shipped one denies io_uring; a profile that allows it is refused."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from backtest_runner.sandbox.seccomp import SHIPPED_PROFILE, SeccompProfileError, load_seccomp_profile


def test_the_shipped_profile_is_an_allow_list_answering_io_uring_with_enosys() -> None:
    profile = json.loads(load_seccomp_profile())

    allowed = {n for r in profile["syscalls"] if r["action"] == "SCMP_ACT_ALLOW" for n in r["names"]}
    denied = [r for r in profile["syscalls"] if "io_uring_setup" in r["names"]]
    assert profile["defaultAction"] == "SCMP_ACT_ERRNO"
    assert not {"io_uring_setup", "io_uring_enter", "io_uring_register"} & allowed
    assert denied == [
        {
            "names": ["io_uring_enter", "io_uring_register", "io_uring_setup"],
            "action": "SCMP_ACT_ERRNO",
            "errnoRet": 38,  # ENOSYS
            "args": [],
        }
    ]
    assert {"read", "write", "mmap", "clone", "futex", "openat", "exit_group"} <= allowed


def test_a_profile_that_allows_io_uring_is_refused_naming_the_calls(tmp_path: Path) -> None:
    profile = json.loads(SHIPPED_PROFILE.read_text())
    profile["syscalls"].append({"names": ["io_uring_setup"], "action": "SCMP_ACT_ALLOW", "args": []})
    path = tmp_path / "loose.json"
    path.write_text(json.dumps(profile))

    with pytest.raises(SeccompProfileError, match=r"must not allow \['io_uring_setup'\]"):
        load_seccomp_profile(path)


def test_a_missing_profile_names_its_path(tmp_path: Path) -> None:
    with pytest.raises(SeccompProfileError, match=r"cannot read the sandbox seccomp profile .*nowhere\.json"):
        load_seccomp_profile(tmp_path / "nowhere.json")


def test_an_allow_everything_profile_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "open.json"
    path.write_text(json.dumps({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": []}))

    with pytest.raises(SeccompProfileError, match="defaultAction must be SCMP_ACT_ERRNO"):
        load_seccomp_profile(path)
