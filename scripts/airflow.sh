#!/usr/bin/env bash
# Migrates Airflow's metadata database and starts, stops and reports the
# scheduler, DAG processor, triggerer and API server of the local stack. Each
# runs in its own session with its log in .local/log/airflow-<name>.log and its
# pid in .local/run/airflow-<name>.pid. Nothing listens beyond 127.0.0.1: the
# API server binds to $BIND and the scheduler's and triggerer's log servers
# (which would bind every interface) are not started; tasks run locally
# (LocalExecutor) so the API server reads their logs straight from disk.
# Idempotent. Usage: airflow.sh [migrate|start|stop|status]
source "$(dirname "$0")/common.sh"
[ -f "$LOCAL/env.sh" ] || die "missing $LOCAL/env.sh; run scripts/services.sh start first"
source "$LOCAL/env.sh"
# A file of exports applied on top (bench/dag_overhead.py points the connections at the bench's targets).
if [ -n "${ARCHIVIST_EXTRA_ENV:-}" ]; then source "$ARCHIVIST_EXTRA_ENV"; fi
# The port .local/env.sh was written with: what the demo, the tests and AIRFLOW__API__BASE_URL
# use, even when this shell lacks the ARCHIVIST_AIRFLOW_PORT that `make services` was given.
AIRFLOW_PORT="${AIRFLOW__API__PORT:-$AIRFLOW_PORT}"

LOGS="$LOCAL/log"
RUN="$LOCAL/run"
API_URL="http://$BIND:$AIRFLOW_PORT"
HEALTH_URL="$API_URL/api/v2/monitor/health"
START_TIMEOUT=180
STOP_TIMEOUT=60
COMPONENTS=(scheduler dag-processor triggerer api-server)

component_cmd() {  # $1 = component; prints nothing, sets CMD
  case "$1" in
    scheduler) CMD=(airflow scheduler --skip-serve-logs) ;;
    dag-processor) CMD=(airflow dag-processor) ;;
    triggerer) CMD=(airflow triggerer --skip-serve-logs) ;;
    api-server) CMD=(airflow api-server --host "$BIND" --port "$AIRFLOW_PORT") ;;
    *) die "unknown component $1" ;;
  esac
}

pidfile() { echo "$RUN/airflow-$1.pid"; }
logfile() { echo "$LOGS/airflow-$1.log"; }

# Prints the pid of a running component, or fails; a stale or reused pid does not count.
running_pid() {
  local file pid
  file="$(pidfile "$1")"
  [ -f "$file" ] || return 1
  pid="$(cat "$file")"
  [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null || return 1
  tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -q airflow || return 1
  echo "$pid"
}

migrate() {
  local out="$LOGS/airflow-migrate.log"
  mkdir -p "$LOGS" "$AIRFLOW_HOME"
  if ! airflow db migrate >"$out" 2>&1; then
    tail -n 30 "$out" >&2
    die "airflow db migrate failed (is PostgreSQL up? scripts/services.sh start); see $out"
  fi
  log "Airflow metadata database is up to date"
}

# SimpleAuthManager generates a random password for every configured user that
# is missing from its passwords file. Pre-seeding the file with the demo
# password (the user name) for missing users makes logins deterministic on a
# fresh clone; passwords already in the file are kept.
seed_passwords() {
  local file="$AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE"
  mkdir -p "$(dirname "$file")"
  (umask 077; touch "$file")
  python - "$file" <<'PY'
import json, os, sys
path = sys.argv[1]
with open(path) as f:
    text = f.read().strip()
passwords = json.loads(text) if text else {}
users = [u.split(":")[0].strip() for u in os.environ["AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS"].split(",") if u.strip()]
missing = [u for u in users if u not in passwords]
if missing:
    passwords.update({u: u for u in missing})
    with open(path, "w") as f:
        f.write(json.dumps(passwords) + "\n")
PY
  chmod 0600 "$file"
}

# What every Airflow command of the Makefile does first (`make test` through `migrate`, `make
# airflow` and `make demo` through `start`): the database migrated and the users' passwords seeded,
# so the login is the same whichever ran first.
prepare() {
  migrate
  seed_passwords
}

start_one() {
  local name="$1" pid out
  if pid="$(running_pid "$name")"; then log "airflow $name already running (pid $pid)"; return; fi
  component_cmd "$name"
  out="$(logfile "$name")"
  printf '\n=== %s starting: %s\n' "$(date -Is)" "${CMD[*]}" >>"$out"
  # setsid: own process group, so stop can end the component with all its children.
  setsid "${CMD[@]}" >>"$out" 2>&1 </dev/null &
  echo $! >"$(pidfile "$name")"
  log "started airflow $name (pid $!, log $out)"
}

# Prints a one-line reason the stack is not ready yet, or nothing when it is.
health_problem() {
  local body
  body="$(curl -sf --max-time 5 "$HEALTH_URL" 2>/dev/null)" || { echo "api-server"; return; }
  python -c '
import json, sys
h = json.loads(sys.argv[1])
bad = [k for k in ("metadatabase", "scheduler") if (h.get(k) or {}).get("status") != "healthy"]
print(" ".join(bad))' "$body"
}

wait_healthy() {
  local deadline=$((SECONDS + START_TIMEOUT)) problem name
  while :; do
    for name in "${COMPONENTS[@]}"; do
      running_pid "$name" >/dev/null || {
        tail -n 30 "$(logfile "$name")" >&2
        die "airflow $name exited during start; see its log: $(logfile "$name")"
      }
    done
    problem="$(health_problem)"
    [ -z "$problem" ] && break
    if [ "$SECONDS" -ge "$deadline" ]; then
      case "$problem" in
        api-server) name=api-server ;;
        metadatabase*) name=api-server ;;
        *) name=scheduler ;;
      esac
      tail -n 30 "$(logfile "$name")" >&2
      die "Airflow not healthy within ${START_TIMEOUT}s (unhealthy: $problem); see $(logfile "$name")"
    fi
    sleep 2
  done
  log "Airflow is healthy: $(curl -sf "$HEALTH_URL" | python -c '
