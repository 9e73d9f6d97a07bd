"""The sandbox's seccomp profile: Docker's default with io_uring denied (deploy/sandbox/seccomp.json)."""

from __future__ import annotations

import json
from pathlib import Path

# In a checkout (editable install) the profile is the repo's; the runner image sets RUNNER_SECCOMP_PROFILE.
SHIPPED_PROFILE = Path(__file__).resolve().parents[5] / "deploy" / "sandbox" / "seccomp.json"
MUST_DENY = ("io_uring_enter", "io_uring_register", "io_uring_setup")


class SeccompProfileError(ValueError):
    """The seccomp profile is missing or does not deny what the sandbox needs denied."""


def load_seccomp_profile(path: Path = SHIPPED_PROFILE) -> str:
    """Return the profile as compact JSON for Docker's `security_opt=["seccomp=<json>"]`, checked."""
    try:
        profile = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise SeccompProfileError(f"cannot read the sandbox seccomp profile {path}: {exc}") from exc
    if not isinstance(profile, dict) or profile.get("defaultAction") != "SCMP_ACT_ERRNO":
        raise SeccompProfileError(f"{path}: defaultAction must be SCMP_ACT_ERRNO (an allow list)")
    allowed = {
        name
        for rule in profile.get("syscalls", [])
        if rule.get("action") == "SCMP_ACT_ALLOW"
        for name in rule.get("names", [])
    }
    if leaked := sorted(allowed.intersection(MUST_DENY)):
        raise SeccompProfileError(
            f"{path} must not allow {leaked}; regenerate it (deploy/sandbox/seccomp_profile.py)"
        )
    return json.dumps(profile, separators=(",", ":"))
