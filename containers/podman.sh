#!/usr/bin/env bash
# Podman on our machines (../shared/CONTAINERS.md): no Docker engine, no systemd, no registry.
#   containers/podman.sh setup        install Podman from Debian and configure it (idempotent)
#   containers/podman.sh socket       start Podman's Docker API socket (prints its pid) unless one answers
#   containers/podman.sh base-image   build the local Debian base image when missing (nothing is pulled)
#   containers/podman.sh python-image the base + python3-venv: what the Dockerfiles get as BASE_IMAGE here
# Every step checks before it acts, so a machine that has it all pays a few milliseconds.
set -euo pipefail

BASE_IMAGE=${BASE_IMAGE:-localhost/sommelier-debian:bookworm}
PYTHON_IMAGE=${PYTHON_IMAGE:-localhost/sommelier-python:bookworm}
SOCKET=${PODMAN_SOCKET:-/run/podman/podman.sock}
MIRROR=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
CA_BUNDLE=${CA_BUNDLE:-/etc/ssl/certs/ca-certificates.crt}

need_root() { [ "$(id -u)" = 0 ] || { echo "containers/podman.sh $1 needs root (apt-get, /etc/containers)" >&2; exit 1; }; }

setup() {
  local missing=()
  command -v podman >/dev/null || missing+=(podman)
  command -v runc >/dev/null || missing+=(runc)
  command -v debootstrap >/dev/null || missing+=(debootstrap)
  command -v newuidmap >/dev/null || missing+=(uidmap)
  [ -e /usr/lib/cni/dnsname ] || missing+=(golang-github-containernetworking-plugin-dnsname)
  command -v docker-compose >/dev/null || missing+=(docker-compose)
  if [ ${#missing[@]} -gt 0 ]; then
    need_root setup
    echo "installing ${missing[*]} (Debian packages)"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  fi
  # crun fails on cgroups v1 hybrid; no systemd for cgroups or journald; no rlimit raising in this sandbox.
  if ! grep -q '^runtime = "runc"' /etc/containers/containers.conf 2>/dev/null; then
    need_root setup
    mkdir -p /etc/containers
    cat > /etc/containers/containers.conf <<'CONF'
# written by sommelier's containers/podman.sh (see shared/CONTAINERS.md)
[containers]
default_ulimits = []
[engine]
runtime = "runc"
cgroup_manager = "cgroupfs"
events_logger = "file"
CONF
  fi
  podman info --format '{{.Host.OCIRuntime.Name}}' >/dev/null
}

socket() {
  if DOCKER_HOST="unix://$SOCKET" docker info >/dev/null 2>&1; then
    echo "Podman's Docker API already answers on $SOCKET" >&2
    return 0
  fi
  mkdir -p "$(dirname "$SOCKET")"
  nohup podman system service --time=0 "unix://$SOCKET" >/tmp/podman-service.log 2>&1 &
  local pid=$!
  for _ in $(seq 1 100); do  # bounded: 10 s
    if [ -S "$SOCKET" ] && curl -sf --unix-socket "$SOCKET" http://d/_ping >/dev/null 2>&1; then
      # owner and group (root) only, as Docker's socket is: the compose emulator joins that group to start containers
      chmod 0660 "$SOCKET"
      echo "$pid"
      return 0
    fi
    kill -0 "$pid" 2>/dev/null || break
    read -r -t 0.1 < /dev/zero || true
  done
  echo "Podman's API service did not answer on $SOCKET; see /tmp/podman-service.log" >&2
  return 1
}

base_image() {
  if podman image exists "$BASE_IMAGE"; then
    return 0
  fi
  need_root base-image
  local rootfs
  rootfs=$(mktemp -d /var/tmp/sommelier-rootfs.XXXXXX)
  echo "building $BASE_IMAGE from Debian packages (debootstrap, a few minutes, once per machine)"
  debootstrap --variant=minbase --include=ca-certificates,python3 bookworm "$rootfs" "$MIRROR" >/tmp/debootstrap.log 2>&1 \
    || { tail -20 /tmp/debootstrap.log >&2; rm -rf "$rootfs"; exit 1; }
  # This machine's CA bundle: registry traffic here is TLS-intercepted. A copy apt never rewrites.
  cp "$CA_BUNDLE" "$rootfs/etc/ssl/certs/host-ca-bundle.crt"
  cp "$CA_BUNDLE" "$rootfs/etc/ssl/certs/ca-certificates.crt"
  rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/*
  tar -C "$rootfs" -c . | podman import \
    --change 'ENV PIP_CERT=/etc/ssl/certs/host-ca-bundle.crt' \
    --change 'ENV SSL_CERT_FILE=/etc/ssl/certs/host-ca-bundle.crt' \
    --change 'ENV REQUESTS_CA_BUNDLE=/etc/ssl/certs/host-ca-bundle.crt' \
    --change 'CMD ["/bin/bash"]' - "$BASE_IMAGE" >/dev/null
  rm -rf "$rootfs"
  echo "built $BASE_IMAGE"
}

python_image() {
  podman image exists "$PYTHON_IMAGE" && return 0
  echo "building $PYTHON_IMAGE ($BASE_IMAGE + python3-venv)"
  # a context of its own: the build needs none, and no host folder is the same on every machine
  local context
  context=$(mktemp -d)
  printf 'FROM %s\nRUN apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends python3-venv >/dev/null && rm -rf /var/lib/apt/lists/*\n' "$BASE_IMAGE" \
    > "$context/Containerfile"
  podman build -q -t "$PYTHON_IMAGE" "$context" >/dev/null || { rm -rf "$context"; echo "building $PYTHON_IMAGE failed" >&2; exit 1; }
  rm -rf "$context"
}

case "${1:-}" in
  setup) setup ;;
  socket) socket ;;
  base-image) setup; base_image ;;
  python-image) setup; base_image; python_image ;;
  *) echo "usage: containers/podman.sh setup|socket|base-image|python-image" >&2; exit 2 ;;
esac
