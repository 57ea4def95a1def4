#!/usr/bin/env bash
# Log ingest, size and query benchmark, shaped like the Loki 3.4.6 figures quoted in issue 5
# (2M JSON access-log lines of ~360 bytes, 100 streams, protobuf+snappy pushes), with the
# floors measured in the same run on the same raw text: grep -c, rg -c (Debian's ripgrep) and
# zstd -3.
#
#   bench/logs.sh [--lines 2000000] [--streams 100] [--concurrency 4] [--out-of-order-window 1m]
#
# With the default window (1h), nothing of the 30 minutes pushed is sealed while the push
# runs, so the peak RSS shows the in-memory head at its largest.
#
# Results go to stdout as Markdown and to bench/results/<time>-logs/.
set -euo pipefail
cd "$(dirname "$0")/.."

lines=2000000; streams=100; conc=4; window=1m
while [ $# -gt 0 ]; do
  case "$1" in
    --lines) lines=$2; shift 2 ;;
    --streams) streams=$2; shift 2 ;;
    --concurrency) conc=$2; shift 2 ;;
    --out-of-order-window) window=$2; shift 2 ;;
    *) echo "unknown argument $1" >&2; exit 2 ;;
  esac
done

command -v rg >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends ripgrep >/dev/null; }
command -v zstd >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends zstd >/dev/null; }

cargo build --release -q -p periscope -p periscope-loggen
target_dir=$(cargo metadata --format-version 1 --no-deps | python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')
bin="$target_dir/release/periscope"
gen="$target_dir/release/periscope-loggen"
tck=$(getconf CLK_TCK)
out_dir="bench/results/$(date -u +%Y-%m-%dT%H%M%SZ)-logs"
mkdir -p "$out_dir"
work=$(mktemp -d)
pid=""
cleanup() { [ -n "$pid" ] && { kill -9 "$pid"; wait "$pid"; } 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT

cpu_seconds() { awk -v t="$tck" '{ print ($14 + $15) / t }' "/proc/$1/stat"; }
metric() { curl -fsS http://127.0.0.1:14480/metrics | awk -v m="$1" '$1 == m { print $2 }'; }
ms() { local s e; s=$(date +%s%N); "$@" >/dev/null; e=$(date +%s%N); echo $(( (e - s) / 1000000 )); }

cat >"$work/periscope.yaml" <<YAML
storage:
  logs:
    out_of_order_window: $window
    idle_period: 5s
    max_block_age: 5s
    maintenance_interval: 1s
    max_streams_per_tenant: 0
YAML
"$bin" serve --config "$work/periscope.yaml" --data-dir "$work/data" \
  --http-listen-address 127.0.0.1:14480 \
  --otlp-grpc-listen-address 127.0.0.1:14481 --otlp-http-listen-address 127.0.0.1:14482 \
  --jaeger-collector-listen-address "" --jaeger-agent-compact-listen-address "" --jaeger-agent-binary-listen-address "" \
  >"$work/periscope.log" 2>&1 &
pid=$!
for _ in $(seq 1 200); do curl -fsS -o /dev/null http://127.0.0.1:14480/-/ready 2>/dev/null && break; sleep 0.05; done

end_ns=$(( ($(date +%s) - 60) * 1000000000 ))
start_ns=$(( end_ns - 1800 * 1000000000 ))
c0=$(cpu_seconds "$pid")
push=$("$gen" push --addr 127.0.0.1:14480 --lines "$lines" --streams "$streams" --concurrency "$conc" \
  --start-ns "$start_ns" --window-s 1800 --raw "$work/raw.log")
c1=$(cpu_seconds "$pid")
echo "$push" | tee "$out_dir/push.txt"
sent=$(sed -E 's/.*sent=([0-9]+).*/\1/' <<<"$push")
rate=$(sed -E 's/.*lines_per_s=([0-9]+).*/\1/' <<<"$push")

for _ in $(seq 1 600); do
  [ "$(metric periscope_logs_head_entries)" = "0" ] && break
  sleep 0.5
done
c2=$(cpu_seconds "$pid")
bytes=$(metric periscope_logs_block_bytes); entries=$(metric periscope_logs_block_entries)
disk=$(du -sb "$work/data/logs" | cut -f1)
rss=$(awk '/VmHWM/ { printf "%.0f", $2 / 1024 }' "/proc/$pid/status")
raw_bytes=$(stat -c %s "$work/raw.log")

q1=$("$gen" query --addr 127.0.0.1:14480 --query '{job="checkout"} |= "error"' --limit 1000 \
  --start-ns "$start_ns" --end-ns "$(( end_ns + 60000000000 ))" --runs 5)
q2=$("$gen" query --addr 127.0.0.1:14480 --query 'sum by (status) (count_over_time({job="checkout"} | json [1m]))' \
  --step 60 --start-ns "$start_ns" --end-ns "$(( end_ns + 60000000000 ))" --runs 5)
echo "q1 $q1" | tee "$out_dir/query.txt"; echo "q2 $q2" | tee -a "$out_dir/query.txt"

# Floors on the same raw text (warm cache: one run first).
grep -c error "$work/raw.log" >/dev/null; rg -c error "$work/raw.log" >/dev/null
grep_ms=$(ms grep -c error "$work/raw.log"); rg_ms=$(ms rg -c error "$work/raw.log")
zstd -q -3 -c "$work/raw.log" >"$work/raw.zst"; zstd_bytes=$(stat -c %s "$work/raw.zst")

{
  echo "| figure | Periscope | floor / Loki 3.4.6 (issue) |"
  echo "|---|---|---|"
  awk -v n="$sent" -v a="$c0" -v b="$c1" -v c="$c2" 'BEGIN {
    printf "| CPU s per million lines ingested (push) | %.2f | Loki: 16.9 |\n", (b - a) / n * 1e6
    printf "| CPU s per million lines incl. block writing | %.2f | |\n", (c - a) / n * 1e6 }'
  echo "| lines/s (wall, $conc senders sharing the 2 cores) | $rate | |"
  awk -v b="$bytes" -v e="$entries" -v d="$disk" -v r="$raw_bytes" -v z="$zstd_bytes" -v n="$sent" 'BEGIN {
    printf "| raw bytes per line | %.1f | |\n", r / n
    printf "| bytes per line in blocks | %.1f | Loki chunks: 72.5; zstd -3 of the raw text: %.1f |\n", b / e, z / n
    printf "| bytes per line, whole logs dir | %.1f | Loki data dir: 464 |\n", d / n }'
  echo "| peak RSS MiB | $rss | Loki: 674 |"
  q1ms=$(sed -E 's/.*p50_ms=([0-9.]+).*/\1/' <<<"$q1"); q2ms=$(sed -E 's/.*p50_ms=([0-9.]+).*/\1/' <<<"$q2")
  echo "| \`{job=\"checkout\"} |= \"error\"\` limit 1000, p50 ms | $q1ms | Loki: 229; grep -c (all lines): $grep_ms; rg -c: $rg_ms |"
  echo "| \`sum by (status) (count_over_time({job=\"checkout\"} | json [1m]))\` 30 min, p50 ms | $q2ms | Loki: 1700 |"
} | tee "$out_dir/summary.md"
cp "$work/periscope.log" "$out_dir/periscope.log" 2>/dev/null || true
