#!/usr/bin/env bash
# Migrates Airflow's metadata database and starts, stops and reports the
# scheduler, DAG processor, triggerer and API server of the local stack. Each
# runs in its own session with its log in .local/log/airflow-<name>.log and its
# pid in .local/run/airflow-<name>.pid. Nothing listens beyond 127.0.0.1: the
# API server binds to $BIND and the scheduler's and triggerer's log servers
# (which would bind every interface) are not started; tasks run locally
# (LocalExecutor) so the API server reads their logs straight from disk.
#
# With ARCHIVIST_EXECUTOR=celery (written into .local/env.sh by `make services`) tasks run on two
# Celery workers, w1 and w2, as on two machines: each has its own HOME, TMPDIR, working folder,
# Airflow home and log folder under .local/workers/<name>/, and shares only the read-only code
# (dags/, plugins/, include/) with the other. Each has a loopback address of its own
# (common.sh: worker_address), recorded as its task instances' hostname, where its log server
# listens for the API server. The workers hand artifacts over through the backup bucket alone.
# Idempotent. Usage: airflow.sh [migrate|start|stop|status|kill-worker NAME|start-worker NAME]
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
EXECUTOR="${ARCHIVIST_EXECUTOR:-local}"
COMPONENTS=(scheduler dag-processor triggerer api-server)
WORKER_COMPONENTS=()
if [ "$EXECUTOR" = celery ]; then
  for w in "${WORKERS[@]}"; do WORKER_COMPONENTS+=("worker-$w" "logs-$w"); done
  COMPONENTS+=("${WORKER_COMPONENTS[@]}")
fi
# Task slots per worker: the two share this machine's cores with the servers.
# Two each: the parts of one run then need both workers, as they would need several machines.
WORKER_CONCURRENCY="${ARCHIVIST_WORKER_CONCURRENCY:-2}"

component_cmd() {  # $1 = component; prints nothing, sets CMD
  case "$1" in
    scheduler) CMD=(airflow scheduler --skip-serve-logs) ;;
    dag-processor) CMD=(airflow dag-processor) ;;
    triggerer) CMD=(airflow triggerer --skip-serve-logs) ;;
    api-server) CMD=(airflow api-server --host "$BIND" --port "$AIRFLOW_PORT") ;;
    # The worker's own log server would listen on every interface: it is started apart, on the
    # worker's loopback address.
    worker-*) CMD=(airflow celery worker --celery-hostname "${1#worker-}@%h" --concurrency "$WORKER_CONCURRENCY"
                   --skip-serve-logs) ;;
    logs-*) CMD=(python -c 'import sys, uvicorn
uvicorn.run("airflow.utils.serve_logs.log_server:get_app", factory=True, host=sys.argv[1], port=int(sys.argv[2]),
            log_config=None, access_log=False)' "$(worker_address "${1#logs-}")" "$WORKER_LOG_PORT") ;;
    *) die "unknown component $1" ;;
  esac
}

worker_dir() { echo "$LOCAL/workers/$1"; }

# The API's signing keys from the main Airflow home's airflow.cfg: a worker's log server checks
# the API server's tokens with them. Printed as KEY=VALUE lines for `env`.
shared_keys() {
  python - "$AIRFLOW_HOME/airflow.cfg" <<'PY'
import configparser, sys
cfg = configparser.ConfigParser(interpolation=None)
cfg.read(sys.argv[1])
for section, option, name in (("api", "secret_key", "AIRFLOW__API__SECRET_KEY"),
                              ("api_auth", "jwt_secret", "AIRFLOW__API_AUTH__JWT_SECRET")):
    if cfg.has_option(section, option):
        print(f"{name}={cfg.get(section, option)}")
PY
}

