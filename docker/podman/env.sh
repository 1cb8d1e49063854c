# Sourced by the podman scripts: the tools, and the engine settings this kind of host needs.
#
# Debian bookworm, root, a hybrid cgroup layout (crun refuses it: "cgroups in hybrid mode not
# supported"), no systemd: runc, cgroupfs, a file event log, and ulimits the host can grant.
# Everything is kept under $PODMAN_STATE (default: var/podman in the checkout).

set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
PODMAN_STATE=${PODMAN_STATE:-$ROOT/var/podman}
# The image the Dockerfile starts FROM, built locally (base.sh) when no registry is reachable.
BASE_FROM=$(awk 'toupper($1) == "FROM" {print $2; exit}' "$ROOT/docker/Dockerfile")
MINBASE=localhost/debian:bookworm-minbase
IMAGE=${IMAGE:-localhost/restitution-gateway:latest}

log() { printf '%s image: %s\n' "$(date +%H:%M:%S)" "$*" >&2; }

ensure_tools() {
  local missing=()
  # netavark sets up the compose network's firewall rules with iptables.
  for tool in podman buildah debootstrap newuidmap fuse-overlayfs slirp4netns runc podman-compose netavark iptables; do
    command -v "$tool" >/dev/null 2>&1 || [ -x "/usr/lib/podman/$tool" ] || missing+=("$tool")
  done
  if [ ${#missing[@]} -gt 0 ]; then
    log "installing podman and its tools (missing: ${missing[*]})"
    export DEBIAN_FRONTEND=noninteractive
    local packages=(podman buildah debootstrap uidmap fuse-overlayfs slirp4netns runc podman-compose
                    netavark aardvark-dns iptables)
    apt-get install -y "${packages[@]}" >/dev/null \
      || { apt-get update >/dev/null && apt-get install -y "${packages[@]}" >/dev/null; }
  fi
}

write_containers_conf() {
  mkdir -p "$PODMAN_STATE"
  local nofile
  nofile=$(ulimit -Hn)
  [ "$nofile" = unlimited ] && nofile=1048576
  cat >"$PODMAN_STATE/containers.conf" <<CONF
# Written by docker/podman/env.sh for this host; passed to podman with CONTAINERS_CONF.
[containers]
default_ulimits = ["nofile=$nofile:$nofile", "nproc=32768:32768"]

[engine]
runtime = "runc"
cgroup_manager = "cgroupfs"
events_logger = "file"

[network]
network_backend = "netavark"
CONF
  export CONTAINERS_CONF=$PODMAN_STATE/containers.conf
}

ensure_tools
write_containers_conf
