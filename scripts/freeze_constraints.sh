#!/usr/bin/env bash
# Regenerates constraints.txt from a clean install of requirements-dev.txt (which includes requirements.txt), since
# Airflow's published constraint files cannot be downloaded here.
source "$(dirname "$0")/common.sh"
tmp="$(mktemp -d)"
"$PYTHON" -m venv "$tmp/venv"
"$tmp/venv/bin/pip" install -q --upgrade "pip==26.3"
"$tmp/venv/bin/pip" install -q -r "$ROOT/requirements-dev.txt"
{ echo "# Frozen from a working install of requirements-dev.txt (pip freeze), Python 3.11."
  echo "# Regenerate: scripts/freeze_constraints.sh"
  "$tmp/venv/bin/pip" freeze; } > "$ROOT/constraints.txt"
rm -rf "$tmp"
log "wrote constraints.txt"
