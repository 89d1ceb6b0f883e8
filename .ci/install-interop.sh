#!/usr/bin/env bash
# Installs the independent xDS clients that interop/ tests minimesh against:
#   - gRPC C-core, through Debian's python3-grpcio (for /usr/bin/python3), via apt-get;
#   - @grpc/grpc-js + @grpc/grpc-js-xds, via `npm ci` in interop/node (committed lockfile).
# Idempotent: each step is skipped when what it installs is already there. Needs root (or
# passwordless sudo) only when python3-grpcio is missing; needs node and npm on PATH.
set -euo pipefail
cd "$(dirname "$0")/.."

log() { echo "install-interop: $*"; }

# --- gRPC C-core (Debian python3-grpcio) -----------------------------------------------------
# Debian installs the module into /usr/lib/python3/dist-packages, which only Debian's own
# interpreter sees (not pyenv or venv pythons), so that is the interpreter checked here and
# preferred by interop/interop_test.go.
PY=/usr/bin/python3
py_grpc_version() { "$PY" -c 'import grpc; print(grpc.__version__)' 2>/dev/null; }

if v=$(py_grpc_version); then
  log "python3-grpcio already installed: $PY imports grpc $v"
else
  if [ "$(id -u)" -eq 0 ]; then
    SUDO=()
  elif command -v sudo >/dev/null 2>&1; then
    SUDO=(sudo -n)
  else
    log "ERROR: python3-grpcio is missing and installing it needs root (apt-get install python3-grpcio)" >&2
    exit 1
  fi
  log "python3-grpcio missing ($PY cannot import grpc): apt-get update && apt-get install python3-grpcio"
  export DEBIAN_FRONTEND=noninteractive
  "${SUDO[@]}" apt-get update -q
  "${SUDO[@]}" apt-get install -y -q --no-install-recommends python3-grpcio
  if ! v=$(py_grpc_version); then
    log "ERROR: python3-grpcio installed but $PY still cannot import grpc" >&2
    exit 1
  fi
  log "installed python3-grpcio: $PY imports grpc $v"
fi

# --- @grpc/grpc-js-xds (npm) -------------------------------------------------------------------
for tool in node npm; do
  if ! command -v "$tool" >/dev/null 2>&1; then
    log "ERROR: $tool is not on PATH; install Node.js (>= 18) with npm first" >&2
    exit 1
  fi
done

NODE_DIR=interop/node
STAMP="$NODE_DIR/node_modules/.minimesh-lock.sha256"
want=$(sha256sum "$NODE_DIR/package-lock.json" | cut -d' ' -f1)
if [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$want" ] &&
  (cd "$NODE_DIR" && node -e "require('@grpc/grpc-js-xds')") >/dev/null 2>&1; then
  log "interop/node/node_modules already installed from the current package-lock.json (node $(node --version))"
else
  log "npm ci in $NODE_DIR (node $(node --version), npm $(npm --version))"
  # No package here needs an install script; --ignore-scripts keeps the install to the lockfile.
  (cd "$NODE_DIR" && npm ci --no-audit --no-fund --ignore-scripts)
  (cd "$NODE_DIR" && node -e "require('@grpc/grpc-js-xds')")
  echo "$want" >"$STAMP"
  log "installed interop/node/node_modules"
fi
log "versions: @grpc/grpc-js $(cd "$NODE_DIR" && node -p "require('@grpc/grpc-js/package.json').version")," \
  "@grpc/grpc-js-xds $(cd "$NODE_DIR" && node -p "require('@grpc/grpc-js-xds/package.json').version")," \
  "python3-grpcio $(py_grpc_version)"
