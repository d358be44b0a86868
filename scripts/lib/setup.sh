# Shared by the scripts: installs what a fresh Debian machine lacks, sets up caches.
# Sourced, not run.

RUANG_CACHE="${RUANG_CACHE:-$HOME/.cache/ruang}"
mkdir -p "$RUANG_CACHE"
# One cargo target dir for every checkout on this machine: dependencies build once.
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$RUANG_CACHE/target}"

log() { printf '\n== %s\n' "$*" >&2; }

as_root() {
  if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi
}

apt_updated=""
# apt_need PACKAGE... : installs the Debian packages that are not installed yet.
apt_need() {
  local missing=()
  for p in "$@"; do
    dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  log "installing ${missing[*]}"
  if [ -z "$apt_updated" ]; then
    as_root apt-get update -qq
    apt_updated=1
  fi
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

rust_need() {
  command -v cargo >/dev/null || { echo "cargo is required (https://rustup.rs)" >&2; exit 1; }
  if command -v rustup >/dev/null; then
    rustup component list --installed 2>/dev/null | grep -q '^clippy' || rustup component add clippy
    rustup component list --installed 2>/dev/null | grep -q '^rustfmt' || rustup component add rustfmt
  fi
}

# Starts a throwaway PostgreSQL server on a free port; sets RUANG_TEST_POSTGRES_URL.
# Stopped by pg_stop (the caller traps it).
pg_start() {
  apt_need postgresql
  local bin
  bin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)
  [ -x "$bin/initdb" ] || { echo "PostgreSQL's initdb not found" >&2; exit 1; }
  PG_DIR=$(mktemp -d /tmp/ruang-pg.XXXXXX)
  PG_PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
  local run=()
  if [ "$(id -u)" = 0 ]; then
    chown postgres: "$PG_DIR"
    run=(runuser -u postgres --)
  fi
  PG_RUN=("${run[@]}")
  PG_BIN="$bin"
  "${run[@]}" "$bin/initdb" -D "$PG_DIR/data" -A trust -U postgres >/dev/null
  "${run[@]}" "$bin/pg_ctl" -D "$PG_DIR/data" -l "$PG_DIR/log" -w -o "-p $PG_PORT -k $PG_DIR -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=200" start >/dev/null
  export RUANG_TEST_POSTGRES_URL="postgres://postgres@127.0.0.1:$PG_PORT/postgres"
  export RUANG_TEST_REQUIRE_POSTGRES=1
  log "PostgreSQL running on port $PG_PORT"
}

pg_stop() {
  if [ -n "${PG_DIR:-}" ]; then
    "${PG_RUN[@]}" "$PG_BIN/pg_ctl" -D "$PG_DIR/data" -m immediate stop >/dev/null 2>&1 || true
    rm -rf "$PG_DIR"
  fi
}

# Kotlin compiler from npm (the full JVM compiler), JNA and JUnit 5 from Debian.
KOTLIN_VERSION=2.4.20
kotlin_need() {
  command -v java >/dev/null || apt_need default-jdk-headless
  apt_need libjna-java junit5
  command -v npm >/dev/null || apt_need npm
  local dir="$RUANG_CACHE/kotlinc-$KOTLIN_VERSION"
  if [ ! -x "$dir/package/bin/kotlinc" ]; then
    log "fetching kotlin-compiler@$KOTLIN_VERSION from npm"
    local tmp
    tmp=$(mktemp -d)
    (cd "$tmp" && npm pack --silent "kotlin-compiler@$KOTLIN_VERSION" >/dev/null)
    mkdir -p "$dir"
    tar xzf "$tmp"/kotlin-compiler-*.tgz -C "$dir"
    rm -rf "$tmp"
  fi
  KOTLINC="$dir/package/bin/kotlinc"
  KOTLIN_LIB="$dir/package/lib"
  JNA_JAR=/usr/share/java/jna.jar
  JUNIT_JAR=/usr/share/java/junit-platform-console-standalone.jar
}

# Python with the perceptual measures for scripts/bench-quality: a venv under $RUANG_CACHE
# with numpy, scipy, pesq (ITU-T P.862 / P.862.2, builds its C core here) and pystoi from
# PyPI. Sets QUALITY_PY.
quality_python_need() {
  local venv="$RUANG_CACHE/py-quality"
  QUALITY_PY="$venv/bin/python3"
  if ! "$QUALITY_PY" -c 'import numpy, scipy, pesq, pystoi' >/dev/null 2>&1; then
    command -v python3 >/dev/null || apt_need python3
    python3 -c 'import venv, ensurepip' >/dev/null 2>&1 || apt_need python3-venv
    apt_need gcc python3-dev
    log "python venv $venv with numpy scipy pesq pystoi (PyPI)"
    rm -rf "$venv"
    python3 -m venv "$venv"
    "$venv/bin/pip" install --quiet --disable-pip-version-check numpy scipy pesq pystoi
  fi
}
