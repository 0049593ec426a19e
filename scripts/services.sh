#!/usr/bin/env bash
# Starts, stops and reports PostgreSQL, Elasticsearch and MinIO for the local
# stack, each as the unprivileged service user, bound to 127.0.0.1, with its
# state under .local/ and its log under .local/log/. Idempotent.
source "$(dirname "$0")/common.sh"
source "$(dirname "$0")/tls.sh"

PG_BIN="/usr/lib/postgresql/$PG_MAJOR/bin"
PG_DATA="$LOCAL/pg/data"
PG_SOCK="$LOCAL/pg/run"
ES_HOME="$LOCAL/es/home"
MINIO_DATA="$LOCAL/minio/data"
LOGS="$LOCAL/log"
JAVA_HOME_17="${ES_JAVA_HOME:-$(dirname "$(dirname "$(readlink -f "$(command -v java)")")")}"

# Waits until "$@" succeeds; on timeout names the server and its log file.
wait_for() {
  local name="$1" logfile="$2" timeout="$3"; shift 3
  local deadline=$((SECONDS + timeout))
  until "$@" >/dev/null 2>&1; do
    if [ "$SECONDS" -ge "$deadline" ]; then
      tail -n 30 "$logfile" >&2 || true
      die "$name did not answer within ${timeout}s; see its log: $logfile"
    fi
    sleep 1
  done
  log "$name is up"
}

prepare_dirs() {
  mkdir -p "$LOGS" "$LOCAL/pg" "$LOCAL/es" "$LOCAL/minio" "$LOCAL/run"
  if [ "$(id -u)" = 0 ]; then
    # The service user must reach its folders through the clone's path.
    chown "$SERVICE_USER" "$LOCAL/pg" "$LOCAL/es" "$LOCAL/minio" "$LOGS"
  fi
  # Pid files, written by this user (the servers' own pid files live in their folders): no one
  # else needs to write here. Older clones made it world-writable.
  chmod 0750 "$LOCAL/run"
  chmod 0755 "$LOCAL/pg" "$LOCAL/es" "$LOCAL/minio" "$LOGS"
}

start_postgres() {
  if [ ! -f "$PG_DATA/PG_VERSION" ]; then
    log "initialising PostgreSQL cluster in $PG_DATA"
    # initdb runs as the service user and reads the password from a file only it may read.
    local pwfile="$LOCAL/pg/initdb-password"
    write_secret "$pwfile" "$PG_PASSWORD" service
    as_service_user "$PG_BIN/initdb" -D "$PG_DATA" -U "$PG_USER" --pwfile="$pwfile" \
      --auth-local=trust --auth-host=scram-sha-256 -E UTF8 --locale=C.UTF-8 >"$LOGS/initdb.log" \
      || { rm -f "$pwfile"; die "initdb failed; see $LOGS/initdb.log"; }
    rm -f "$pwfile"
    cat >>"$PG_DATA/postgresql.conf" <<CONF
listen_addresses = '$BIND'
port = $PG_PORT
unix_socket_directories = '$PG_SOCK'
CONF
  fi
  configure_postgres_tls
  as_service_user mkdir -p "$PG_SOCK"
  if as_service_user "$PG_BIN/pg_ctl" -D "$PG_DATA" status >/dev/null 2>&1; then
    as_service_user "$PG_BIN/pg_ctl" -D "$PG_DATA" reload >/dev/null  # TLS settings need only a reload
  else
    as_service_user "$PG_BIN/pg_ctl" -D "$PG_DATA" -l "$LOGS/postgres.log" -w -t 60 start >/dev/null \
      || { tail -n 20 "$LOGS/postgres.log" >&2; die "PostgreSQL failed to start; see $LOGS/postgres.log"; }
  fi
  wait_for PostgreSQL "$LOGS/postgres.log" 60 "$PG_BIN/pg_isready" -h "$BIND" -p "$PG_PORT"
  local tls
  tls="$(PGPASSWORD="$PG_PASSWORD" psql -X -tA -c "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()" \
    "host=$BIND port=$PG_PORT user=$PG_USER dbname=postgres sslmode=verify-full sslrootcert=$TLS_CA" 2>&1 || true)"
  [ "$tls" = t ] || die "PostgreSQL does not serve TLS with $TLS_CERT ($tls); see $LOGS/postgres.log"
  for db in "$PG_DB" airflow; do
    as_service_user psql -h "$PG_SOCK" -p "$PG_PORT" -U "$PG_USER" -d postgres -tAc \
      "SELECT 1 FROM pg_database WHERE datname = '$db'" | grep -q 1 \
      || as_service_user createdb -h "$PG_SOCK" -p "$PG_PORT" -U "$PG_USER" "$db"
  done
}

