#!/usr/bin/env bash
# PromQL query benchmark: the same data in Periscope, Prometheus and VictoriaMetrics (Debian's
# packages), the same fixed query set against each, in one run, on loopback.
#
#   bench/query.sh [--series 100000] [--samples 120] [--interval-ms 15000] [--runs 7]
#                  [--targets "periscope prometheus victoriametrics"]
#
# Loads `series` realistic Go-service series (periscope-loadgen: counters, gauges, histogram
# buckets) with `samples` points each, ending now (default 30 minutes at 15 s), into every
# target; then runs each query `runs` times per target and reports the median latency (curl's
# time_total) and the peak RSS growth while that query ran (VmHWM, reset before each query via
# /proc/<pid>/clear_refs). Results: stdout (Markdown) and bench/results/<date>-query/.
set -euo pipefail
cd "$(dirname "$0")/.."

series=100000; samples=120; interval=15000; runs=7
targets="periscope prometheus victoriametrics"
while [ $# -gt 0 ]; do
  case "$1" in
    --series) series=$2; shift 2 ;;
    --samples) samples=$2; shift 2 ;;
    --interval-ms) interval=$2; shift 2 ;;
    --runs) runs=$2; shift 2 ;;
    --targets) targets=$2; shift 2 ;;
    *) echo "unknown argument $1" >&2; exit 2 ;;
  esac
done

need=()
command -v prometheus >/dev/null || need+=(prometheus)
command -v victoria-metrics >/dev/null || need+=(victoria-metrics)
if [ ${#need[@]} -gt 0 ]; then
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
  systemctl stop prometheus victoria-metrics 2>/dev/null || true
  pkill -x prometheus 2>/dev/null || true; pkill -x victoria-metrics 2>/dev/null || true
fi

cargo build --release -q -p periscope -p periscope-loadgen
target_dir=$(cargo metadata --format-version 1 --no-deps | python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')
periscope_bin="$target_dir/release/periscope"
loadgen_bin="$target_dir/release/periscope-loadgen"
out_dir="bench/results/$(date -u +%Y-%m-%dT%H%M%SZ)-query"
mkdir -p "$out_dir"
work=$(mktemp -d)
declare -A pids
cleanup() { for p in "${pids[@]}"; do kill -9 "$p" 2>/dev/null || true; done; rm -rf "$work"; }
trap cleanup EXIT

wait_http() { # url, seconds
  local end=$(( $(date +%s) + $2 ))
  until curl -fsS -o /dev/null "$1" 2>/dev/null; do
    [ "$(date +%s)" -lt "$end" ] || { echo "timeout waiting for $1" >&2; return 1; }
    sleep 0.05
  done
}

declare -A base ready write
base[periscope]=http://127.0.0.1:19800; ready[periscope]=/-/ready; write[periscope]=/api/v1/write
base[prometheus]=http://127.0.0.1:19090; ready[prometheus]=/-/ready; write[prometheus]=/api/v1/write
base[victoriametrics]=http://127.0.0.1:18428; ready[victoriametrics]=/health; write[victoriametrics]=/api/v1/write

start() { # target datadir
  local t=$1 d=$2
  case "$t" in
    periscope)
      "$periscope_bin" serve --data-dir "$d" --http-listen-address 127.0.0.1:19800 \
        --otlp-grpc-listen-address 127.0.0.1:14317 --otlp-http-listen-address 127.0.0.1:14318 \
        --jaeger-collector-listen-address "" --jaeger-agent-compact-listen-address "" --jaeger-agent-binary-listen-address "" \
        >>"$d.log" 2>&1 & ;;
    prometheus)
      printf 'global: {}\n' >"$work/prometheus.yml"
      prometheus --config.file="$work/prometheus.yml" --storage.tsdb.path="$d" \
        --web.listen-address=127.0.0.1:19090 --web.enable-remote-write-receiver \
        --storage.tsdb.retention.time=3650d >>"$d.log" 2>&1 & ;;
    victoriametrics)
      victoria-metrics -storageDataPath="$d" -httpListenAddr=127.0.0.1:18428 -retentionPeriod=100y \
        -search.latencyOffset=0s >>"$d.log" 2>&1 & ;;
  esac
  pids[$t]=$!
}

