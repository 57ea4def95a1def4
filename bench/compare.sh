#!/usr/bin/env bash
# Loads the same simulated Go-service data into Periscope and Debian's Prometheus on loopback
# and compares their answers to a set of PromQL queries (bench/compare.py).
#
#   bench/compare.sh [--series 3000] [--samples 120] [--interval-ms 15000]
set -euo pipefail
cd "$(dirname "$0")/.."
series=3000; samples=120; interval=15000
while [ $# -gt 0 ]; do
  case "$1" in
    --series) series=$2; shift 2 ;;
    --samples) samples=$2; shift 2 ;;
    --interval-ms) interval=$2; shift 2 ;;
    *) echo "unknown argument $1" >&2; exit 2 ;;
  esac
done
command -v prometheus >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends prometheus >/dev/null; }
cargo build --release -q -p periscope -p periscope-loadgen
target_dir=$(cargo metadata --format-version 1 --no-deps | python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')
work=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill -9 "$p" 2>/dev/null || true; done; rm -rf "$work"; }
trap cleanup EXIT
printf 'global: {}\n' >"$work/prometheus.yml"
prometheus --config.file="$work/prometheus.yml" --storage.tsdb.path="$work/prom" \
  --web.listen-address=127.0.0.1:19092 --web.enable-remote-write-receiver >"$work/prom.log" 2>&1 &
pids+=($!)
"$target_dir/release/periscope" serve --data-dir "$work/periscope" --http-listen-address 127.0.0.1:19805 \
  --otlp-grpc-listen-address 127.0.0.1:14367 --otlp-http-listen-address 127.0.0.1:14368 \
  --jaeger-collector-listen-address "" --jaeger-agent-compact-listen-address "" --jaeger-agent-binary-listen-address "" >"$work/periscope.log" 2>&1 &
pids+=($!)
for url in http://127.0.0.1:19092/-/ready http://127.0.0.1:19805/-/ready; do
  for _ in $(seq 600); do curl -fsS -o /dev/null "$url" 2>/dev/null && break; sleep 0.1; done
done
now_ms=$(( $(date +%s) * 1000 )); start_ms=$(( now_ms - samples * interval ))
for url in http://127.0.0.1:19092/api/v1/write http://127.0.0.1:19805/api/v1/write; do
  "$target_dir/release/periscope-loadgen" --url "$url" --series "$series" --samples "$samples" --batch 2000 \
    --concurrency 4 --interval-ms "$interval" --start-ms "$start_ms" >/dev/null
done
sleep 2
python3 bench/compare.py http://127.0.0.1:19805 http://127.0.0.1:19092 $(( (start_ms + (samples - 1) * interval) / 1000 ))