# TLS on the normal cluster with the local CA's server certificate. Plain connections still work
# (pg_hba's `host` lines match both), so nothing else changes; a client asks for TLS with sslmode.
# In a file of its own, included from postgresql.conf, so an older cluster gets it too.
configure_postgres_tls() {
  local conf="$PG_DATA/archivist-tls.conf"
  as_service_user tee "$conf" >/dev/null <<CONF
ssl = on
ssl_cert_file = '$TLS_CERT'
ssl_key_file = '$TLS_KEY'
ssl_ca_file = '$TLS_CA'
CONF
  grep -q "^include_if_exists = 'archivist-tls.conf'" "$PG_DATA/postgresql.conf" \
    || echo "include_if_exists = 'archivist-tls.conf'" | as_service_user tee -a "$PG_DATA/postgresql.conf" >/dev/null
  # One role logs in with a client certificate of the local CA and nothing else (the TLS tests
  # make it); first, so the password line below never matches it.
  local hba="hostssl all $TLS_CLIENT_ROLE $BIND/32 cert"
  grep -qxF "$hba" "$PG_DATA/pg_hba.conf" || as_service_user sed -i "1i $hba" "$PG_DATA/pg_hba.conf"
}

# Bump when the configuration appended below changes: an older home is then unpacked again
# (the data in $LOCAL/es/data stays).
ES_CONFIG_REVISION=2
ES_MARKER="$ES_HOME/.version-$ES_VERSION-config-$ES_CONFIG_REVISION"
ES_NETRC="$LOCAL/es/curl.netrc"

# curl to the local Elasticsearch as $ES_USER; the password is read from a 0600 netrc file,
# never passed on argv where `ps` would show it.
es_curl() {  # es_curl PATH [curl options]
  curl -sf --netrc-file "$ES_NETRC" "${@:2}" "http://$BIND:$ES_PORT/$1"
}

write_es_netrc() {
  write_secret "$ES_NETRC" "machine $BIND login $ES_USER password $ES_PASSWORD"
}

es_users() {  # the file-realm tool, as the service user
  as_service_user env ES_JAVA_HOME="$JAVA_HOME_17" "$ES_HOME/bin/elasticsearch-users" "$@" >>"$LOGS/elasticsearch-users.log" 2>&1 \
    || { tail -n 5 "$LOGS/elasticsearch-users.log" >&2; die "elasticsearch-users $1 $2 failed; see $LOGS/elasticsearch-users.log"; }
}

es_user_exists() { grep -q "^$1:" "$ES_HOME/config/users" 2>/dev/null; }

# The file realm's password hashes and the keystore: for the service user alone (the tool leaves 0660).
protect_es_secrets() {
  local f
  for f in users users_roles elasticsearch.keystore; do
    if [ -f "$ES_HOME/config/$f" ]; then chmod 0600 "$ES_HOME/config/$f"; fi
  done
}

# The stack's user in the file realm, made or given the current password; the password goes
# through stdin (the tool prompts for it twice), never argv. Only while the server is down.
ensure_es_user() {
  if es_user_exists "$ES_USER"; then
    printf '%s\n%s\n' "$ES_PASSWORD" "$ES_PASSWORD" | es_users passwd "$ES_USER"
  else
    printf '%s\n%s\n' "$ES_PASSWORD" "$ES_PASSWORD" | es_users useradd "$ES_USER" -r superuser
  fi
  protect_es_secrets
}

# `es-user add NAME [ROLE]` makes a file-realm user anew, its password read from stdin;
# `es-user del NAME` removes it. The running server picks the change up within a second or two.
# (Users made with the security API would live in the .security index, which this distribution
# cannot create: its analyzer needs the missing analysis-common module.)
es_user_command() {
  local action="${1:-}" name="${2:-}" role="${3:-}" password=""
  case "$action" in add|del) [ -n "$name" ] ;; *) false ;; esac \
    || die "usage: services.sh es-user add NAME [ROLE] < password | es-user del NAME"
  if [ "$action" = add ]; then
    IFS= read -r password || true
    [ -n "$password" ] || die "es-user add $name: give the password on stdin"
  fi
  if es_user_exists "$name"; then es_users userdel "$name"; fi
  if [ "$action" = add ]; then
    printf '%s\n%s\n' "$password" "$password" | es_users useradd "$name" ${role:+-r "$role"}
  fi
  protect_es_secrets
}

