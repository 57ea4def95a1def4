#!/usr/bin/env python3
"""Differential check: the same PromQL queries against Periscope and Prometheus holding the
same data; prints per query the series and points each returned, how many are missing on one
side and the worst relative difference of the values.

    bench/compare.sh                # starts both, loads the data, runs this
    bench/compare.py PERISCOPE_URL PROMETHEUS_URL EVAL_TIME_S

Queries run 1 ms after the last sample: Prometheus 2.42 (Debian's) closes range windows on
the left and Prometheus 3 (whose semantics Periscope follows) opens them, so a sample exactly
on a window's left edge is counted by one and not the other; off the sample grid both count
the same samples.
"""
import json
import math
import sys
import urllib.parse
import urllib.request

QUERIES = [
    ("instant", "go_goroutines"),
    ("instant", "sum by (handler) (rate(http_requests_total[5m]))"),
    ("instant", "histogram_quantile(0.95, sum by (le) (rate(http_request_duration_seconds_bucket[5m])))"),
    ("instant", "topk(5, go_goroutines)"),
    ("instant", 'count({__name__=~".+"})'),
    ("instant", "count by (code) (http_requests_total)"),
    ("instant", 'sum(rate(http_requests_total{instance=~".*1[0-9]:.*"}[5m]))'),
    ("instant", "avg_over_time(go_memstats_heap_alloc_bytes[10m])"),
    ("instant", "deriv(process_resident_memory_bytes[10m])"),
    ("instant", "predict_linear(go_memstats_heap_alloc_bytes[15m], 3600)"),
    ("instant", "quantile_over_time(0.9, go_goroutines[10m])"),
    ("instant", "irate(http_requests_total[1m])"),
    ("instant", "increase(go_gc_duration_seconds_count[10m])"),
    ("instant", "stddev_over_time(go_goroutines[10m])"),
    ("instant", "changes(go_threads[20m])"),
    ("instant", "http_requests_total / on(instance, job) group_left go_goroutines"),
    ("instant", "max by (job) (go_goroutines) > 300"),
    ("instant", "sum without (instance) (rate(http_request_duration_seconds_sum[5m]))"
                " / sum without (instance) (rate(http_request_duration_seconds_count[5m]))"),
    ("range", "sum by (job) (rate(http_requests_total[5m]))"),
    ("range", "histogram_quantile(0.99, sum by (le, handler) (rate(http_request_duration_seconds_bucket[2m])))"),
    ("range", "max_over_time(go_goroutines[5m:30s])"),
]


def get(base, kind, q, t):
    if kind == "instant":
        path, params = "/api/v1/query", {"query": q, "time": t}
    else:
        path, params = "/api/v1/query_range", {"query": q, "start": t - 1500, "end": t, "step": 60}
    with urllib.request.urlopen(base + path, urllib.parse.urlencode(params).encode()) as resp:
        r = json.load(resp)
    out = {}
    for s in r["data"]["result"]:
        vals = [s["value"]] if "value" in s else s["values"]
        out[json.dumps(s["metric"], sort_keys=True)] = {round(float(a), 3): float(b) for a, b in vals}
    return out


def main():
    periscope, prometheus, t = sys.argv[1], sys.argv[2], float(sys.argv[3]) + 0.001
    bad = 0
    for kind, q in QUERIES:
        a, b = get(periscope, kind, q, t), get(prometheus, kind, q, t)
        worst, missing, n = 0.0, 0, 0
        for k in set(a) | set(b):
            if k not in a or k not in b:
                missing += 1
                continue
            for ts in set(a[k]) | set(b[k]):
                if ts not in a[k] or ts not in b[k]:
                    missing += 1
                    continue
                x, y = a[k][ts], b[k][ts]
                n += 1
                if not (math.isnan(x) and math.isnan(y)):
                    worst = max(worst, abs(x - y) / max(abs(x) + abs(y), 1e-300))
        bad += missing > 0 or worst > 1e-9
        print(f"{kind:7s} series {len(a):5d}/{len(b):5d} points {n:6d} missing {missing} worst rel diff {worst:.1e}  {q}")
    sys.exit(1 if bad else 0)


if __name__ == "__main__":
    main()
