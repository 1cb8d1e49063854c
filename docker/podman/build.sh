#!/usr/bin/env bash
# `make image`: the production image from docker/Dockerfile, unchanged, with podman and no
# registry. The base is built locally when absent (base.sh); the Docker format keeps the
# HEALTHCHECK (the OCI format drops it); host networking for pip.
source "$(dirname "$0")/env.sh"

"$ROOT/docker/podman/base.sh"
log "building $IMAGE from docker/Dockerfile"
start=$(date +%s)
previous=$(podman image inspect "$IMAGE" --format '{{.Id}}' 2>/dev/null || true)
podman build --pull=never --format docker --network host -f "$ROOT/docker/Dockerfile" -t "$IMAGE" "$ROOT" \
  >"$PODMAN_STATE/build.log" 2>&1 || { tail -n 40 "$PODMAN_STATE/build.log" >&2; exit 1; }
# The image this build replaced, unless containers still use it; the layers the new one shares
# with it (the dependencies, when they did not change) stay as its cache.
current=$(podman image inspect "$IMAGE" --format '{{.Id}}')
if [ -n "$previous" ] && [ "$previous" != "$current" ]; then podman rmi "$previous" >/dev/null 2>&1 || true; fi
# Unnamed images left by earlier builds (their build stage): those this build did not use go.
used=$(sed -n 's/^--> \(Using cache \)\{0,1\}\([0-9a-f]\{11,\}\).*/\2/p' "$PODMAN_STATE/build.log" | cut -c1-11)
for id in $(podman images --quiet --filter dangling=true); do
  grep -qx "${id:0:11}" <<<"$used" || podman rmi "$id" >/dev/null 2>&1 || true
done
size=$(podman image inspect "$IMAGE" --format '{{.Size}}')
log "built $IMAGE in $(( $(date +%s) - start )) s, $(( size / 1000000 )) MB"
