#!/usr/bin/env bash
# Build the sandbox image offline (no registry, no `docker build`): a Debian rootfs made from .debs,
# the pinned wheels and libs/core installed with the host's python3.11, then `docker import`.
#
#   deploy/sandbox/build_image.sh             build and tag (default backtest-sandbox:latest)
#   deploy/sandbox/build_image.sh --if-stale  build only if the image is missing or its
#                                             backtest.content-hash label differs from the sources
# Env: SANDBOX_IMAGE (tag), SANDBOX_CACHE (where .debs are kept between builds).
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
IMAGE="${SANDBOX_IMAGE:-backtest-sandbox:latest}"
CACHE="${SANDBOX_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/backtest-sandbox}"
PY=python3.11
LABEL=backtest.content-hash
DEBS="python3.11-minimal libpython3.11-stdlib libstdc++6 tzdata ca-certificates"

log() { printf '[sandbox-image] %s\n' "$*" >&2; }

current_hash() { "$PY" "$REPO/deploy/sandbox/content_hash.py"; }
image_hash() { docker image inspect -f "{{ index .Config.Labels \"$LABEL\" }}" "$IMAGE" 2>/dev/null || true; }

docker info >/dev/null 2>&1 || { log "the Docker engine is not running (start it with scripts/infra up)"; exit 2; }

# One build at a time on this machine (tests, setup and developers may ask at once).
mkdir -p "$CACHE"
exec 9>"$CACHE/build.lock"
flock 9

HASH="$(current_hash)"
if [[ "${1:-}" == "--if-stale" && "$(image_hash)" == "$HASH" ]]; then
    log "$IMAGE is up to date ($LABEL=${HASH:0:12})"
    exit 0
fi

START=$SECONDS
WORK="$(mktemp -d /dev/shm/backtest-sandbox.XXXXXX)"
trap 'rm -rf "$WORK"' EXIT
ROOT="$WORK/rootfs"
SITE="$ROOT/usr/local/lib/python3.11/dist-packages"
mkdir -p "$ROOT" "$SITE" "$CACHE/debs/partial"

# 1. The dependency closure as .debs, resolved against an empty dpkg status (a bare system).
ls /var/lib/apt/lists/*_Packages* >/dev/null 2>&1 || apt-get update -qq
: >"$WORK/status"
apt-get install --download-only -y -qq --no-install-recommends \
    -o Dir::State::status="$WORK/status" -o Dir::Cache::archives="$CACHE/debs" \
    -o Debug::NoLocking=1 -o APT::Sandbox::User=root $DEBS >/dev/null
shopt -s nullglob
n=0
for deb in "$CACHE"/debs/*.deb; do
    case "$(basename "$deb")" in dpkg_* | tar_* | debconf_* | perl-base_*) continue ;; esac
    dpkg-deb -x "$deb" "$ROOT"
    n=$((n + 1))
done
log "unpacked $n .debs"

# 2. Wheels (exact pins) and libs/core (from a clean copy, so no build files land in the repo).
"$PY" -m pip install -q --disable-pip-version-check --no-compile --target "$SITE" \
    -r "$REPO/deploy/sandbox/requirements.txt" >"$WORK/pip.log" 2>&1 || { cat "$WORK/pip.log" >&2; exit 1; }
mkdir -p "$WORK/core"
cp -r "$REPO/libs/core/pyproject.toml" "$REPO/libs/core/src" "$WORK/core/"
find "$WORK/core" \( -name '*.egg-info' -o -name __pycache__ \) -prune -exec rm -rf {} +
"$PY" -m pip install -q --disable-pip-version-check --no-compile --no-deps \
    --target "$SITE" "$WORK/core" >"$WORK/pip.log" 2>&1 || { cat "$WORK/pip.log" >&2; exit 1; }
find "$SITE" -type d \( -name tests -o -name __pycache__ \) -prune -exec rm -rf {} +
rm -rf "$SITE"/bin

# 3. Byte-compile (the root is read-only at run time), with in-image paths in tracebacks.
"$PY" -m compileall -q -j 0 -s "$ROOT" -p / "$ROOT/usr/lib/python3.11" "$SITE" >/dev/null || true

# 4. A minimal /etc, mount points, the loader cache.
mkdir -p "$ROOT/tmp" "$ROOT/job" "$ROOT/etc"
chmod 1777 "$ROOT/tmp"
printf 'root:x:0:0:root:/root:/usr/sbin/nologin\nnobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n' \
    >"$ROOT/etc/passwd"
printf 'root:x:0:\nnogroup:x:65534:\n' >"$ROOT/etc/group"
ldconfig -r "$ROOT" 2>/dev/null || true

# 5. Import as an image: non-root user, the engine as entry point, an environment of PATH and HOME only
#    (the engine flushes its own output lines; the root is read-only so no bytecode is written).
tar -C "$ROOT" -c . | docker import \
    --change 'USER 65534:65534' \
    --change 'WORKDIR /tmp' \
    --change 'ENV PATH=/usr/local/bin:/usr/bin:/bin' \
    --change 'ENV HOME=/tmp' \
    --change "LABEL $LABEL=$HASH" \
    --change 'ENTRYPOINT ["python3.11", "-m", "backtest_core"]' \
    - "$IMAGE" >/dev/null

# 6. Smoke check, hardened exactly as the runner runs it.
docker run --rm --network none --read-only --tmpfs /tmp --cap-drop ALL \
    --security-opt no-new-privileges --pids-limit 128 --memory 1g --cpus 1 --user 65534:65534 \
    --entrypoint python3.11 "$IMAGE" \
    -c 'import backtest_core, numpy, pandas, pydantic; print("numpy", numpy.__version__, "pandas", pandas.__version__, "pydantic", pydantic.VERSION)' >&2

# Untagged earlier builds (ours carry the label) go, unless a container still uses them.
docker image prune -f --filter "label=$LABEL" >/dev/null || true

SIZE="$(docker image inspect -f '{{.Size}}' "$IMAGE")"
log "built $IMAGE ($LABEL=${HASH:0:12}, $((SIZE / 1000000)) MB) in $((SECONDS - START)) s"
