#!/usr/bin/env bash
# Installs the bench's baselines and profiler, pinned and idempotently, into the
# per-user cache ($CACHE, shared by every clone), and links them into
# .local/bench/bin. Running it again installs nothing. Given a scale (`setup.sh all 5`), it first
# checks the disk has room for that scale's run (python -m bench.disk --scale 5, the estimate alone).
#   elasticdump  npm    elasticdump@6.125.1      (the ES export/import baseline)
#   rclone       Go     github.com/rclone/rclone@v1.76.0 (the storage baseline; a long first build)
#   py-spy       PyPI   py-spy==0.4.3            (the sampling profiler, `make bench BENCH_ARGS=--profile`)
# pg_dump/psql come with PostgreSQL (scripts/install.sh), tar and gzip with the system.
source "$(dirname "$0")/../scripts/common.sh"

ELASTICDUMP_VERSION="6.125.1"
RCLONE_VERSION="v1.76.0"
PYSPY_VERSION="0.4.3"
BIN="$LOCAL/bench/bin"
mkdir -p "$BIN" "$CACHE"

install_elasticdump() {
  local prefix="$CACHE/npm/elasticdump-$ELASTICDUMP_VERSION"
  if [ ! -f "$prefix/.complete" ]; then
    log "installing elasticdump $ELASTICDUMP_VERSION from npm (first run only)"
    rm -rf "$prefix"; mkdir -p "$prefix"
    npm install --silent --no-audit --no-fund --prefix "$prefix" --cache "$CACHE/npm/cache" \
      "elasticdump@$ELASTICDUMP_VERSION" >/dev/null
    touch "$prefix/.complete"
  else
    log "elasticdump $ELASTICDUMP_VERSION cached"
  fi
  ln -sfn "$prefix/node_modules/.bin/elasticdump" "$BIN/elasticdump"
}

install_rclone() {
  go_install_cached rclone github.com/rclone/rclone "$RCLONE_VERSION" rclone
  ln -sfn "$CACHE/go/bin/rclone" "$BIN/rclone"
}

install_pyspy() {
  local target="$CACHE/py-spy-$PYSPY_VERSION"
  if [ ! -x "$target/bin/py-spy" ]; then
    log "installing py-spy $PYSPY_VERSION from PyPI (first run only)"
    rm -rf "$target"
    "$LOCAL/venv/bin/pip" install -q --target "$target" "py-spy==$PYSPY_VERSION"
  else
    log "py-spy $PYSPY_VERSION cached"
  fi
  ln -sfn "$target/bin/py-spy" "$BIN/py-spy"
}

for tool in pg_dump psql tar gzip node npm go; do
  command -v "$tool" >/dev/null || die "$tool is not installed (run make install, or apt-get install it)"
done
if [ -n "${2:-}" ]; then
  (cd "$ROOT" && "$LOCAL/venv/bin/python" -m bench.disk --scale "$2" --check) || die "not enough disk for scale $2"
fi
case "${1:-all}" in
  elasticdump) install_elasticdump ;;
  rclone) install_rclone ;;
  py-spy) install_pyspy ;;
  all) install_elasticdump; install_pyspy; install_rclone; log "bench tools ready in $BIN" ;;
  *) die "usage: bench/setup.sh [all|elasticdump|rclone|py-spy] [SCALE]" ;;
esac
