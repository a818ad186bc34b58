#!/usr/bin/env bash
# .ci/e2e-setup.sh - prepare the offline Playwright (playwright-go) e2e toolchain.
#
# Idempotent and silent when everything is already in place (a second run
# takes well under a second). It never downloads a Playwright browser and
# never calls playwright.Install: the browser is Debian's chromium and the
# driver is the playwright-core npm package.
#
# What it does:
#   1. Installs Debian chromium (apt-get update && apt-get install -y chromium)
#      only if /usr/bin/chromium is missing (and nodejs/npm only if missing).
#   2. Unpacks playwright-core@1.52.0 (the driver version pinned by
#      playwright-go v0.5200.1, const playwrightCliVersion in run.go) into
#      $PLAYWRIGHT_DRIVER_PATH, default $HOME/.cache/gatehouse/playwright-driver-1.52.0,
#      so that DIR/package/cli.js exists (the layout playwright-go expects), and
#      links DIR/node -> the system node (playwright-go's fallback when
#      PLAYWRIGHT_NODEJS_PATH is unset).
#
# Environment: nothing needs exporting. The Go helper (e2e/browser_test.go)
# sets these itself when unset, using the same defaults as this script:
#   PLAYWRIGHT_DRIVER_PATH  = $HOME/.cache/gatehouse/playwright-driver-1.52.0
#   PLAYWRIGHT_NODEJS_PATH  = $(command -v node)
# and launches /usr/bin/chromium (override with E2E_CHROMIUM_PATH).
# If you override PLAYWRIGHT_DRIVER_PATH here, export the same value for go test.
set -euo pipefail

PW_VERSION=1.52.0
DRIVER_DIR="${PLAYWRIGHT_DRIVER_PATH:-$HOME/.cache/gatehouse/playwright-driver-${PW_VERSION}}"
CHROMIUM=/usr/bin/chromium

log() { echo "e2e-setup: $*" >&2; }

as_root() {
  if [ "$(id -u)" -eq 0 ]; then "$@"
  elif command -v sudo >/dev/null 2>&1; then sudo "$@"
  else log "need root for: $*"; exit 1
  fi
}

# --- 1. system packages (chromium, node/npm) ------------------------------
pkgs=()
[ -x "$CHROMIUM" ] || pkgs+=(chromium)
command -v node >/dev/null 2>&1 || pkgs+=(nodejs)
command -v npm >/dev/null 2>&1 || pkgs+=(npm)
if [ "${#pkgs[@]}" -gt 0 ]; then
  log "installing ${pkgs[*]} with apt"
  export DEBIAN_FRONTEND=noninteractive
  as_root apt-get update -q >&2
  as_root apt-get install -y -q "${pkgs[@]}" >&2
  [ -x "$CHROMIUM" ] || { log "$CHROMIUM still missing after apt-get install"; exit 1; }
fi
NODE="$(command -v node)"

# --- 2. playwright driver (playwright-core from npm) -----------------------
# playwright.Run() itself runs `node DIR/package/cli.js --version` and requires
# the output to contain 1.52.0; here the cheap package.json check is enough on
# the fast path, the real --version check runs right after unpacking.
driver_ok() {
  [ -f "$DRIVER_DIR/package/cli.js" ] &&
    grep -qE '"version": *"'"${PW_VERSION//./\\.}"'"' "$DRIVER_DIR/package/package.json" 2>/dev/null
}

if ! driver_ok; then
  log "preparing playwright-core@$PW_VERSION in $DRIVER_DIR"
  mkdir -p "$DRIVER_DIR"
  tmp="$(mktemp -d "$DRIVER_DIR/.tmp.XXXXXX")"
  trap 'rm -rf "$tmp"' EXIT
  (cd "$tmp" && npm pack --silent "playwright-core@$PW_VERSION" >/dev/null)
  tar -xzf "$tmp/playwright-core-$PW_VERSION.tgz" -C "$tmp"   # -> $tmp/package/cli.js
  [ -f "$tmp/package/cli.js" ] || { log "npm tarball has no package/cli.js"; exit 1; }
  rm -rf "$DRIVER_DIR/package"
  mv "$tmp/package" "$DRIVER_DIR/package"
  got="$("$NODE" "$DRIVER_DIR/package/cli.js" --version)"
  [[ "$got" == *"$PW_VERSION"* ]] ||
    { log "driver in $DRIVER_DIR reports '$got', want $PW_VERSION"; exit 1; }
fi

# playwright-go falls back to DIR/node when PLAYWRIGHT_NODEJS_PATH is unset.
if [ "$(readlink "$DRIVER_DIR/node" 2>/dev/null || true)" != "$NODE" ]; then
  ln -sfn "$NODE" "$DRIVER_DIR/node"
fi

# --- 3. axe-core (the accessibility check the browser suite runs) -----------
# e2e/accessibility_test.go injects DIR/package/axe.min.js into each page state
# and fails on any WCAG 2.2 A/AA violation. Pinned; fetched once from npm.
AXE_VERSION=4.14.1
AXE_DIR="${E2E_AXE_PATH:-$HOME/.cache/gatehouse/axe-core-${AXE_VERSION}}"
if [ ! -f "$AXE_DIR/package/axe.min.js" ]; then
  log "preparing axe-core@$AXE_VERSION in $AXE_DIR"
  mkdir -p "$AXE_DIR"
  axetmp="$(mktemp -d "$AXE_DIR/.tmp.XXXXXX")"
  (cd "$axetmp" && npm pack --silent "axe-core@$AXE_VERSION" >/dev/null)
  tar -xzf "$axetmp/axe-core-$AXE_VERSION.tgz" -C "$axetmp"
  [ -f "$axetmp/package/axe.min.js" ] || { log "npm tarball has no package/axe.min.js"; exit 1; }
  rm -rf "$AXE_DIR/package"
  mv "$axetmp/package" "$AXE_DIR/package"
  rm -rf "$axetmp"
fi
