#!/usr/bin/env bash
# Type-checks ruang-media (including the Oboe backend) for aarch64-linux-android without the
# NDK. The C/C++ parts (libopus in opusic-sys, Oboe in oboe-sys) cannot be built here, so this
# copies the crate into a scratch workspace where those two -sys crates have their build
# scripts removed: their Rust bindings are pre-generated, and `cargo check` links nothing.
# It proves the Rust compiles against the real oboe API; it is not an Android build.
set -euo pipefail
here="$(cd "$(dirname "$0")/.." && pwd)"
if ! rustup target list --installed 2>/dev/null | grep -q '^aarch64-linux-android$'; then
  if ! rustup target add aarch64-linux-android >/dev/null 2>&1; then
    echo "SKIPPED: cannot install the aarch64-linux-android target"
    exit 0
  fi
fi
registry="$(ls -d "${CARGO_HOME:-$HOME/.cargo}"/registry/src/index.crates.io-* | head -1)"
(cd "$here" && cargo fetch --target aarch64-linux-android >/dev/null)
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
oboe_sys="$(ls -d "$registry"/oboe-sys-0.6.* | sort -V | tail -1)"
opusic_sys="$(ls -d "$registry"/opusic-sys-0.7.* | sort -V | tail -1)"
cp -r "$oboe_sys" "$work/oboe-sys"
cp -r "$opusic_sys" "$work/opusic-sys"
for c in oboe-sys opusic-sys; do
  rm -f "$work/$c/build.rs"
  sed -i -e '/^build = /d' -e '/^links = /d' -e '0,/^\[package\]/s//[package]\nbuild = false/' \
    "$work/$c/Cargo.toml"
done
mkdir "$work/media"
cp -r "$here/src" "$work/media/src"
cat > "$work/media/Cargo.toml" <<'TOML'
[package]
name = "ruang-media"
version = "0.1.0"
edition = "2021"
[features]
cpal = []
[dependencies]
opus = "0.4"
opusic-sys = "0.7"
rtrb = "0.4"
hound = "3.5"
thiserror = "2"
[target.'cfg(target_os = "android")'.dependencies]
oboe = "0.6"
TOML
cat > "$work/Cargo.toml" <<'TOML'
[workspace]
members = ["media"]
resolver = "2"
[patch.crates-io]
oboe-sys = { path = "oboe-sys" }
opusic-sys = { path = "opusic-sys" }
TOML
cd "$work"
CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-/tmp/ruang-media-target-android}" \
  cargo clippy --target aarch64-linux-android -p ruang-media --all-targets -- -D warnings
echo "OK: ruang-media type-checks for aarch64-linux-android (C/C++ builds stubbed, not linked)"
