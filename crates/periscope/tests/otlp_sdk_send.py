"""Sends metrics to Periscope with the real OpenTelemetry Python SDK and its OTLP exporters.

Used by crates/periscope/tests/periscope_test.rs (real_otel_python_sdk_exports_metrics);
scripts/test.sh installs the pinned packages into $HOME/.cache/periscope-venv.

    otlp_sdk_send.py http http://127.0.0.1:4318/v1/metrics INSTANCE_ID [TENANT]
    otlp_sdk_send.py grpc 127.0.0.1:4317 INSTANCE_ID [TENANT]
    otlp_sdk_send.py grpc-codes 127.0.0.1:4317

The `grpc-codes` mode sends raw messages with grpcio (garbage, oversized, gzip bomb, bad
tenant, unknown method, empty request) and prints the status code of each as JSON.

Records a counter, an up-down counter, a gauge, an explicit-bucket histogram and an
exponential histogram (through a view), with cumulative temporality, then exports once with
gzip compression and exits non-zero unless the exporter reports success. Prints one JSON line.
"""

import json
import sys

from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader, MetricExportResult
from opentelemetry.sdk.metrics.view import ExponentialBucketHistogramAggregation, View
from opentelemetry.sdk.resources import Resource


def exporter(protocol, endpoint, tenant):
    headers = {"x-scope-orgid": tenant} if tenant else None
    if protocol == "http":
        from opentelemetry.exporter.otlp.proto.http import Compression
        from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter

        return OTLPMetricExporter(endpoint=endpoint, headers=headers, compression=Compression.Gzip, timeout=10)
    if protocol == "grpc":
        from grpc import Compression
        from opentelemetry.exporter.otlp.proto.grpc.metric_exporter import OTLPMetricExporter

        return OTLPMetricExporter(
            endpoint=endpoint, insecure=True, headers=headers, compression=Compression.Gzip, timeout=10
        )
    raise SystemExit(f"unknown protocol {protocol!r}")


def grpc_codes(endpoint):
    import grpc

    channel = grpc.insecure_channel(endpoint)
    export = channel.unary_unary("/opentelemetry.proto.collector.metrics.v1.MetricsService/Export")
    unknown = channel.unary_unary("/opentelemetry.proto.collector.metrics.v1.MetricsService/Nope")
    cases = {
        "empty": (export, b"", None, None),
        "garbage": (export, b"\x0a\xff\xff\xff\xff\x0f", None, None),
        "oversized": (export, b"\x12" + b"\x00" * 8192, None, None),
        "gzip_bomb": (export, b"\x12" + b"\x00" * 100000, None, grpc.Compression.Gzip),
        "bad_tenant": (export, b"", [("x-scope-orgid", "../x")], None),
        "unknown_method": (unknown, b"", None, None),
    }
    out = {}
    for name, (call, body, metadata, compression) in cases.items():
        try:
            call(body, metadata=metadata, compression=compression, timeout=10)
            out[name] = "OK"
        except grpc.RpcError as e:
            out[name] = e.code().name
    print(json.dumps(out))
    return 0


def main():
    if sys.argv[1] == "grpc-codes":
        return grpc_codes(sys.argv[2])
    protocol, endpoint, instance = sys.argv[1:4]
    tenant = sys.argv[4] if len(sys.argv) > 4 else None
    resource = Resource.create(
        {
            "service.name": "svc",
            "service.namespace": "ns",
            "service.instance.id": instance,
            "deployment.environment": "test",
            "host.name": "h",
        }
    )
    reader = InMemoryMetricReader()
    provider = MeterProvider(
        resource=resource,
        metric_readers=[reader],
        views=[View(instrument_name="rpc.latency", aggregation=ExponentialBucketHistogramAggregation())],
    )
    meter = provider.get_meter("periscope.sdk.test", "0.1.0")

    requests = meter.create_counter("http.server.requests", unit="{request}", description="Requests served.")
    requests.add(3, {"http.method": "GET"})
    requests.add(2, {"http.method": "POST"})
    queue = meter.create_up_down_counter("queue.size", unit="{item}", description="Items queued.")
    queue.add(5)
    queue.add(-2)
    cpu = meter.create_gauge("cpu.utilization", unit="1", description="CPU in use.")
    cpu.set(0.25, {"cpu": "0"})
    duration = meter.create_histogram("http.server.duration", unit="ms", description="Request latency.")
    duration.record(7, {"http.method": "GET"})
    duration.record(120, {"http.method": "GET"})
    latency = meter.create_histogram("rpc.latency", unit="s", description="RPC latency (exponential).")
    latency.record(0.5)

    data = reader.get_metrics_data()
    result = exporter(protocol, endpoint, tenant).export(data)
    provider.shutdown()
    print(json.dumps({"protocol": protocol, "result": result.name}))
    return 0 if result == MetricExportResult.SUCCESS else 1


if __name__ == "__main__":
    sys.exit(main())
