#!/usr/bin/env bash
# Remote-write ingest benchmark: the same load against Periscope, Prometheus and VictoriaMetrics
# (Debian's packages), one after the other on loopback, in one run.
#
#   bench/run.sh [--series 100000] [--samples 120] [--interval-ms 120000] [--batch 2000]
#                [--concurrency 4] [--targets "periscope prometheus victoriametrics"]
#
# For each target: start it on an empty data dir, send the load with periscope-loadgen, and
# report samples/s, server CPU seconds per million samples (utime+stime from /proc), peak RSS
# (VmHWM), bytes per sample on disk for compacted data, and the time from a restart after
# kill -9 until ready (WAL replay). The default interval of 120 s spreads 120 samples over 4 h
# starting at a 2 h boundary, so that each engine cuts one full 2 h block (60 samples per
# series) from its in-memory head and the on-disk figure is for that compacted block.
# Results go to stdout as a Markdown table and to bench/results/.
set -euo pipefail
cd "$(dirname "$0")/.."

series=100000; samples=120; interval=120000; batch=2000; conc=4
targets="periscope prometheus victoriametrics"
while [ $# -gt 0 ]; do
  case "$1" in
    --series) series=$2; shift 2 ;;
    --samples) samples=$2; shift 2 ;;
    --interval-ms) interval=$2; shift 2 ;;
    --batch) batch=$2; shift 2 ;;
    --concurrency) conc=$2; shift 2 ;;
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
tck=$(getconf CLK_TCK)
out_dir="bench/results/$(date -u +%Y-%m-%dT%H%M%SZ)"
mkdir -p "$out_dir"
work=$(mktemp -d)
pid=""
cleanup() { [ -n "$pid" ] && kill -9 "$pid" 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT

cpu_seconds() { awk -v t="$tck" '{ print ($14 + $15) / t }' "/proc/$1/stat"; }
peak_rss_mib() { awk '/VmHWM/ { printf "%.0f", $2 / 1024 }' "/proc/$1/status"; }
wait_http() { # url, seconds
  local end=$(( $(date +%s) + $2 ))
  until curl -fsS -o /dev/null "$1" 2>/dev/null; do
    [ "$(date +%s)" -lt "$end" ] || { echo "timeout waiting for $1" >&2; return 1; }
    sleep 0.05
  done
}

start() { # target datadir → sets pid, url, ready
  local t=$1 d=$2
  case "$t" in
    periscope)
      "$periscope_bin" serve --data-dir "$d" --http-listen-address 127.0.0.1:19800 \
        --otlp-grpc-listen-address 127.0.0.1:14317 --otlp-http-listen-address 127.0.0.1:14318 \
        --jaeger-collector-listen-address "" --jaeger-agent-compact-listen-address "" --jaeger-agent-binary-listen-address "" \
        >>"$d.log" 2>&1 &
      pid=$!; url=http://127.0.0.1:19800/api/v1/write; ready=http://127.0.0.1:19800/-/ready ;;
    prometheus)
      printf 'global: {}\n' >"$work/prometheus.yml"
      prometheus --config.file="$work/prometheus.yml" --storage.tsdb.path="$d" \
        --web.listen-address=127.0.0.1:19090 --web.enable-remote-write-receiver \
        --storage.tsdb.retention.time=3650d >>"$d.log" 2>&1 &
      pid=$!; url=http://127.0.0.1:19090/api/v1/write; ready=http://127.0.0.1:19090/-/ready ;;
    victoriametrics)
      victoria-metrics -storageDataPath="$d" -httpListenAddr=127.0.0.1:18428 -retentionPeriod=100y \
        >>"$d.log" 2>&1 &
      pid=$!; url=http://127.0.0.1:18428/api/v1/write; ready=http://127.0.0.1:18428/health ;;
  esac
}