now_ms=$(( $(date +%s) * 1000 ))
start_ms=$(( now_ms - samples * interval ))
eval_s=$(( (start_ms + (samples - 1) * interval) / 1000 ))

for t in $targets; do
  d="$work/$t"; mkdir -p "$d"
  start "$t" "$d"
  wait_http "${base[$t]}${ready[$t]}" 60
  "$loadgen_bin" --url "${base[$t]}${write[$t]}" --series "$series" --samples "$samples" --batch 2000 \
    --concurrency 4 --interval-ms "$interval" --start-ms "$start_ms" >"$out_dir/$t.load.json" 2>"$out_dir/$t.load.log"
done
# VictoriaMetrics makes fresh data searchable after a flush.
[[ " $targets " == *" victoriametrics "* ]] && curl -fsS "${base[victoriametrics]}/internal/force_flush" >/dev/null || true
sleep 2

# name|kind|query   (kind: instant at the last sample, or range over the data at 60 s steps)
queries=(
  "selector, 830 series|instant|go_goroutines"
  "sum by (handler) (rate)|instant|sum by (handler) (rate(http_requests_total[5m]))"
  "histogram_quantile p95|instant|histogram_quantile(0.95, sum by (le) (rate(http_request_duration_seconds_bucket[5m])))"
  "topk(5, go_goroutines)|instant|topk(5, go_goroutines)"
  "count all series|instant|count({__name__=~\".+\"})"
  "count by (code)|instant|count by (code) (http_requests_total)"
  "regex over instances|instant|sum(rate(http_requests_total{instance=~\".*1[0-9]:.*\"}[5m]))"
  "30 min range, sum by (job) (rate)|range30m|sum by (job) (rate(http_requests_total[5m]))"
  "24 h range, sum (rate)|range24h|sum(rate(http_requests_total[5m]))"
)

median() { python3 -c 'import sys,statistics; v=[float(x) for x in sys.argv[1:]]; print(f"{statistics.median(v)*1000:.1f}")' "$@"; }

header="| query |"; sep="|---|"
for t in $targets; do header="$header $t ms | $t peak MiB |"; sep="$sep---:|---:|"; done
table="$header\n$sep"
for entry in "${queries[@]}"; do
  IFS='|' read -r name kind q <<<"$entry"
  row="| $name |"
  for t in $targets; do
    case "$kind" in
      instant) path="/api/v1/query"; params=(--data-urlencode "query=$q" --data-urlencode "time=$eval_s") ;;
      range30m) path="/api/v1/query_range"; params=(--data-urlencode "query=$q" --data-urlencode "start=$(( eval_s - 1800 ))" --data-urlencode "end=$eval_s" --data-urlencode "step=60") ;;
      range24h) path="/api/v1/query_range"; params=(--data-urlencode "query=$q" --data-urlencode "start=$(( eval_s - 86400 ))" --data-urlencode "end=$eval_s" --data-urlencode "step=60") ;;
    esac
    pid=${pids[$t]}
    rss0=$(awk '/VmRSS/ {print $2}' "/proc/$pid/status")
    echo 5 >"/proc/$pid/clear_refs" 2>/dev/null || true
    times=()
    for _ in $(seq "$runs"); do
      times+=("$(curl -sS -o "$out_dir/$t.last.json" -w '%{time_total}' "${base[$t]}$path" "${params[@]}")")
    done
    hwm=$(awk '/VmHWM/ {print $2}' "/proc/$pid/status")
    status=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1])).get("status"))' "$out_dir/$t.last.json" 2>/dev/null || echo "?")
    [ "$status" = "success" ] || echo "warning: $t answered $status for $q" >&2
    cp "$out_dir/$t.last.json" "$out_dir/$t.$(echo "$name" | tr -c 'a-zA-Z0-9' '_').json"
    row="$row $(median "${times[@]}") | $(( (hwm - rss0) / 1024 )) |"
  done
  table="$table\n$row"
done
{
  echo "series=$series samples=$samples interval_ms=$interval runs=$runs"
  echo "machine: $(nproc) cores, $(free -g | awk '/Mem/ {print $2}') GiB, $(uname -r); $(date -u)"
  echo
  echo -e "$table"
} | tee "$out_dir/summary.md"
