#!/usr/bin/env bash
# `make image-check`: the production image run as production runs it, with podman.
#
#  1. migrate + schedules (compose.yaml's migrate command) through the image;
#  2. web, worker, beat (and the demo's telco API) against this machine's PostgreSQL and Redis
#     (own database, own Redis db), host networking, web on a non-default GUNICORN_BIND and
#     --workdir / (code, templates and static files from site-packages only);
#  3. /healthz, /readyz, a full consent flow, an extraction run by the worker container and an
#     API page (check_flow.py); HEALTHCHECK healthy, worker's compose health check healthy,
#     non-root, JSON log lines only, image size;
#  4. compose.yaml with podman-compose (ordered start), probed through its TLS proxy.
# Everything it started is removed at the end, whatever happens.
source "$(dirname "$0")/env.sh"
started=$(date +%s)

PG_ADMIN_URL=${PG_ADMIN_URL:-postgres://postgres@127.0.0.1:5432/postgres}
CHECK_DB=${CHECK_DB:-restitution_image_check}
CHECK_REDIS_DB=${CHECK_REDIS_DB:-9}
# Tagged with a digest of what it is built from: a change there builds it again.
SERVICES_IMAGE=localhost/restitution-services:$(cat "$ROOT"/docker/podman/services.Containerfile \
  "$ROOT"/docker/podman/stand-in-entrypoint.sh | sha256sum | cut -c1-12)
PREFIX=restitution-check
COMPOSE_PROJECT=restitution-check
COMPOSE_FILE=$ROOT/docker/compose.yaml
WORK=$(mktemp -d)

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
compose() { podman-compose -p "$COMPOSE_PROJECT" -f "$COMPOSE_FILE" "$@" >>"$PODMAN_STATE/compose.log" 2>&1; }
# A list of compose.yaml, one item a line (python3-yaml comes with podman-compose).
compose_list() { python3 -c 'import sys, yaml; v = yaml.safe_load(open(sys.argv[1]))
for k in sys.argv[2:]: v = v[k]
print("\n".join(v))' "$COMPOSE_FILE" "$@"; }

# What compose.yaml reads (also needed to take down the stack of an interrupted run).
cat >"$WORK/compose.env" <<ENV
GATEWAY_ENCRYPTION_KEYS=$(python3 -c 'import base64, os; print(base64.urlsafe_b64encode(os.urandom(32)).decode())')
ENV
export GATEWAY_ENV_FILE=$WORK/compose.env LEGACY_EXPORTS_DIR=$WORK/exports
export DJANGO_SECRET_KEY=$(python3 -c 'import secrets; print(secrets.token_urlsafe(50))')
export POSTGRES_PASSWORD=$(python3 -c 'import secrets; print(secrets.token_urlsafe(16))')
export POSTGRES_IMAGE=$SERVICES_IMAGE REDIS_IMAGE=$SERVICES_IMAGE PROXY_IMAGE=$SERVICES_IMAGE
export GATEWAY_HTTPS_PORT=$(free_port) GATEWAY_HTTP_PORT=$(free_port)
mkdir -p "$WORK/exports"

cleanup() {
  local status=$?
  set +e
  if [ $status -ne 0 ]; then
    for name in web worker beat telco; do
      echo "--- last lines of $PREFIX-$name" >&2
      podman logs --tail 15 "$PREFIX-$name" 2>&1 | cut -c1-400 >&2
    done
  fi
  podman rm -f -t 2 "$PREFIX-web" "$PREFIX-worker" "$PREFIX-beat" "$PREFIX-telco" >/dev/null 2>&1
  podman volume rm -f "$PREFIX-files" >/dev/null 2>&1
  compose down -v
  podman volume ls -q --filter "label=io.podman.compose.project=$COMPOSE_PROJECT" | xargs -r podman volume rm -f >/dev/null 2>&1
  psql -q "$PG_ADMIN_URL" -c "DROP DATABASE IF EXISTS $CHECK_DB WITH (FORCE)" >/dev/null 2>&1
  redis-cli -n "$CHECK_REDIS_DB" flushdb >/dev/null 2>&1
  rm -rf "$WORK"
  log "image check $([ $status -eq 0 ] && echo passed || echo FAILED) in $(( $(date +%s) - started )) s"
}
trap cleanup EXIT

"$ROOT/docker/podman/build.sh"
if ! podman image exists "$SERVICES_IMAGE"; then
  log "building $SERVICES_IMAGE (PostgreSQL, Redis, Caddy from Debian) for the compose run"
  mkdir -p "$WORK/services/ca"
  cp /usr/local/share/ca-certificates/*.crt "$WORK/services/ca/" 2>/dev/null || true
  cp "$ROOT/docker/podman/services.Containerfile" "$ROOT/docker/podman/stand-in-entrypoint.sh" "$WORK/services/"
  podman build --pull=never --network host --format docker -t "$SERVICES_IMAGE" \
    -f "$WORK/services/services.Containerfile" "$WORK/services" >"$PODMAN_STATE/services-build.log" 2>&1 \
    || { tail -n 30 "$PODMAN_STATE/services-build.log" >&2; exit 1; }
  # Earlier versions of it.
  podman images --format '{{.Repository}}:{{.Tag}}' localhost/restitution-services \
    | grep -vx "$SERVICES_IMAGE" | xargs -r podman rmi >/dev/null 2>&1 || true
fi
: >"$PODMAN_STATE/compose.log"

# Leftovers of an interrupted run.
podman rm -f -t 0 "$PREFIX-web" "$PREFIX-worker" "$PREFIX-beat" "$PREFIX-telco" >/dev/null 2>&1 || true
podman volume rm -f "$PREFIX-files" >/dev/null 2>&1 || true
compose down -v || true

# --- 1. the deploy step through the image -----------------------------------------------------
psql -q "$PG_ADMIN_URL" -c "DROP DATABASE IF EXISTS $CHECK_DB WITH (FORCE)" >/dev/null 2>&1
psql -q "$PG_ADMIN_URL" -c "CREATE DATABASE $CHECK_DB" >/dev/null
redis-cli -n "$CHECK_REDIS_DB" flushdb >/dev/null
WEB_PORT=$(free_port)
TELCO_PORT=$(free_port)
ENV_FILE=$WORK/gateway.env
cat >"$ENV_FILE" <<ENV
GATEWAY_MODE=production
DJANGO_SECRET_KEY=$(python3 -c 'import secrets; print(secrets.token_urlsafe(50))')
DJANGO_ALLOWED_HOSTS=localhost,127.0.0.1
DATABASE_URL=${PG_ADMIN_URL%/*}/$CHECK_DB
REDIS_URL=redis://127.0.0.1:6379/$CHECK_REDIS_DB
GATEWAY_ENCRYPTION_KEYS=$(python3 -c 'import base64, os; print(base64.urlsafe_b64encode(os.urandom(32)).decode())')
GUNICORN_BIND=127.0.0.1:$WEB_PORT
WEB_CONCURRENCY=2
ENV
RUN=(podman run --rm --network host --env-file "$ENV_FILE" -v "$PREFIX-files:/var/lib/restitution" "$IMAGE")

mapfile -t MIGRATE < <(compose_list services migrate command)
log "deploy step: ${MIGRATE[*]}"
"${RUN[@]}" "${MIGRATE[@]}" >"$WORK/migrate.out" 2>&1 || { tail -n 20 "$WORK/migrate.out" >&2; exit 1; }
schedules=$("${RUN[@]}" django-admin shell --no-imports -c \
  "from django_celery_beat.models import PeriodicTask; print(PeriodicTask.objects.count())" 2>/dev/null)
[ "$schedules" -ge 7 ] || { log "the deploy step left $schedules schedules"; exit 1; }
log "migrated, $schedules schedules"

# The demo's legacy systems (files, SQLite, an HTTP API) in the files volume, its customers and
# its personal cloud client in the database; the worker reads the legacy systems from there.
# The image ships no demo: the checkout's demo package is mounted read-only and used as a client
# library of the product (docker/podman/demo_client.py), never installed.
DEMO_MOUNT=(-v "$ROOT/demo:/opt/demo-client/demo:ro" -v "$ROOT/docker/podman/demo_client.py:/opt/demo-client/demo_client.py:ro" -e PYTHONPATH=/opt/demo-client)
podman run --rm --network host --env-file "$ENV_FILE" -v "$PREFIX-files:/var/lib/restitution" "${DEMO_MOUNT[@]}" \
  "$IMAGE" python /opt/demo-client/demo_client.py /var/lib/restitution/demo --customers 6 \
  --telco-url "http://127.0.0.1:$TELCO_PORT" >"$WORK/demo.out" 2>"$WORK/demo.err" \
  || { tail -n 20 "$WORK/demo.err" >&2; exit 1; }
grep -E '^[A-Z_]+=' "$WORK/demo.out" >>"$ENV_FILE"

# --- 2. web, worker, beat --------------------------------------------------------------------
mapfile -t WORKER < <(compose_list services worker command)
mapfile -t BEAT < <(compose_list services beat command)
WORKER_HEALTH=$(compose_list services worker healthcheck test | tail -n 1 | sed 's/\$\$/$/g')
# podman without systemd says it cannot schedule health checks (they are run below instead).
START=(podman run -d --network host --env-file "$ENV_FILE" -v "$PREFIX-files:/var/lib/restitution")
"${START[@]}" --name "$PREFIX-telco" "${DEMO_MOUNT[@]}" "$IMAGE" python -m demo.telco_server \
  /var/lib/restitution/demo --port "$TELCO_PORT" --token demo-telco-token >/dev/null 2>>"$WORK/podman-run.err"
# --workdir /: nothing of a source tree can shadow the installed package.
"${START[@]}" --name "$PREFIX-web" --workdir / "$IMAGE" >/dev/null 2>>"$WORK/podman-run.err"
"${START[@]}" --name "$PREFIX-worker" --hostname "$PREFIX-worker" --health-cmd "$WORKER_HEALTH" \
  --health-interval 60s --health-timeout 30s "$IMAGE" "${WORKER[@]}" >/dev/null 2>>"$WORK/podman-run.err"
"${START[@]}" --name "$PREFIX-beat" "$IMAGE" "${BEAT[@]}" >/dev/null 2>>"$WORK/podman-run.err"

healthy() {  # healthy CONTAINER SECONDS: run its HEALTHCHECK until it passes
  local deadline=$(( $(date +%s) + $2 ))
  until podman healthcheck run "$1" >/dev/null 2>&1; do
    [ "$(date +%s)" -lt $deadline ] || { log "$1 is not healthy: $(podman inspect "$1" --format '{{json .State.Health}}' | cut -c1-600)"
      podman logs --tail 20 "$1" 2>&1 | cut -c1-400 >&2; return 1; }
    sleep 1
  done
}
healthy "$PREFIX-web" 60
status=$(podman inspect "$PREFIX-web" --format '{{.State.Health.Status}}')
[ "$status" = healthy ] || { log "web health status: $status"; exit 1; }
log "web healthy on GUNICORN_BIND=127.0.0.1:$WEB_PORT (the image's HEALTHCHECK: $(podman inspect "$PREFIX-web" --format '{{json .Config.Healthcheck.Test}}'))"
user=$(podman exec "$PREFIX-web" id -un):$(podman exec "$PREFIX-web" id -u)
[ "${user#*:}" != 0 ] || { log "web runs as root"; exit 1; }
log "web runs as $user"

log "probes and a consent flow through the web container"
python3 "$ROOT/docker/podman/check_flow.py" "http://127.0.0.1:$WEB_PORT" --proxy-header --host localhost
healthy "$PREFIX-worker" 60
log "worker healthy (compose's health check: celery inspect ping)"
[ "$(podman inspect "$PREFIX-beat" --format '{{.State.Running}}')" = true ] || { log "beat stopped"; exit 1; }
# Beat sends the outbox relay every 10 s: the worker receiving one shows the whole schedule path.
deadline=$(( $(date +%s) + 30 ))
until podman logs "$PREFIX-worker" 2>&1 | grep -q 'restitution.tasks.relay_outbox'; do
  [ "$(date +%s)" -lt $deadline ] || { log "no scheduled task reached the worker"; exit 1; }
  sleep 1
done
log "beat's schedule reached the worker"

for name in web worker beat; do
  podman logs "$PREFIX-$name" >"$WORK/$name.log" 2>&1
done
python3 - "$WORK" <<'PY'
import json, pathlib, sys
for name in ("web", "worker", "beat"):
    lines = [line for line in (pathlib.Path(sys.argv[1]) / f"{name}.log").read_text().splitlines() if line.strip()]
    for line in lines:
        try:
            entry = json.loads(line)
        except ValueError:
            sys.exit(f"{name} logged a line that is not JSON: {line[:200]}")
        if not entry.get("time", "").endswith("+00:00"):
            sys.exit(f"{name} logged a time without its offset: {line[:200]}")
        if entry.get("level") in {"ERROR", "CRITICAL"}:
            sys.exit(f"{name} logged an error: {line[:300]}")
    print(f"  ok  {name}: {len(lines)} log lines, all JSON with a UTC time, no error")
PY
podman rm -f -t 2 "$PREFIX-web" "$PREFIX-worker" "$PREFIX-beat" "$PREFIX-telco" >/dev/null 2>&1

# --- 4. compose.yaml with podman-compose --------------------------------------------------------
# podman-compose 1.0 ignores depends_on conditions: the order is kept here (docs/operations.md).
podman tag "$IMAGE" localhost/restitution-gateway:latest 2>/dev/null || true
c() { echo "${COMPOSE_PROJECT}_$1_1"; }
log "compose: postgres and redis"
compose up -d --no-build postgres redis
healthy "$(c postgres)" 120
healthy "$(c redis)" 30
log "compose: migrate"
compose up -d --no-build migrate
[ "$(podman wait "$(c migrate)")" = 0 ] || { podman logs --tail 20 "$(c migrate)" >&2; exit 1; }
log "compose: web, worker, beat, proxy"
compose up -d --no-build
healthy "$(c web)" 60
deadline=$(( $(date +%s) + 30 ))
until podman cp "$(c proxy):/data/caddy/pki/authorities/local/root.crt" "$WORK/proxy-root.crt" 2>/dev/null; do
  [ "$(date +%s)" -lt $deadline ] || { log "the proxy made no local CA"; podman logs --tail 20 "$(c proxy)" >&2; exit 1; }
  sleep 1
done
healthy "$(c worker)" 90
[ -z "$(podman port "$(c web)")" ] || { log "web publishes a port"; exit 1; }
# The demo client copied into the web container (the image has none), run there once.
podman exec "$(c web)" mkdir -p /tmp/demo-client
podman cp "$ROOT/demo" "$(c web):/tmp/demo-client/demo"
podman cp "$ROOT/docker/podman/demo_client.py" "$(c web):/tmp/demo-client/demo_client.py"
podman exec -e PYTHONPATH=/tmp/demo-client "$(c web)" python /tmp/demo-client/demo_client.py \
  /var/lib/restitution/demo --customers 6 --telco-url http://127.0.0.1:9 >"$WORK/compose-demo.out" 2>&1 \
  || { tail -n 20 "$WORK/compose-demo.out" >&2; exit 1; }
log "probes and a consent flow through the TLS proxy (https://localhost:$GATEWAY_HTTPS_PORT, Caddy's local CA)"
python3 "$ROOT/docker/podman/check_flow.py" "https://localhost:$GATEWAY_HTTPS_PORT" --ca "$WORK/proxy-root.crt" --no-extraction
code=$(curl -s -o /dev/null -w '%{http_code} %{redirect_url}' "http://localhost:$GATEWAY_HTTP_PORT/accounts/login/")
[[ $code == 30?" https://"* ]] || { log "plain HTTP on the proxy: $code"; exit 1; }
echo "  ok  plain HTTP on the proxy redirected: $code"
running=$(podman ps --filter "label=io.podman.compose.project=$COMPOSE_PROJECT" --format '{{.Names}}' | sort | tr '\n' ' ')
log "compose services running: $running"
for service in web worker beat proxy postgres redis; do
  [[ " $running" == *" $(c $service) "* ]] || { log "$service is not running"; exit 1; }
done
log "image $IMAGE: $(( $(podman image inspect "$IMAGE" --format '{{.Size}}') / 1000000 )) MB"
