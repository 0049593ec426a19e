#!/usr/bin/env bash
# Search servers beside the stack's Elasticsearch 8.19, only when asked: Elasticsearch 7.17 and 9,
# OpenSearch 2 and 3, from Maven Central's integ-test-zip distributions (cached in $CACHE/es), each
# unpacked into .local/search/<label>/, run as the service user on 127.0.0.1 with a small heap.
#
#   search_servers.sh start [LABEL...]   (default: the labels of $ARCHIVIST_ES_VERSIONS)
#   search_servers.sh stop [LABEL...]    (default: every one this clone started)
#   search_servers.sh url LABEL          the URL a started one answers on
#
# LABEL is 7.17, 9, opensearch-2 or opensearch-3. Each has its own HTTP port, ES_EXTRA_PORT plus
# its slot below (the transport port the first free one from 100 above: nothing connects to it), so a
# label keeps its HTTP port whichever others run.
# The Elasticsearch ones log in as the stack's user (file realm, security on, plain HTTP); the
# OpenSearch distribution has no security plugin, so it asks for no login.
source "$(dirname "$0")/common.sh"

SEARCH_DIR="$LOCAL/search"
SEARCH_HEAP="${ARCHIVIST_SEARCH_HEAP:-384m}"
JAVA_HOME_17="${ES_JAVA_HOME:-$(dirname "$(dirname "$(readlink -f "$(command -v java)")")")}"
JAVA_HOME_25="${ARCHIVIST_JAVA_HOME_25:-/usr/lib/jvm/temurin-25-jdk-amd64}"

# label -> "family version slot java-home"; 9.x and OpenSearch 3 need Java 21 or newer.
spec() {
  case "$1" in
    7.17) echo "elasticsearch 7.17.29 0 $JAVA_HOME_17" ;;
    9) echo "elasticsearch 9.2.4 1 $JAVA_HOME_25" ;;
    opensearch-2) echo "opensearch 2.19.6 2 $JAVA_HOME_17" ;;
    opensearch-3) echo "opensearch 3.6.0 3 $JAVA_HOME_25" ;;
    8.19 | 8) echo "main" ;;
    *) die "unknown search server '$1': use 7.17, 9, opensearch-2 or opensearch-3 (8.19 is the stack's own)" ;;
  esac
}

labels() {  # the labels asked for, without the stack's own 8.19
  local label
  for label in "$@"; do [ "$(spec "$label")" = main ] || echo "$label"; done
}

download() {  # FAMILY VERSION: the integ-test-zip into $CACHE/es, once
  local family="$1" version="$2" zip="$CACHE/es/$1-$2.zip" group
  [ -f "$zip" ] && return 0
  group="org.$family.distribution.integ-test-zip"
  log "downloading $family $version ($group) from Maven Central"
  mkdir -p "$CACHE/es"
  # stdout carries the server's URL alone: Maven's output (colour codes even with -q) goes to stderr
  mvn -B -q -Dstyle.color=never org.apache.maven.plugins:maven-dependency-plugin:3.8.1:copy \
    -Dartifact="$group:$family:$version:zip" -DoutputDirectory="$CACHE/es" -Dmaven.repo.local="$CACHE/m2" >&2 \
    || die "could not download $group:$family:$version:zip from Maven Central"
}

port_of() { local s; read -r _ _ s _ <<<"$(spec "$1")"; echo $((ES_EXTRA_PORT + s)); }

url() { echo "http://$BIND:$(port_of "$1")"; }

netrc_of() { echo "$SEARCH_DIR/$1/curl.netrc"; }

health() {  # LABEL: yellow or better, logged in where the server asks for it
  curl -sf --netrc-file "$(netrc_of "$1")" "$(url "$1")/_cluster/health?wait_for_status=yellow&timeout=1s"
}

