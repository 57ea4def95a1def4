"""Sends log records to Periscope with the real OpenTelemetry Python SDK's log exporter.

Used by crates/periscope/tests/periscope_test.rs (real_otel_python_sdk_exports_logs);
scripts/test.sh installs the pinned packages into $HOME/.cache/periscope-venv.

    otlp_sdk_logs.py http http://127.0.0.1:4318/v1/logs
    otlp_sdk_logs.py grpc 127.0.0.1:4317

Python's `logging` through the SDK's LoggingHandler, for a service "checkout": an error
inside an active span (so the record carries that span's trace and span ids) with an
`order_id` attribute, and an info line outside any span. Exits non-zero unless every export
succeeded; prints the span's trace and span ids as JSON.
"""

import json
import logging
import sys

from opentelemetry.sdk._logs import LoggerProvider, LoggingHandler
from opentelemetry.sdk._logs.export import SimpleLogRecordProcessor
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider


class Recording:
    """Wraps an exporter and remembers whether every export succeeded."""

    def __init__(self, inner):
        self.inner = inner
        self.ok = True

    def export(self, batch):
        result = self.inner.export(batch)
        # The SDK renamed its result enum (LogExportResult → LogRecordExportResult); both
        # name success SUCCESS.
        if getattr(result, "name", None) != "SUCCESS":
            self.ok = False
        return result

    def shutdown(self):
        self.inner.shutdown()

    def force_flush(self, timeout_millis=30000):
        return True


def exporter(protocol, endpoint):
    if protocol == "http":
        from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter

        return OTLPLogExporter(endpoint=endpoint, timeout=10)
    if protocol == "grpc":
        from opentelemetry.exporter.otlp.proto.grpc._log_exporter import OTLPLogExporter

        return OTLPLogExporter(endpoint=endpoint, insecure=True, timeout=10)
    raise SystemExit(f"unknown protocol {protocol!r}")


def main():
    protocol, endpoint = sys.argv[1:3]
    resource = Resource.create({"service.name": "checkout", "host.name": "h", "test.transport": protocol})
    exp = Recording(exporter(protocol, endpoint))
    provider = LoggerProvider(resource=resource)
    provider.add_log_record_processor(SimpleLogRecordProcessor(exp))
    log = logging.getLogger(f"shop.checkout.{protocol}")
    log.setLevel(logging.INFO)
    log.propagate = False
    log.addHandler(LoggingHandler(level=logging.INFO, logger_provider=provider))

    tracer = TracerProvider(resource=resource).get_tracer("periscope.sdk.test")
    with tracer.start_as_current_span("POST /checkout") as span:
        ctx = span.get_span_context()
        log.error("payment declined for order 42 via %s", protocol, extra={"order_id": 42})
    log.info("checkout idle via %s", protocol)

    provider.force_flush()
    provider.shutdown()
    print(json.dumps({"trace_id": format(ctx.trace_id, "032x"), "span_id": format(ctx.span_id, "016x"), "ok": exp.ok}))
    return 0 if exp.ok else 1


if __name__ == "__main__":
    sys.exit(main())