start_elasticsearch() {
  write_es_netrc
  if [ ! -f "$ES_MARKER" ]; then
    stop_elasticsearch  # one started from an older home would keep its old configuration
    log "unpacking Elasticsearch $ES_VERSION into $ES_HOME"
    rm -rf "$ES_HOME" "$LOCAL/es/unpack"
    mkdir -p "$LOCAL/es/unpack"
    unzip -q "$CACHE/es/elasticsearch-$ES_VERSION.zip" -d "$LOCAL/es/unpack"
    mv "$LOCAL/es/unpack/elasticsearch-$ES_VERSION" "$ES_HOME"
    rmdir "$LOCAL/es/unpack"
    cat >>"$ES_HOME/config/elasticsearch.yml" <<CONF
network.host: $BIND
http.port: $ES_PORT
# A range: nothing connects to a single node's transport port, and a port of the ephemeral range
# may be held for a moment by some client's outgoing connection.
transport.port: $((ES_PORT + 100))-$((ES_PORT + 109))
discovery.type: single-node
path.data: $LOCAL/es/data
path.logs: $LOGS/elasticsearch
action.destructive_requires_name: false
# Users added to the file realm while the server runs count within a second.
resource.reload.interval.high: 1s
# Security on over plain HTTP on loopback: users must log in, nothing is encrypted. Setting
# these explicitly also stops the TLS auto-configuration of a first start.
xpack.security.enabled: true
xpack.security.http.ssl.enabled: false
xpack.security.transport.ssl.enabled: false
CONF
    touch "$ES_MARKER"
    if [ "$(id -u)" = 0 ]; then chown -R "$SERVICE_USER" "$ES_HOME"; fi
  fi
  protect_es_secrets
  if ! es_curl _cluster/health >/dev/null; then  # `GET /` is absent here (405)
    ensure_es_user
    as_service_user mkdir -p "$LOCAL/es/data" "$LOGS/elasticsearch"
    as_service_user mkdir -p "$LOCAL/es/tmp"
    as_service_user env ES_JAVA_HOME="$JAVA_HOME_17" ES_JAVA_OPTS="-Xms768m -Xmx768m" ES_TMPDIR="$LOCAL/es/tmp" \
      "$ES_HOME/bin/elasticsearch" -d -p "$LOCAL/es/es.pid" >"$LOGS/elasticsearch.out" 2>&1 \
      || { tail -n 20 "$LOGS/elasticsearch.out" >&2; die "Elasticsearch failed to start; see $LOGS/elasticsearch.out"; }
  fi
  wait_for Elasticsearch "$LOGS/elasticsearch/elasticsearch.log" 120 \
    es_curl "_cluster/health?wait_for_status=yellow&timeout=1s"
  # Disk watermarks in bytes left, not in percent: on a shared disk of 252 GB, 90% used still
  # leaves 25 GB, yet the default high watermark would refuse a new index there (a restore at
  # bench scale 5 failed so: "primary shard is not active").
  es_curl _cluster/settings -X PUT -H 'Content-Type: application/json' -o /dev/null -d \
    '{"persistent": {"cluster.routing.allocation.disk.watermark.low": "6gb",
      "cluster.routing.allocation.disk.watermark.high": "4gb",
      "cluster.routing.allocation.disk.watermark.flood_stage": "2gb"}}' \
    || die "Elasticsearch refused its disk watermarks; see $LOGS/elasticsearch/elasticsearch.log"
  local anonymous
  anonymous="$(curl -s -o /dev/null -w '%{http_code}' "http://$BIND:$ES_PORT/_cluster/health" || true)"
  [ "$anonymous" = 401 ] || die "Elasticsearch on port $ES_PORT answers $anonymous without credentials, not 401:" \
    "a server started with an older configuration still runs; stop it and run this again"
}

# A second Elasticsearch node that speaks HTTPS only, on demand (`services.sh start-tls`, or the
# TLS tests' fixture). Turning TLS on for the main node's HTTP port would change every client of
# it (curl here, the benchmark's elasticdump, the demo), so the main node stays plain HTTP and
# this one, from the same install with its own config folder (ES_PATH_CONF), data, port and users
# file copied from the main node, serves the local CA's certificate: a cluster of its own, empty.
ES_TLS_DIR="$LOCAL/es-tls"
ES_TLS_PIDFILE="$ES_TLS_DIR/es.pid"

es_tls_curl() {
  curl -sf --cacert "$TLS_CA" --netrc-file "$ES_NETRC" "https://$BIND:$ES_TLS_PORT/$1"
}

