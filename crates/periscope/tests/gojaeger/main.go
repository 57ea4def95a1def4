// Sends one trace to Periscope through OpenTelemetry Go's Jaeger exporter (Debian's
// golang-opentelemetry-otel-dev, OTel Go 1.1): to the collector endpoint (Thrift over HTTP)
// or to the agent endpoint (compact Thrift over UDP).
//
// Used by crates/periscope/tests/periscope_test.rs (go_jaeger_exporter_sends_traces); built in
// GOPATH mode (GO111MODULE=off GOPATH=/usr/share/gocode).
//
//	gojaeger collector http://127.0.0.1:9800/api/traces
//	gojaeger agent 127.0.0.1 6831
//
// Two services' spans in one trace: "checkout" (server) calls "payments" through a client span;
// the payments span fails and records an event. Prints the trace id.
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"time"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/exporters/jaeger"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	semconv "go.opentelemetry.io/otel/semconv/v1.7.0"
	"go.opentelemetry.io/otel/trace"
)

func provider(args []string, service string) (*sdktrace.TracerProvider, error) {
	var endpoint jaeger.EndpointOption
	switch {
	case len(args) == 2 && args[0] == "collector":
		endpoint = jaeger.WithCollectorEndpoint(jaeger.WithEndpoint(args[1]))
	case len(args) == 3 && args[0] == "agent":
		endpoint = jaeger.WithAgentEndpoint(jaeger.WithAgentHost(args[1]), jaeger.WithAgentPort(args[2]))
	default:
		return nil, errors.New("usage: gojaeger collector <url> | gojaeger agent <host> <port>")
	}
	exp, err := jaeger.New(endpoint)
	if err != nil {
		return nil, err
	}
	res := resource.NewWithAttributes(semconv.SchemaURL,
		semconv.ServiceNameKey.String(service),
		attribute.String("host.name", "go-host"))
	return sdktrace.NewTracerProvider(sdktrace.WithSyncer(exp), sdktrace.WithResource(res)), nil
}

func main() {
	// Export errors reach the global handler only; make them fail the program.
	failed := false
	otel.SetErrorHandler(otel.ErrorHandlerFunc(func(err error) {
		failed = true
		fmt.Fprintln(os.Stderr, "export failed:", err)
	}))
	ctx := context.Background()
	checkout, err := provider(os.Args[1:], "checkout")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	payments, err := provider(os.Args[1:], "payments")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	tracer := checkout.Tracer("periscope.go.test")
	start := time.Now()
	ctx, root := tracer.Start(ctx, "POST /checkout", trace.WithTimestamp(start), trace.WithSpanKind(trace.SpanKindServer),
		trace.WithAttributes(attribute.String("http.route", "/checkout"), attribute.Int("cart.items", 3)))
	ctx, call := tracer.Start(ctx, "charge", trace.WithSpanKind(trace.SpanKindClient))
	_, pay := payments.Tracer("periscope.go.test").Start(ctx, "authorize", trace.WithSpanKind(trace.SpanKindServer),
		trace.WithAttributes(attribute.Bool("card.valid", false), attribute.Float64("amount", 12.5)))
	pay.AddEvent("fraud.check", trace.WithAttributes(attribute.String("result", "suspicious")))
	pay.RecordError(errors.New("card declined"))
	pay.SetStatus(codes.Error, "card declined")
	pay.End()
	call.End()
	// A known duration for the test to compare.
	root.End(trace.WithTimestamp(start.Add(1500 * time.Millisecond)))
	for _, p := range []*sdktrace.TracerProvider{payments, checkout} {
		if err := p.Shutdown(context.Background()); err != nil {
			fmt.Fprintln(os.Stderr, "export failed:", err)
			os.Exit(1)
		}
	}
	if failed {
		os.Exit(1)
	}
	fmt.Println(root.SpanContext().TraceID().String())
}
