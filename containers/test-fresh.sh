#!/usr/bin/env bash
# make test-fresh: `.ci/run` on a clean clone of HEAD inside a fresh container, as on a machine where
# nothing of this project ever ran. The container is Debian 12 from Debian's packages plus what every
# machine of ours has (make, git); .ci/run must install everything else itself.
# Only committed work is tested (git clone of HEAD); ../shared is copied beside it, as CI has it.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
IMAGE=localhost/sommelier-fresh-machine:bookworm
LOG=${TEST_FRESH_LOG:-$ROOT/test-artifacts/test-fresh.log}

bash containers/podman.sh base-image
if ! podman image exists "$IMAGE"; then
  echo "building $IMAGE (the base + make, git: what every machine of ours has)"
  printf 'FROM localhost/sommelier-debian:bookworm\nRUN apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends make git >/dev/null && rm -rf /var/lib/apt/lists/*\n' \
    | podman build -q -t "$IMAGE" -f - . >/dev/null
fi

WORK=$(mktemp -d /var/tmp/sommelier-fresh.XXXXXX)
cleanup() { rm -rf "$WORK"; }
trap cleanup EXIT
git clone --quiet --no-hardlinks "$ROOT" "$WORK/repo"
[ -d "$ROOT/../shared" ] && cp -r "$ROOT/../shared" "$WORK/shared"
echo "clean clone of $(git rev-parse --short HEAD) in a fresh container; log: $LOG"
mkdir -p "$(dirname "$LOG")"
started=$(date +%s)
set +e
# host network: the container reaches the package registries as this machine does, and the stack the
# tests start listens on loopback ports they pick free. A larger /dev/shm for Chromium.
podman run --rm --network=host --shm-size=2g -e CI=true -v "$WORK:/work" -w /work/repo "$IMAGE" \
  bash -c 'bash .ci/run' 2>&1 | tee "$LOG" | grep --line-buffered -E "^(installing|=+ |FAILED|ERROR|make: \*\*\*)|passed|failed" 
status=${PIPESTATUS[0]}
set -e
echo "test-fresh: .ci/run exited $status after $(( $(date +%s) - started )) s (full log: $LOG)"
# what it covered, and what it could not inside a container (.ci/run's own summary)
sed -n '/^ci summary:/,$p' "$LOG"
echo "  (not covered by test-fresh: whatever says SKIPPED or WITHOUT above; .ci/run on this machine covers the compose"
echo "   suite from an empty image store and the rehearsal with images)"
exit "$status"
