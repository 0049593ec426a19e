#!/usr/bin/env bash
# Installs what is missing, idempotently: the Python venv, PostgreSQL from
# apt, Elasticsearch from Maven Central, MinIO from the Go module proxy.
# Downloads and builds are cached in $CACHE; a second run does neither.
source "$(dirname "$0")/common.sh"
mkdir -p "$CACHE" "$LOCAL/bin"

install_python() {
  local venv; venv="$(venv_dir)"
  if [ ! -f "$venv/.complete" ]; then
    log "creating Python venv $venv (first run only)"
    rm -rf "$venv"
    "$PYTHON" -m venv "$venv"
    "$venv/bin/pip" install -q --upgrade "pip==26.3"
    "$venv/bin/pip" install -q -r "$ROOT/requirements.txt" -c "$ROOT/constraints.txt"
    touch "$venv/.complete"  # an interrupted install is redone, never half-used
  else
    log "Python venv cached: $venv"
  fi
  ln -sfn "$venv" "$LOCAL/venv"
}

apt_install() {
  [ "$(id -u)" = 0 ] || die "missing Debian packages: $*; install them with: sudo apt-get install $*"
  if [ -z "$(find /var/lib/apt/lists -maxdepth 1 -name '*Packages*' -print -quit 2>/dev/null)" ]; then
    apt-get update -qq
  fi
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null \
    || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null; }
}

install_postgres() {
  if [ ! -x "/usr/lib/postgresql/$PG_MAJOR/bin/initdb" ]; then
    log "installing PostgreSQL $PG_MAJOR from apt"
    apt_install "postgresql-$PG_MAJOR" "postgresql-client-$PG_MAJOR"
  else
    log "PostgreSQL $PG_MAJOR installed"
  fi
}

install_elasticsearch() {
  local zip="$CACHE/es/elasticsearch-$ES_VERSION.zip"
  if [ ! -f "$zip" ]; then
    log "downloading Elasticsearch $ES_VERSION (integ-test-zip) from Maven Central"
    mkdir -p "$CACHE/es"
    mvn -B -q org.apache.maven.plugins:maven-dependency-plugin:3.8.1:copy \
      -Dartifact="org.elasticsearch.distribution.integ-test-zip:elasticsearch:$ES_VERSION:zip" \
      -DoutputDirectory="$CACHE/es" -Dmaven.repo.local="$CACHE/m2"
  else
    log "Elasticsearch $ES_VERSION cached"
  fi
}

install_minio() {
  local bin="$CACHE/go/bin/minio" stamp="$CACHE/go/minio.version"
  if [ ! -x "$bin" ] || [ "$(cat "$stamp" 2>/dev/null)" != "$MINIO_VERSION" ]; then
    log "building MinIO $MINIO_VERSION with go install (first run only, a few minutes)"
    GOPATH="$CACHE/go" GOMODCACHE="$CACHE/go/pkg/mod" GOCACHE="$CACHE/go/cache" GOFLAGS=-mod=mod \
      go install "github.com/minio/minio@$MINIO_VERSION"
    echo "$MINIO_VERSION" > "$stamp"
  else
    log "MinIO $MINIO_VERSION cached"
  fi
}

ensure_service_user() {
  [ "$(id -u)" = 0 ] || return 0
  id "$SERVICE_USER" >/dev/null 2>&1 || useradd --system --no-create-home --shell /usr/sbin/nologin "$SERVICE_USER"
}

case "${1:-all}" in
  python) install_python ;;
  servers) install_postgres; install_elasticsearch; install_minio; ensure_service_user ;;
  all) install_python; install_postgres; install_elasticsearch; install_minio; ensure_service_user ;;
  *) die "usage: install.sh [all|python|servers]" ;;
esac
