#!/usr/bin/env bash
# The Dockerfile's base image without a container registry: a Debian bookworm minbase made by
# debootstrap from the mirror apt already uses, imported into podman, then python3 and a venv on
# PATH, tagged with the Dockerfile's FROM name so `podman build --pull=never` finds it.
#
# Idempotent: the minbase is made only when absent, the python base when absent or when
# base.Containerfile changed (FORCE=1 rebuilds both).
# Egress passes a TLS-intercepting proxy whose CA is in this host's local certificate folder:
# the local base trusts the certificates found there (a layer of this local base only; the
# shipped Dockerfile adds none).
source "$(dirname "$0")/env.sh"

apt_mirror() {
  local uri
  uri=$(awk '/^URIs:/ {print $2; exit}' /etc/apt/sources.list.d/*.sources 2>/dev/null || true)
  [ -n "$uri" ] || uri=$(awk '$1 == "deb" && $0 !~ /security/ {print $2; exit}' /etc/apt/sources.list 2>/dev/null || true)
  echo "${uri:-http://deb.debian.org/debian}"
}

if [ "${FORCE:-0}" = 1 ]; then podman rmi -f "$BASE_FROM" "$MINBASE" >/dev/null 2>&1 || true; fi

if ! podman image exists "$MINBASE"; then
  mirror=$(apt_mirror)
  rootfs=$PODMAN_STATE/rootfs
  rm -rf "$rootfs"
  log "debootstrap --variant=minbase bookworm from $mirror"
  debootstrap --variant=minbase bookworm "$rootfs" "$mirror" >"$PODMAN_STATE/debootstrap.log" 2>&1 \
    || { tail -n 20 "$PODMAN_STATE/debootstrap.log" >&2; exit 1; }
  # The container's apt reads the same mirror; no apt caches in the image. As in Debian's slim
  # images, dpkg installs no manuals, documentation (but copyright files) or translations.
  rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/*
  cat >"$rootfs/etc/dpkg/dpkg.cfg.d/slim" <<'DPKG'
path-exclude /usr/share/doc/*
path-include /usr/share/doc/*/copyright
path-exclude /usr/share/man/*
path-exclude /usr/share/info/*
path-exclude /usr/share/locale/*
path-include /usr/share/locale/locale.alias
DPKG
  find "$rootfs/usr/share/doc" -mindepth 2 ! -name copyright ! -type d -delete
  rm -rf "$rootfs"/usr/share/man/* "$rootfs"/usr/share/info/*
  find "$rootfs/usr/share/locale" -mindepth 1 -maxdepth 1 ! -name locale.alias -exec rm -rf {} +
  tar -C "$rootfs" -c . | podman import - "$MINBASE" >/dev/null 2>&1
  rm -rf "$rootfs"
  log "imported $MINBASE"
fi

# The base is built again when base.Containerfile changes (a digest of it labels the image).
inputs=$(sha256sum <"$ROOT/docker/podman/base.Containerfile" | cut -c1-12)
built_from=$(podman image inspect "$BASE_FROM" --format '{{index .Labels "org.restitution.base-inputs"}}' 2>/dev/null || true)
if [ "$built_from" != "$inputs" ]; then
  context=$PODMAN_STATE/base-context
  rm -rf "$context" && mkdir -p "$context/ca"
  cp /usr/local/share/ca-certificates/*.crt "$context/ca/" 2>/dev/null || true
  cp "$ROOT/docker/podman/base.Containerfile" "$context/Containerfile"
  log "building $BASE_FROM from $MINBASE (trusting $(ls "$context/ca" | wc -l) local CA certificate(s))"
  podman build --pull=never --network host --format docker --label "org.restitution.base-inputs=$inputs" \
    -t "$BASE_FROM" "$context" >"$PODMAN_STATE/base-build.log" 2>&1 \
    || { tail -n 30 "$PODMAN_STATE/base-build.log" >&2; exit 1; }
  rm -rf "$context"
  log "built $BASE_FROM"
fi