import json, sys
print(", ".join(k + " " + str((v or {}).get("status")) for k, v in json.load(sys.stdin).items()))')"
}

print_login() {
  local password
  password="$(python -c 'import json, sys; print(json.load(open(sys.argv[1])).get("admin", "?"))' \
    "$AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE")"
  log "Airflow UI: $API_URL  (user admin, password $password; read-only user viewer)"
  log "passwords of all users: $AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE"
}

start_all() {
  local name
  mkdir -p "$LOGS" "$RUN"
  if ! running_pid api-server >/dev/null && ss -Hltn "sport = :$AIRFLOW_PORT" | grep -q .; then
    die "port $AIRFLOW_PORT is already in use by another process (ss -ltnp 'sport = :$AIRFLOW_PORT')"
  fi
  prepare
  for name in "${COMPONENTS[@]}"; do start_one "$name"; done
  wait_healthy
  print_login
}

# Sends SIGTERM to the components' process groups, waits, then SIGKILLs what is left.
stop_group() {
  local names=("$@") pids=() name pid deadline
  for name in "${names[@]}"; do
    if pid="$(running_pid "$name")"; then
      kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null || true
      pids+=("$pid")
      log "stopping airflow $name (pid $pid)"
    fi
    rm -f "$(pidfile "$name")"
  done
  deadline=$((SECONDS + STOP_TIMEOUT))
  for pid in "${pids[@]}"; do
    while kill -0 -- "-$pid" 2>/dev/null; do
      if [ "$SECONDS" -ge "$deadline" ]; then
        log "process group $pid did not stop within ${STOP_TIMEOUT}s; killing it"
        kill -KILL -- "-$pid" 2>/dev/null || true
        break
      fi
      sleep 1
    done
  done
}

stop_all() {
  # The API server goes last: running tasks report their end state through it.
  stop_group scheduler triggerer dag-processor
  stop_group api-server
  log "Airflow stopped"
}

status() {
  local name pid
  for name in "${COMPONENTS[@]}"; do
    if pid="$(running_pid "$name")"; then echo "$name: running (pid $pid)"; else echo "$name: stopped"; fi
  done
  curl -sf --max-time 5 "$HEALTH_URL" && echo || echo "api: not answering at $HEALTH_URL"
}

case "${1:-start}" in
  migrate) prepare ;;  # the passwords file before anything else writes it, and 0600
  start) start_all ;;
  stop) stop_all ;;
  status) status ;;
  *) die "usage: airflow.sh [migrate|start|stop|status]" ;;
esac