# Sets WORKER_ENV: what makes worker $1 a machine of its own.
worker_env() {
  local dir; dir="$(worker_dir "$1")"
  mkdir -p "$dir/home" "$dir/tmp" "$dir/work" "$dir/airflow/logs"
  chmod 0700 "$dir"
  mapfile -t WORKER_ENV < <(shared_keys)
  WORKER_ENV+=(
    HOME="$dir/home" TMPDIR="$dir/tmp" AIRFLOW_HOME="$dir/airflow"
    AIRFLOW__LOGGING__BASE_LOG_FOLDER="$dir/airflow/logs"
    ARCHIVIST_WORKER_HOST="$(worker_address "$1")"
    AIRFLOW__CORE__HOSTNAME_CALLABLE=archivist.worker_host.hostname
  )
  # `make test-distributed`: the workers record every local file their tasks open (tests/distributed/audit).
  if [ -n "${ARCHIVIST_AUDIT_DIR:-}" ]; then
    mkdir -p "$ARCHIVIST_AUDIT_DIR"
    WORKER_ENV+=(ARCHIVIST_AUDIT_DIR="$ARCHIVIST_AUDIT_DIR" PYTHONPATH="$ROOT/tests/distributed/audit:$PYTHONPATH")
  fi
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
  # a Celery worker renames itself celeryd
  tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -qE 'airflow|celeryd' || return 1
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
  local worker="" WORKER_ENV=()
  case "$name" in worker-*|logs-*) worker="${name#*-}"; worker_env "$worker" ;; esac
  # setsid: own process group, so stop can end the component with all its children.
  if [ -n "$worker" ]; then
    (cd "$(worker_dir "$worker")/work" && exec env "${WORKER_ENV[@]}" setsid "${CMD[@]}" >>"$out" 2>&1 </dev/null) &
  else
    setsid "${CMD[@]}" >>"$out" 2>&1 </dev/null &
  fi
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
  [ "$EXECUTOR" = celery ] && wait_workers
  warm_execution_api
  log "Airflow is healthy: $(curl -sf "$HEALTH_URL" | python -c '
import json, sys
print(", ".join(k + " " + str((v or {}).get("status")) for k, v in json.load(sys.stdin).items()))')"
}

# The API server builds its execution API (the one task processes call) on that API's first
# request, about 4 s here; made now, so the first task does not wait for it
# (docs/PERFORMANCE.md#execution-api-warmed-at-start).
warm_execution_api() {
  curl -sf --max-time 60 -o /dev/null "$API_URL/execution/health" ||
    log "the execution API did not answer $API_URL/execution/health; the first task will wait for it to start"
}

# Waits until every Celery worker answers a ping through the broker.
wait_workers() {
  local deadline=$((SECONDS + START_TIMEOUT)) missing
  while :; do
    # Airflow logs to stdout while it loads: the answer is the line after the marker.
    missing="$(python - "${WORKERS[@]}" <<'PY' 2>/dev/null | sed -n 's/^missing://p' || true
import sys
from airflow.providers.celery.executors.celery_executor_utils import app
answered = {name.split("@")[0] for reply in app.control.ping(timeout=3) for name in reply}
print("missing:" + (" ".join(w for w in sys.argv[1:] if w not in answered) or "none"))
PY
)"
    [ "$missing" = none ] && break
    [ -n "$missing" ] || missing="${WORKERS[*]}"
    if [ "$SECONDS" -ge "$deadline" ]; then
      tail -n 30 "$(logfile "worker-${missing%% *}")" >&2
      die "Celery workers not answering within ${START_TIMEOUT}s: $missing; see $(logfile "worker-${missing%% *}")"
    fi
    sleep 2
  done
  log "Celery workers answering: ${WORKERS[*]}"
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
  # A stack started with the other executor is restarted whole.
  if [ -f "$RUN/airflow-executor" ] && [ "$(cat "$RUN/airflow-executor")" != "$EXECUTOR" ]; then
    log "Airflow runs with executor $(cat "$RUN/airflow-executor"), $EXECUTOR wanted: restarting it"
    stop_all
  fi
  prepare
  echo "$EXECUTOR" >"$RUN/airflow-executor"
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
  local workers=()
  for w in "${WORKERS[@]}"; do workers+=("worker-$w" "logs-$w"); done
  # The API server goes last: running tasks report their end state through it.
  stop_group scheduler triggerer dag-processor "${workers[@]}"
  stop_group api-server
  rm -f "$RUN/airflow-executor"
  log "Airflow stopped"
}

# Kills a Celery worker and its tasks at once, as a lost machine would end them (the tests use it).
kill_worker() {
  local name="worker-${1:?which worker}" pid
  pid="$(running_pid "$name")" || die "$name is not running"
  kill -KILL -- "-$pid" 2>/dev/null || kill -KILL "$pid"
  rm -f "$(pidfile "$name")"
  log "killed airflow $name (process group $pid)"
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
  kill-worker) kill_worker "${2:-}" ;;
  start-worker) start_one "worker-${2:?which worker}" ;;
  *) die "usage: airflow.sh [migrate|start|stop|status|kill-worker NAME|start-worker NAME]" ;;
esac
