"""Sends a three-service trace to Periscope with the real OpenTelemetry Python SDK.

Used by crates/periscope/tests/periscope_test.rs (real_otel_python_sdk_exports_traces);
scripts/test.sh installs the pinned packages into $HOME/.cache/periscope-venv.

    otlp_sdk_traces.py http http://127.0.0.1:4318/v1/traces
    otlp_sdk_traces.py grpc 127.0.0.1:4317

Three tracer providers, one per service (gateway, users, auth), each with its own resource and
exporter; the request flows gateway (server) → gateway (client) → users (server) → users
(client) → auth (server), then gateway (client) → auth (server) for an audit record: a tree
with three service edges, the context passed along as a real service would receive it. The
auth check records an event and ends with an error status. The root span lasts exactly
1234.567 ms and carries the transport as `test.transport`. Each provider is flushed; the
script exits non-zero unless every export succeeded, and prints the trace id as JSON.
"""

import json
import sys
import time

from opentelemetry import trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExportResult
from opentelemetry.trace import SpanKind, Status, StatusCode


class Recording:
    """Wraps an exporter and remembers whether every export succeeded."""

    def __init__(self, inner):
        self.inner = inner
        self.ok = True

    def export(self, spans):
        result = self.inner.export(spans)
        if result != SpanExportResult.SUCCESS:
            self.ok = False
        return result

    def shutdown(self):
        self.inner.shutdown()

    def force_flush(self, timeout_millis=30000):
        return True


def exporter(protocol, endpoint):
    if protocol == "http":
        from opentelemetry.exporter.otlp.proto.http import Compression
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        return OTLPSpanExporter(endpoint=endpoint, compression=Compression.Gzip, timeout=10)
    if protocol == "grpc":
        from grpc import Compression
        from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter

        return OTLPSpanExporter(endpoint=endpoint, insecure=True, compression=Compression.Gzip, timeout=10)
    raise SystemExit(f"unknown protocol {protocol!r}")


def main():
    protocol, endpoint = sys.argv[1:3]
    providers, exporters, tracers = [], [], {}
    for service in ["gateway", "users", "auth"]:
        exp = Recording(exporter(protocol, endpoint))
        provider = TracerProvider(resource=Resource.create({"service.name": service, "host.name": "h"}))
        provider.add_span_processor(SimpleSpanProcessor(exp))
        providers.append(provider)
        exporters.append(exp)
        tracers[service] = provider.get_tracer("periscope.sdk.test", "0.1.0")

    start = time.time_ns() - 2_000_000_000
    with tracers["gateway"].start_as_current_span(
        "GET /api/users",
        kind=SpanKind.SERVER,
        attributes={"http.route": "/api/users", "http.method": "GET", "test.transport": protocol},
        start_time=start,
        end_on_exit=False,
    ) as root:
        trace_id = root.get_span_context().trace_id
        with tracers["gateway"].start_as_current_span("call users", kind=SpanKind.CLIENT):
            with tracers["users"].start_as_current_span(
                "list users", kind=SpanKind.SERVER, attributes={"http.route": "/users", "db.rows": 3}
            ):
                with tracers["users"].start_as_current_span("call auth", kind=SpanKind.CLIENT):
                    with tracers["auth"].start_as_current_span(
                        "check token", kind=SpanKind.SERVER, attributes={"http.status_code": 403}
                    ) as auth:
                        auth.add_event("token.expired", {"token.age_s": 3600})
                        auth.set_status(Status(StatusCode.ERROR, "token expired"))
        with tracers["gateway"].start_as_current_span("call audit", kind=SpanKind.CLIENT):
            with tracers["auth"].start_as_current_span("record audit", kind=SpanKind.SERVER):
                pass
    root.end(end_time=start + 1_234_567_000)

    for p in providers:
        p.force_flush()
        p.shutdown()
    ok = all(e.ok for e in exporters)
    print(json.dumps({"protocol": protocol, "trace_id": format(trace_id, "032x"), "ok": ok}))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
