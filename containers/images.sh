#!/usr/bin/env bash
# make images: build every image, tagged with the git revision (and :latest), then print their sizes.
# BASE_IMAGE: the official python:3.12 slim image where a registry answers; where none does (our
# machines), a base built from Debian's packages (containers/podman.sh python-image) is passed instead.
set -euo pipefail
cd "$(dirname "$0")/.."
OFFICIAL=python:3.12.12-slim-bookworm
# Podman writes OCI images by default, which drop HEALTHCHECK: ask for Docker's format.
if command -v podman >/dev/null; then ENGINE=podman; FORMAT=(--format docker); else ENGINE=docker; FORMAT=(); fi
# The tag: the git revision, plus a hash of uncommitted changes to what the images hold (so an edit rebuilds).
SOURCES=(services requirements containers)
REV=$(git rev-parse --short HEAD)
untracked=$(git ls-files --others --exclude-standard -- "${SOURCES[@]}")
if ! git diff --quiet HEAD -- "${SOURCES[@]}" || [ -n "$untracked" ]; then
  REV="$REV-dirty-$( { git diff HEAD -- "${SOURCES[@]}"; [ -z "$untracked" ] || cat $untracked; } | sha256sum | cut -c1-8)"
fi
if [ "${1:-}" = --tag ]; then echo "$REV"; exit 0; fi  # the tag these sources build, for the compose runtime

if [ -z "${BASE_IMAGE:-}" ]; then
  if $ENGINE image inspect "$OFFICIAL" >/dev/null 2>&1 || $ENGINE pull -q "$OFFICIAL" >/dev/null 2>&1; then
    BASE_IMAGE=$OFFICIAL
  else
    echo "no registry answers for $OFFICIAL: building the base from Debian's packages"
    bash containers/podman.sh python-image
    BASE_IMAGE=localhost/sommelier-python:bookworm
  fi
fi
echo "images from BASE_IMAGE=$BASE_IMAGE, tag $REV"

declare -A DOCKERFILES=(
  [predictor]=services/predictor/Dockerfile
  [trainer]=services/trainer/Dockerfile
  [frontend]=services/frontend/Dockerfile
  [emulator]=containers/emulator/Dockerfile
)
BUILD_LOG=$(mktemp)
trap 'rm -f "$BUILD_LOG"' EXIT
for name in predictor trainer frontend emulator; do
  started=$(date +%s)
  if ! $ENGINE build "${FORMAT[@]}" --build-arg "BASE_IMAGE=$BASE_IMAGE" --build-arg "IMAGE_TAG=$REV" -f "${DOCKERFILES[$name]}" \
      -t "sommelier/$name:$REV" -t "sommelier/$name:latest" . >"$BUILD_LOG" 2>&1; then
    # which image, which step, and what it printed last
    step=$(grep -E '^(STEP [0-9]+/[0-9]+|Step [0-9]+/[0-9]+ ?):' "$BUILD_LOG" | tail -1)
    echo "building sommelier/$name (${DOCKERFILES[$name]}) failed at ${step:-its first step}; its last 20 lines:" >&2
    tail -20 "$BUILD_LOG" | sed 's/^/    /' >&2
    exit 1
  fi
  echo "built sommelier/$name:$REV in $(( $(date +%s) - started )) s"
done
echo
printf '%-28s %s\n' IMAGE SIZE
for name in predictor trainer frontend emulator; do
  printf '%-28s %s\n' "sommelier/$name:$REV" "$($ENGINE image inspect --format '{{.Size}}' "sommelier/$name:$REV" | awk '{printf "%.0f MB", $1/1e6}')"
done