start_elasticsearch_tls() {
  [ -f "$ES_MARKER" ] || die "start the main services first: bash scripts/services.sh start"
  ensure_tls_certs
  write_es_netrc
  if ! es_tls_curl _cluster/health >/dev/null; then
    stop_elasticsearch_tls
    local conf="$ES_TLS_DIR/config"
    mkdir -p "$ES_TLS_DIR"
    if [ "$(id -u)" = 0 ]; then chown "$SERVICE_USER" "$ES_TLS_DIR"; fi
    as_service_user rm -rf "$conf"
    as_service_user cp -a "$ES_HOME/config" "$conf"  # jvm.options, log4j2, the keystore, the users
    as_service_user mkdir -p "$conf/certs" "$ES_TLS_DIR/data" "$ES_TLS_DIR/tmp" "$LOGS/elasticsearch-tls"
    # Elasticsearch reads TLS files only from inside its config folder.
    cp "$TLS_CERT" "$TLS_CA" "$conf/certs/" && cp "$TLS_KEY" "$conf/certs/server.key"
    if [ "$(id -u)" = 0 ]; then chown -R "$SERVICE_USER" "$conf/certs"; fi
    chmod 0600 "$conf/certs/server.key"
    as_service_user tee "$conf/elasticsearch.yml" >/dev/null <<CONF
cluster.name: archivist-tls
node.name: archivist-tls
network.host: $BIND
http.port: $ES_TLS_PORT
transport.port: $((ES_TLS_PORT + 100))-$((ES_TLS_PORT + 109))
discovery.type: single-node
path.data: $ES_TLS_DIR/data
path.logs: $LOGS/elasticsearch-tls
action.destructive_requires_name: false
resource.reload.interval.high: 1s
xpack.security.enabled: true
xpack.security.http.ssl.enabled: true
xpack.security.http.ssl.certificate: certs/server.crt
xpack.security.http.ssl.key: certs/server.key
xpack.security.http.ssl.certificate_authorities: [ "certs/ca.crt" ]
# A client certificate is not required, but one that is shown must be the local CA's.
xpack.security.http.ssl.client_authentication: optional
xpack.security.transport.ssl.enabled: false
CONF
    as_service_user env ES_PATH_CONF="$conf" ES_JAVA_HOME="$JAVA_HOME_17" ES_JAVA_OPTS="-Xms768m -Xmx768m" \
      ES_TMPDIR="$ES_TLS_DIR/tmp" "$ES_HOME/bin/elasticsearch" -d -p "$ES_TLS_PIDFILE" \
      >"$LOGS/elasticsearch-tls.out" 2>&1 \
      || { tail -n 20 "$LOGS/elasticsearch-tls.out" >&2; die "the TLS Elasticsearch node failed to start"; }
  fi
  wait_for "Elasticsearch (TLS, port $ES_TLS_PORT)" "$LOGS/elasticsearch-tls/archivist-tls.log" 180 \
    es_tls_curl "_cluster/health?wait_for_status=yellow&timeout=1s"
}


stop_elasticsearch_tls() { stop_pidfile "$ES_TLS_PIDFILE" 60; }

start_minio() {
  local bin="$LOCAL/bin/minio"
  if ! cmp -s "$CACHE/go/bin/minio" "$bin"; then cp "$CACHE/go/bin/minio" "$bin"; chmod 0755 "$bin"; fi
  if ! curl -sf "http://$BIND:$MINIO_PORT/minio/health/live" >/dev/null; then
    as_service_user mkdir -p "$MINIO_DATA"
    # Credentials go through the environment, never argv, where `ps` would show them.
    local run=()
    if [ "$(id -u)" = 0 ]; then run=(runuser -u "$SERVICE_USER" -m --); fi
    ( export MINIO_ROOT_USER="$MINIO_USER" MINIO_ROOT_PASSWORD="$MINIO_PASSWORD" MINIO_BROWSER=off MINIO_UPDATE=off \
        HOME="$LOCAL/minio"
      nohup "${run[@]}" "$bin" server --quiet --address "$BIND:$MINIO_PORT" \
        --console-address "$BIND:$MINIO_CONSOLE_PORT" "$MINIO_DATA" >"$LOGS/minio.log" 2>&1 & )
  fi
  wait_for MinIO "$LOGS/minio.log" 60 curl -sf "http://$BIND:$MINIO_PORT/minio/health/live"
  pgrep -f "^$bin server" | head -n1 > "$LOCAL/run/minio.pid"
}

create_buckets() {
  "$LOCAL/venv/bin/python" - "$APP_BUCKET" "$BACKUP_BUCKET" <<PY
import sys, boto3
s3 = boto3.client("s3", endpoint_url="http://$BIND:$MINIO_PORT", aws_access_key_id="$MINIO_USER",
                  aws_secret_access_key="$MINIO_PASSWORD", region_name="us-east-1")
existing = {b["Name"] for b in s3.list_buckets()["Buckets"]}
for name in sys.argv[1:]:
    if name not in existing:
        s3.create_bucket(Bucket=name)
PY
  log "buckets $APP_BUCKET and $BACKUP_BUCKET exist"
}

