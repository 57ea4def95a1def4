#!/usr/bin/env bash
# Trace ingest and query benchmark: realistic multi-service Go traces (periscope-tracegen)
# into Periscope over OTLP/HTTP and then OTLP/gRPC, then trace-by-id and search latency over
# everything stored, bytes per span on disk, and the two limits the ingest rate is compared
# with: our own OTLP decoder alone (decode + translate, one core) and a raw write of the same
# request bytes to a file.
#
#   bench/traces.sh [--traces 1000000] [--concurrency 4] [--batch 512]
#
# --traces is per transport (about 10 spans per trace). Results go to stdout as Markdown and
# to bench/results/<time>-traces/.
set -euo pipefail
cd "$(dirname "$0")/.."

traces=1000000; conc=4; batch=512
while [ $# -gt 0 ]; do
  case "$1" in
    --traces) traces=$2; shift 2 ;;
    --concurrency) conc=$2; shift 2 ;;
    --batch) batch=$2; shift 2 ;;
    *) echo "unknown argument $1" >&2; exit 2 ;;
  esac
done

cargo build --release -q -p periscope -p periscope-tracegen
target_dir=$(cargo metadata --format-version 1 --no-deps | python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')
bin="$target_dir/release/periscope"
gen="$target_dir/release/periscope-tracegen"
tck=$(getconf CLK_TCK)
out_dir="bench/results/$(date -u +%Y-%m-%dT%H%M%SZ)-traces"
mkdir -p "$out_dir"
work=$(mktemp -d)
pid=""
cleanup() { [ -n "$pid" ] && { kill -9 "$pid"; wait "$pid"; } 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT

cpu_seconds() { awk -v t="$tck" '{ print ($14 + $15) / t }' "/proc/$1/stat"; }
metric() { curl -fsS http://127.0.0.1:14380/metrics | awk -v m="$1" '$1 == m { print $2 }'; }

cat >"$work/periscope.yaml" <<YAML
storage:
  traces:
    trace_idle_period: 2s
    max_block_age: 10s
    maintenance_interval: 1s
YAML
"$bin" serve --config "$work/periscope.yaml" --data-dir "$work/data" \
  --http-listen-address 127.0.0.1:14380 \
  --otlp-grpc-listen-address 127.0.0.1:14381 --otlp-http-listen-address 127.0.0.1:14382 \
  --jaeger-collector-listen-address "" --jaeger-agent-compact-listen-address "" --jaeger-agent-binary-listen-address "" \
  >"$work/periscope.log" 2>&1 &
pid=$!
for _ in $(seq 1 200); do curl -fsS -o /dev/null http://127.0.0.1:14380/-/ready 2>/dev/null && break; sleep 0.05; done

# OTLP/HTTP sends the traces of the hour two hours ago, OTLP/gRPC those of the last hour, so
# that blocks follow time as under real traffic.
start_ns=$(( ($(date +%s) - 7200) * 1000000000 ))
declare -A rate cpu_rate
for transport in http grpc; do
  addr=127.0.0.1:14382; seed=1
  from=$start_ns
  [ "$transport" = grpc ] && { addr=127.0.0.1:14381; seed=2; from=$(( start_ns + 3600000000000 )); }
  c0=$(cpu_seconds "$pid")
  line=$("$gen" send --addr "$addr" --transport "$transport" --traces "$traces" --concurrency "$conc" \
    --batch "$batch" --seed "$seed" --start-ns "$from")
  c1=$(cpu_seconds "$pid")
  echo "$transport: $line" | tee -a "$out_dir/send.txt"
  sent=$(sed -E 's/.*sent=([0-9]+).*/\1/' <<<"$line")
  rate[$transport]=$(sed -E 's/.*spans_per_s=([0-9]+).*/\1/' <<<"$line")
  cpu_rate[$transport]=$(awk -v n="$sent" -v a="$c0" -v b="$c1" 'BEGIN { printf "%.0f", n / (b - a) }')
done

# Every span into blocks: wait until the head is empty.
for _ in $(seq 1 600); do
  [ "$(metric periscope_traces_head_spans)" = "0" ] && break
  sleep 0.5
done
bytes=$(metric periscope_traces_block_bytes); spans=$(metric periscope_traces_block_spans)
blocks=$(metric periscope_traces_blocks)
disk=$(du -sb "$work/data/traces" | cut -f1)
rss=$(awk '/VmHWM/ { printf "%.0f", $2 / 1024 }' "/proc/$pid/status")

"$gen" query --addr 127.0.0.1:14380 --traces "$traces" --seed 1 --start-ns "$start_ns" --window-s 7200 | tee "$out_dir/query.txt"
"$gen" decode --traces "$(( traces < 100000 ? traces : 100000 ))" --batch "$batch" --dir "$work" | tee "$out_dir/decode.txt"
decode=$(sed -E 's/.*decode_spans_per_s=([0-9]+).*/\1/' "$out_dir/decode.txt")
raw=$(sed -E 's/.*raw_write_spans_per_s=([0-9]+).*/\1/' "$out_dir/decode.txt")

{
  echo "| figure | value |"
  echo "|---|---|"
  for t in http grpc; do
    echo "| OTLP/$t spans/s (wall, $conc senders, 2 cores shared with the sender) | ${rate[$t]} |"
    echo "| OTLP/$t spans per server CPU second | ${cpu_rate[$t]} |"
    awk -v a="${cpu_rate[$t]}" -v d="$decode" -v r="$raw" -v t="$t" 'BEGIN {
      printf "| OTLP/%s per CPU s ÷ decode-only per core | %.2f |\n", t, a / d
      printf "| OTLP/%s per CPU s ÷ raw write of the bytes | %.3f |\n", t, a / r }'
  done
  echo "| decode-only spans/s (one core) | $decode |"
  echo "| raw write spans/s | $raw |"
  awk -v b="$bytes" -v s="$spans" -v k="$blocks" -v d="$disk" 'BEGIN {
    printf "| spans in blocks | %d (%d blocks) |\n", s, k
    printf "| bytes per span in blocks | %.1f |\n", b / s
    printf "| bytes per span, whole traces dir (blocks + WAL) | %.1f |\n", d / s }'
  echo "| peak RSS MiB | $rss |"
  grep -o 'query=[a-z_0-9]* n=[0-9]* p50_ms=[0-9.]* p99_ms=[0-9.]*[^|]*' "$out_dir/query.txt" |
    awk '{ split($1, q, "="); split($3, a, "="); split($4, b, "="); printf "| %s p50 / p99 ms | %s / %s (%s) |\n", q[2], a[2], b[2], $5 $6 }'
} | tee "$out_dir/summary.md"
cp "$work/periscope.log" "$out_dir/periscope.log" 2>/dev/null || true