# Bytes per sample of compacted data: every block once compaction has settled for the TSDBs,
# all parts after a forced merge for VictoriaMetrics.
compacted() { # target datadir → "bytes samples"
  local t=$1 d=$2 end=$(( $(date +%s) + 600 ))
  case "$t" in
    periscope|prometheus)
      # Wait for the first block, then until the set of blocks has not changed for 75 s (both
      # engines look for compaction work every minute), so that merged blocks are measured.
      local seen="" stable_since=0
      while :; do
        local metas
        metas=$(find "$d" -name meta.json -not -path '*.tmp*' 2>/dev/null | sort | head -1000)
        if [ -n "$metas" ] && [ "$metas" != "$seen" ]; then
          seen=$metas; stable_since=$(date +%s)
        fi
        if [ -n "$metas" ] && [ $(( $(date +%s) - stable_since )) -ge 75 ]; then
          python3 - "$t" $metas <<'PY'
import json, os, sys
kind, metas = sys.argv[1], sys.argv[2:]
size = samples = 0
for m in metas:
    meta = json.load(open(m))
    samples += meta["num_samples"] if kind == "periscope" else meta["stats"]["numSamples"]
    d = os.path.dirname(m)
    for root, _, files in os.walk(d):
        size += sum(os.path.getsize(os.path.join(root, f)) for f in files)
print(size, samples)
PY
          return
        fi
        # No block within 3 minutes: the data does not span enough for one.
        if [ -z "$seen" ] && [ $(( $(date +%s) + 420 )) -ge "$end" ]; then echo "0 0"; return; fi
        [ "$(date +%s)" -lt "$end" ] || { echo "0 0"; return; }
        sleep 5
      done ;;
    victoriametrics)
      curl -fsS "http://127.0.0.1:18428/internal/force_flush" >/dev/null || true
      curl -fsS "http://127.0.0.1:18428/internal/force_merge" >/dev/null || true
      sleep 5
      echo "$(du -sb "$d" | cut -f1) $total_samples" ;;
  esac
}

# Same timestamps for every target: the data ends now and starts on a 2 h boundary.
now_ms=$(( $(date +%s) * 1000 ))
span=$(( samples * interval ))
start_ms=$(( (now_ms - span) / 7200000 * 7200000 ))

table="| target | samples/s | CPU s per 1M samples | peak RSS MiB | bytes/sample (compacted) | restart after kill -9 (s) | rejected |\n|---|---:|---:|---:|---:|---:|---:|"
for t in $targets; do
  d="$work/$t"; mkdir -p "$d"
  start "$t" "$d"
  wait_http "$ready" 60
  cpu0=$(cpu_seconds "$pid")
  result=$("$loadgen_bin" --url "$url" --series "$series" --samples "$samples" --batch "$batch" \
    --concurrency "$conc" --interval-ms "$interval" --start-ms "$start_ms" 2>"$out_dir/$t.loadgen.log")
  cpu1=$(cpu_seconds "$pid")
  rss=$(peak_rss_mib "$pid")
  echo "$result" >"$out_dir/$t.json"
  total_samples=$(echo "$result" | python3 -c 'import json,sys; print(json.load(sys.stdin)["samples"])')
  rate=$(echo "$result" | python3 -c 'import json,sys; print(json.load(sys.stdin)["samples_per_second"])')
  rejected=$(echo "$result" | python3 -c 'import json,sys; r=json.load(sys.stdin); print(r["client_errors"]+r["server_errors"])')
  read -r cbytes csamples < <(compacted "$t" "$d")
  kill -9 "$pid"; wait "$pid" 2>/dev/null || true
  t0=$(date +%s.%N)
  start "$t" "$d"
  wait_http "$ready" 600
  t1=$(date +%s.%N)
  kill -TERM "$pid"; wait "$pid" 2>/dev/null || true; pid=""
  cpu_per_m=$(python3 -c "print(f'{($cpu1-$cpu0)/($total_samples/1e6):.2f}')")
  bps=$(python3 -c "print(f'{$cbytes/$csamples:.2f}' if $csamples else 'n/a')")
  restart=$(python3 -c "print(f'{$t1-$t0:.2f}')")
  table="$table\n| $t | $rate | $cpu_per_m | $rss | $bps ($csamples samples) | $restart | $rejected |"
  cp "$d.log" "$out_dir/$t.server.log" 2>/dev/null || true
done
{
  echo "series=$series samples=$samples interval_ms=$interval batch=$batch concurrency=$conc"
  echo "machine: $(nproc) cores, $(free -g | awk '/Mem/ {print $2}') GiB, $(uname -r); $(date -u)"
  echo
  echo -e "$table"
} | tee "$out_dir/summary.md"
