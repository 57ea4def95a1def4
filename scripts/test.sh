#!/usr/bin/env bash
# Runs every test of the project. Installs what the tests need first (Debian's Prometheus for
# the remote_write integration test), so it works on a fresh machine as on a developer's.
#
#   scripts/test.sh            everything: format check, clippy, all tests
#   scripts/test.sh --quick    tests only
set -euo pipefail
cd "$(dirname "$0")/.."

quick=0
[ "${1:-}" = "--quick" ] && quick=1

need_apt=()
command -v prometheus >/dev/null 2>&1 || need_apt+=(prometheus)
if [ ${#need_apt[@]} -gt 0 ]; then
  echo "== installing ${need_apt[*]} from Debian's packages"
  if [ "$(id -u)" -eq 0 ]; then SUDO=""; else SUDO="sudo"; fi
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${need_apt[@]}" >/dev/null
  # The package starts a system service; the tests start their own instances.
  $SUDO systemctl stop prometheus 2>/dev/null || true
  pkill -x prometheus 2>/dev/null || true
fi

if [ $quick -eq 0 ]; then
  echo "== cargo fmt --check"
  cargo fmt --all -- --check
  echo "== cargo clippy"
  cargo clippy --workspace --all-targets --locked -- -D warnings
fi

echo "== tests"
if cargo nextest --version >/dev/null 2>&1; then
  cargo nextest run --workspace --locked --no-fail-fast
  # nextest does not run doc tests
  cargo test --workspace --locked --doc -q
else
  cargo test --workspace --locked --no-fail-fast
fi