# Redis, the Celery broker, for `ARCHIVIST_EXECUTOR=celery` only. Its password is in its config
# file (0600, the service user's), never on argv.
REDIS_DIR="$LOCAL/redis"
REDIS_PIDFILE="$REDIS_DIR/redis.pid"

redis_ping() {
  REDISCLI_AUTH="$REDIS_PASSWORD" redis-cli -h "$BIND" -p "$REDIS_PORT" --no-auth-warning ping 2>/dev/null | grep -q PONG
}

start_redis() {
  "$ROOT/scripts/install.sh" redis
  mkdir -p "$REDIS_DIR"
  if [ "$(id -u)" = 0 ]; then chown "$SERVICE_USER" "$REDIS_DIR"; fi
  if ! redis_ping; then
    as_service_user tee "$REDIS_DIR/redis.conf.new" >/dev/null <<CONF
bind $BIND
port $REDIS_PORT
protected-mode yes
requirepass $REDIS_PASSWORD
dir $REDIS_DIR
pidfile $REDIS_PIDFILE
logfile $LOGS/redis.log
daemonize yes
save ""
appendonly no
CONF
    as_service_user chmod 0600 "$REDIS_DIR/redis.conf.new"
    as_service_user mv -f "$REDIS_DIR/redis.conf.new" "$REDIS_DIR/redis.conf"
    as_service_user redis-server "$REDIS_DIR/redis.conf" \
      || { tail -n 20 "$LOGS/redis.log" >&2; die "Redis failed to start; see $LOGS/redis.log"; }
  fi
  wait_for Redis "$LOGS/redis.log" 30 redis_ping
}

stop_redis() { stop_pidfile "$REDIS_PIDFILE" 30; }

# Stops the Elasticsearch this clone started and waits until it has exited.
stop_elasticsearch() { stop_pidfile "$LOCAL/es/es.pid" 60; }

stop_all() {
  [ -f "$PG_DATA/PG_VERSION" ] && as_service_user "$PG_BIN/pg_ctl" -D "$PG_DATA" -m fast stop >/dev/null 2>&1 || true
  stop_elasticsearch
  stop_elasticsearch_tls
  bash "$ROOT/scripts/search_servers.sh" stop
  stop_redis
  pkill -f "^$LOCAL/bin/minio server" || true; rm -f "$LOCAL/run/minio.pid"
  log "services stopped"
}

# Stops one server abruptly, as a crash or a lost host would (fault tests use it).
kill_server() {
  case "$1" in
    postgres) as_service_user "$PG_BIN/pg_ctl" -D "$PG_DATA" -m immediate stop >/dev/null 2>&1 || true ;;
    elasticsearch) [ -f "$LOCAL/es/es.pid" ] && kill -9 "$(cat "$LOCAL/es/es.pid")" 2>/dev/null; rm -f "$LOCAL/es/es.pid" ;;
    minio) pkill -9 -f "^$LOCAL/bin/minio server" || true; rm -f "$LOCAL/run/minio.pid" ;;
    *) die "unknown server $1: postgres, elasticsearch or minio" ;;
  esac
  log "$1 killed"
}

case "${1:-start}" in
  start)
    "$ROOT/scripts/install.sh" all
    prepare_dirs
    ensure_tls_certs
    start_postgres & pg=$!
    start_elasticsearch & es=$!
    start_minio & mn=$!
    wait $pg && wait $es && wait $mn || die "a service failed to start (see above)"
    case "$EXECUTOR" in
      celery) start_redis ;;
      local) ;;
      *) die "ARCHIVIST_EXECUTOR=$EXECUTOR: choose local (LocalExecutor, the default) or celery" ;;
    esac
    create_buckets
    "$ROOT/scripts/write_env.sh"
    if [ -n "${ARCHIVIST_ES_VERSIONS:-}" ]; then bash "$ROOT/scripts/search_servers.sh" start >/dev/null; fi
    ;;
  start-tls) start_elasticsearch_tls ;;
  stop-tls) stop_elasticsearch_tls ;;
  stop) stop_all ;;
  kill) kill_server "${2:?which server}" ;;
  es-user) shift; es_user_command "$@" ;;
  *) die "usage: services.sh [start|stop|start-tls|stop-tls|kill SERVER|es-user add NAME [ROLE]|es-user del NAME]" ;;
esac
