"""Write deploy/sandbox/seccomp.json: Docker's default seccomp profile with io_uring denied.

The source is the default profile of the Docker engine installed here (docker.io 20.10), as Debian ships
it in golang-github-docker-docker-dev (`apt-get download golang-github-docker-docker-dev`, then
`dpkg-deb -x`). Docker 20.10 allows io_uring_setup, io_uring_enter and io_uring_register; io_uring
bypasses seccomp for the operations it submits and has been a steady source of kernel exploits, so the
sandbox's profile drops them from every allow rule and answers them with ENOSYS (as a kernel without
io_uring would, so libraries fall back to plain system calls).

    python3 deploy/sandbox/seccomp_profile.py [DOCKER_DEFAULT_JSON]          # write seccomp.json
    python3 deploy/sandbox/seccomp_profile.py --check [DOCKER_DEFAULT_JSON]  # exit 1 if it differs
"""

from __future__ import annotations

import errno
import json
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
OUTPUT = HERE / "seccomp.json"
DOCKER_DEFAULT = Path("/usr/share/gocode/src/github.com/docker/docker/profiles/seccomp/default.json")
DENIED = ("io_uring_enter", "io_uring_register", "io_uring_setup")


def sandbox_profile(default: dict[str, object]) -> dict[str, object]:
    """Return `default` without any allow rule for DENIED and with one rule answering them ENOSYS."""
    rules = []
    for rule in default["syscalls"]:  # type: ignore[attr-defined]
        names = [n for n in rule["names"] if n not in DENIED]
        if names:
            rules.append({**rule, "names": names})
    rules.append({"names": list(DENIED), "action": "SCMP_ACT_ERRNO", "errnoRet": errno.ENOSYS, "args": []})
    return {**default, "syscalls": rules}


def main(argv: list[str]) -> int:
    """Write (or with --check, compare) seccomp.json; return the exit code."""
    check = "--check" in argv
    paths = [a for a in argv if a != "--check"]
    source = Path(paths[0]) if paths else DOCKER_DEFAULT
    if not source.is_file():
        sys.stderr.write(
            f"Docker's default seccomp profile is not at {source}; get it with "
            "`apt-get download golang-github-docker-docker-dev` and `dpkg-deb -x` (or pass its path)\n"
        )
        return 2
    text = json.dumps(sandbox_profile(json.loads(source.read_text())), indent=1) + "\n"
    if check:
        same = OUTPUT.is_file() and OUTPUT.read_text() == text
        sys.stderr.write(f"{OUTPUT} is {'up to date' if same else 'out of date'}\n")
        return 0 if same else 1
    OUTPUT.write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
