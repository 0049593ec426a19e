# Shared settings for the project's scripts: paths, versions and ports.
# Sourced, never run. Everything runtime lives under .local/, everything
# downloaded or built lives in the per-user cache so a fresh clone reuses it.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
LOCAL="$ROOT/.local"
CACHE="${ARCHIVIST_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/archivist}"

PYTHON="${PYTHON:-python3.11}"
ES_VERSION="8.19.21"
MINIO_VERSION="v0.0.0-20260212201848-7aac2a2c5b7c"  # newest minio module on the Go proxy (2026-02-12)
PG_MAJOR="15"

# Servers run as this unprivileged user; all bind to loopback only.
SERVICE_USER="archivist"
BIND="127.0.0.1"
PG_PORT="${ARCHIVIST_PG_PORT:-55432}"
ES_PORT="${ARCHIVIST_ES_PORT:-59200}"
MINIO_PORT="${ARCHIVIST_MINIO_PORT:-59000}"
MINIO_CONSOLE_PORT="${ARCHIVIST_MINIO_CONSOLE_PORT:-59001}"
AIRFLOW_PORT="${ARCHIVIST_AIRFLOW_PORT:-8080}"
# The executor of the local Airflow: local (LocalExecutor, the default) or celery (CeleryExecutor
# with Redis and two workers, scripts/airflow.sh). Read by `make services`, which writes it into .local/env.sh.
EXECUTOR="${ARCHIVIST_EXECUTOR:-local}"
REDIS_PORT="${ARCHIVIST_REDIS_PORT:-56379}"
# Each Celery worker has a loopback address of its own (its task instances' hostname), where its
# log server listens on this one port: the API server fetches a task's log from <hostname>:<port>.
WORKER_LOG_PORT="${ARCHIVIST_WORKER_LOG_PORT:-18931}"
WORKERS=(w1 w2)
worker_address() { case "$1" in w1) echo 127.0.0.11 ;; w2) echo 127.0.0.12 ;; *) die "unknown worker $1" ;; esac; }
# The HTTPS-only node of `services.sh start-tls` (its transport port is 100 above it).
ES_TLS_PORT="${ARCHIVIST_ES_TLS_PORT:-$((ES_PORT + 50))}"
# The first port of the search servers of scripts/search_servers.sh (7.17, 9, OpenSearch 2 and 3).
ES_EXTRA_PORT="${ARCHIVIST_ES_EXTRA_PORT:-$((ES_PORT + 60))}"

# Demo credentials for the local stack only (never used outside .local/).
PG_DB="archivist_demo"
PG_USER="archivist"
PG_PASSWORD="archivist-demo-pw"
ES_USER="archivist"  # a file-realm superuser of the local Elasticsearch
ES_PASSWORD="archivist-demo-es-pw"
MINIO_USER="archivist-admin"
MINIO_PASSWORD="archivist-demo-secret"
REDIS_PASSWORD="archivist-demo-redis-pw"
APP_BUCKET="archivist-app"
BACKUP_BUCKET="archivist-backups"

log() { printf '[archivist %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

# The venv is keyed by the dependency files, so a change rebuilds it and an
# unchanged fresh clone reuses it.
venv_dir() {
  local digest
  digest="$(cat "$ROOT/requirements.txt" "$ROOT/requirements-dev.txt" "$ROOT/constraints.txt" | sha256sum | cut -c1-12)"
  echo "$CACHE/venv-$digest"
}

# Root hands servers to the service user; anyone else already is unprivileged.
as_service_user() {
  if [ "$(id -u)" = 0 ]; then runuser -u "$SERVICE_USER" -- "$@"; else "$@"; fi
}

# Writes TEXT to FILE readable by its owner only (mode 0600, made by mktemp beside it, never in
# /tmp), owned by the service user when OWNER is `service` and we are root. The old file is
# replaced, not rewritten, so a looser mode it had does not survive.
write_secret() {  # FILE TEXT [OWNER]
  local file="$1" text="$2" tmp
  tmp="$(mktemp "$file.XXXXXX")"
  printf '%s\n' "$text" > "$tmp"
  if [ "${3:-}" = service ] && [ "$(id -u)" = 0 ]; then chown "$SERVICE_USER" "$tmp"; fi
  mv -f "$tmp" "$file"
}

# Stops the server whose pid FILE holds, waits up to SECONDS for it to exit, removes FILE.
stop_pidfile() {  # FILE SECONDS
  local pid
  [ -f "$1" ] || return 0
  pid="$(cat "$1")"
  kill "$pid" 2>/dev/null || true
  for _ in $(seq "$2"); do kill -0 "$pid" 2>/dev/null || break; sleep 1; done
  rm -f "$1"
}

# `go install MODULE@VERSION` into the per-user cache, once per version; NAME is the binary.
go_install_cached() {
  local name="$1" module="$2" version="$3" label="$4" bin="$CACHE/go/bin/$1" stamp="$CACHE/go/$1.version"
  if [ ! -x "$bin" ] || [ "$(cat "$stamp" 2>/dev/null)" != "$version" ]; then
    log "building $label $version with go install (first run only, a few minutes)"
    GOPATH="$CACHE/go" GOMODCACHE="$CACHE/go/pkg/mod" GOCACHE="$CACHE/go/cache" GOFLAGS=-mod=mod \
      go install "$module@$version"
    echo "$version" > "$stamp"
  else
    log "$label $version cached"
  fi
}