start_one() {
  local label="$1" family version slot java home dir port pidfile
  read -r family version slot java <<<"$(spec "$label")"
  [ -x "$java/bin/java" ] || die "$family $version needs the Java in $java, which is not installed"
  dir="$SEARCH_DIR/$label" home="$SEARCH_DIR/$label/home" port="$(port_of "$label")" pidfile="$SEARCH_DIR/$label/server.pid"
  mkdir -p "$dir" "$LOCAL/log"
  if [ "$(id -u)" = 0 ]; then chown "$SERVICE_USER" "$dir"; fi
  write_secret "$(netrc_of "$label")" "machine $BIND login $ES_USER password $ES_PASSWORD"
  if health "$label" >/dev/null 2>&1; then echo "$(url "$label")"; return 0; fi
  download "$family" "$version"
  if [ ! -f "$home/.version-$version" ]; then
    log "unpacking $family $version into $home"
    rm -rf "$home" "$dir/unpack" "$dir/data"
    mkdir -p "$dir/unpack"
    unzip -q "$CACHE/es/$family-$version.zip" -d "$dir/unpack"  # the cache is this user's, not the service user's
    mv "$dir/unpack/$family-$version" "$home"
    rmdir "$dir/unpack"
    if [ "$(id -u)" = 0 ]; then chown -R "$SERVICE_USER" "$home"; fi
    local conf="$home/config/$family.yml"
    as_service_user tee -a "$conf" >/dev/null <<CONF
cluster.name: archivist-$label
network.host: $BIND
http.port: $port
transport.port: $((port + 100))-$((port + 109))
discovery.type: single-node
path.data: $dir/data
path.logs: $LOCAL/log/search-$label
action.destructive_requires_name: false
CONF
    if [ "$family" = elasticsearch ]; then
      as_service_user tee -a "$conf" >/dev/null <<CONF
xpack.security.enabled: true
xpack.security.http.ssl.enabled: false
xpack.security.transport.ssl.enabled: false
CONF
      printf '%s\n%s\n' "$ES_PASSWORD" "$ES_PASSWORD" | as_service_user env ES_JAVA_HOME="$java" \
        "$home/bin/elasticsearch-users" useradd "$ES_USER" -r superuser >>"$LOCAL/log/search-$label.out" 2>&1 \
        || die "elasticsearch-users failed for $label; see $LOCAL/log/search-$label.out"
      chmod 0600 "$home/config/users" "$home/config/users_roles"
    fi
    as_service_user touch "$home/.version-$version"
  fi
  as_service_user mkdir -p "$dir/data" "$dir/tmp" "$LOCAL/log/search-$label"
  log "starting $family $version ($label) on $BIND:$port"
  local upper; upper="$(echo "$family" | tr a-z A-Z)"  # ES_ or OPENSEARCH_ variables
  [ "$family" = elasticsearch ] && upper=ES
  as_service_user env "${upper}_JAVA_HOME=$java" "${upper}_JAVA_OPTS=-Xms$SEARCH_HEAP -Xmx$SEARCH_HEAP" \
    "${upper}_TMPDIR=$dir/tmp" "$home/bin/$family" -d -p "$pidfile" >"$LOCAL/log/search-$label.out" 2>&1 \
    || { tail -n 20 "$LOCAL/log/search-$label.out" >&2; die "$family $version failed to start; see $LOCAL/log/search-$label.out"; }
  local launched=$SECONDS deadline=$((SECONDS + 420))  # OpenSearch 3 took 5 minutes on a busy machine
  until health "$label" >/dev/null 2>&1; do
    # The node writes its pid file early in its start (7.x and OpenSearch may take a few seconds
    # after `-d` returns) and removes it when it stops: a dead pid, or none after a minute, failed.
    if { [ -f "$pidfile" ] && ! kill -0 "$(cat "$pidfile" 2>/dev/null)" 2>/dev/null; } \
      || { [ ! -f "$pidfile" ] && [ "$((SECONDS - launched))" -ge 60 ]; }; then
      tail -n 30 "$LOCAL/log/search-$label"/*.log >&2 || true
      die "$family $version ($label) stopped while starting; see $LOCAL/log/search-$label/"
    fi
    if [ "$SECONDS" -ge "$deadline" ]; then
      tail -n 30 "$LOCAL/log/search-$label"/*.log >&2 || true
      die "$family $version ($label) did not answer on port $port within 420s; see $LOCAL/log/search-$label/"
    fi
    sleep 1
  done
  log "$family $version ($label) is up"
  url "$label"
}

stop_one() {
  [ -f "$SEARCH_DIR/$1/server.pid" ] || return 0
  stop_pidfile "$SEARCH_DIR/$1/server.pid" 60
  log "search server $1 stopped"
}

started() { local d; for d in "$SEARCH_DIR"/*/server.pid; do [ -f "$d" ] && basename "$(dirname "$d")"; done; true; }

command="${1:-start}"; shift || true
case "$command" in
  start)
    # shellcheck disable=SC2086
    for label in $(labels ${@:-${ARCHIVIST_ES_VERSIONS:-}}); do start_one "$label"; done ;;
  stop)
    for label in ${@:-$(started)}; do stop_one "$label"; done ;;
  url) url "${1:?which server}" ;;
  *) die "usage: search_servers.sh [start [LABEL...]|stop [LABEL...]|url LABEL]" ;;
esac
