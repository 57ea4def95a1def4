//! OTLP over gRPC: `opentelemetry.proto.collector.metrics.v1.MetricsService/Export` and
//! `opentelemetry.proto.collector.trace.v1.TraceService/Export` on the OTLP/gRPC port (4317 by
//! default), with tonic's HTTP/2 server and no TLS.
//!
//! No generated code: the service is a hand-written tower service whose codec passes the raw
//! message bytes to the same pure decoder the HTTP path uses ([`crate::otlp::ingest`]), and
//! encodes the `ExportMetricsServiceResponse` with it too. gzip-compressed messages are
//! accepted (tonic decompresses, capped at `server.max_decompressed_body_bytes`). Status codes
//! as OTLP asks: OK with `partial_success` for refused points, `InvalidArgument` for an
//! undecodable message, `ResourceExhausted` past a size or sample limit (tonic's own
//! `OutOfRange` for an oversized message is turned into it), `Unavailable` when the store cannot
//! take writes. The tenant is the `x-scope-orgid` metadata.

use crate::otlp::{grpc_code, ingest, ingest_logs, ingest_traces, Signal};
use crate::AppState;
use axum::body::Bytes;
use axum::http::{HeaderValue, Request, Response};
use bytes::{Buf, BufMut};
use periscope_ingest::otlp_metrics::export_response;
use periscope_ingest::OtlpEncoding;
use periscope_model::TenantId;
use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use tonic::body::Body;
use tonic::codec::{Codec, CompressionEncoding, DecodeBuf, Decoder, EncodeBuf, Encoder};
use tonic::server::{Grpc, NamedService, UnaryService};
use tonic::{Code, Status};

/// The gRPC service name of OTLP metrics.
pub const METRICS_SERVICE: &str = "opentelemetry.proto.collector.metrics.v1.MetricsService";
/// The gRPC service name of OTLP traces.
pub const TRACE_SERVICE: &str = "opentelemetry.proto.collector.trace.v1.TraceService";
/// The gRPC service name of OTLP logs.
pub const LOGS_SERVICE: &str = "opentelemetry.proto.collector.logs.v1.LogsService";

/// One OTLP signal's gRPC service: its name, method path and ingest.
pub(crate) trait OtlpSignal: Clone + Send + Sync + 'static {
    /// The service name.
    const NAME: &'static str;
    /// The `Export` method's path.
    const PATH: &'static str;
    #[doc(hidden)]
    const SIGNAL: Signal;
}

/// OTLP metrics.
#[derive(Clone, Debug)]
pub(crate) struct Metrics;

impl OtlpSignal for Metrics {
    const NAME: &'static str = METRICS_SERVICE;
    const PATH: &'static str = "/opentelemetry.proto.collector.metrics.v1.MetricsService/Export";
    const SIGNAL: Signal = Signal::Metrics;
}

/// OTLP traces.
#[derive(Clone, Debug)]
pub(crate) struct Traces;

impl OtlpSignal for Traces {
    const NAME: &'static str = TRACE_SERVICE;
    const PATH: &'static str = "/opentelemetry.proto.collector.trace.v1.TraceService/Export";
    const SIGNAL: Signal = Signal::Traces;
}

/// OTLP logs.
#[derive(Clone, Debug)]
pub(crate) struct Logs;

impl OtlpSignal for Logs {
    const NAME: &'static str = LOGS_SERVICE;
    const PATH: &'static str = "/opentelemetry.proto.collector.logs.v1.LogsService/Export";
    const SIGNAL: Signal = Signal::Logs;
}

/// Serves OTLP/gRPC on `listener` until `shutdown` completes, then lets in-flight calls finish.
pub async fn serve(
    listener: tokio::net::TcpListener,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), tonic::transport::Error> {
    tonic::transport::Server::builder()
        .add_service(OtlpService::<Metrics> { state: state.clone(), signal: std::marker::PhantomData })
        .add_service(OtlpService::<Traces> { state: state.clone(), signal: std::marker::PhantomData })
        .add_service(OtlpService::<Logs> { state, signal: std::marker::PhantomData })
        // Small answers must not wait for Nagle's algorithm (as for HTTP/1.1 in hyper).
        .serve_with_incoming_shutdown(
            tonic::transport::server::TcpIncoming::from(listener).with_nodelay(Some(true)),
            shutdown,
        )
        .await
}

/// An OTLP service as a tower service (what tonic-build would generate, by hand).
#[derive(Clone)]
pub(crate) struct OtlpService<S> {
    state: AppState,
    signal: std::marker::PhantomData<S>,
}

impl<S: OtlpSignal> NamedService for OtlpService<S> {
    const NAME: &'static str = S::NAME;
}

type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send>>;

impl<S: OtlpSignal> tower_service::Service<Request<Body>> for OtlpService<S> {
    type Response = Response<Body>;
    type Error = Infallible;
    type Future = BoxFuture<Result<Response<Body>, Infallible>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: Request<Body>) -> Self::Future {
        if req.uri().path() != S::PATH {
            return Box::pin(async { Ok(Status::unimplemented("unknown method").into_http()) });
        }
        let limit = self.state.config.server.max_decompressed_body_bytes.as_usize();
        let export = Export { state: self.state.clone(), signal: S::SIGNAL };
        Box::pin(async move {
            let mut grpc = Grpc::new(RawCodec)
                .accept_compressed(CompressionEncoding::Gzip)
                .send_compressed(CompressionEncoding::Gzip)
                .max_decoding_message_size(limit);
            let mut resp = grpc.unary(export, req).await;
            // tonic refuses an oversized message with OutOfRange; OTLP expects ResourceExhausted.
            let out_of_range = HeaderValue::from(Code::OutOfRange as i32);
            if resp.headers().get("grpc-status") == Some(&out_of_range) {
                resp.headers_mut().insert("grpc-status", HeaderValue::from(Code::ResourceExhausted as i32));
            }
            Ok(resp)
        })
    }
}

struct Export {
    state: AppState,
    signal: Signal,
}

impl UnaryService<Bytes> for Export {
    type Response = Bytes;
    type Future = BoxFuture<Result<tonic::Response<Bytes>, Status>>;

    fn call(&mut self, request: tonic::Request<Bytes>) -> Self::Future {
        let state = self.state.clone();
        let signal = self.signal;
        Box::pin(async move {
            let tenant = match request.metadata().get("x-scope-orgid") {
                None => TenantId::default_tenant(),
                Some(v) => {
                    let s = v.to_str().map_err(|_| Status::invalid_argument("x-scope-orgid is not visible ASCII"))?;
                    TenantId::new(s).map_err(|e| Status::invalid_argument(e.to_string()))?
                }
            };
            let body = request.into_inner();
            let exported = match signal {
                Signal::Metrics => ingest(&state, tenant, body, false, OtlpEncoding::Protobuf, "otlp_grpc").await,
                Signal::Traces => ingest_traces(&state, tenant, body, false, OtlpEncoding::Protobuf, "otlp_grpc").await,
                Signal::Logs => ingest_logs(&state, tenant, body, false, OtlpEncoding::Protobuf, "otlp_grpc").await,
            };
            match exported {
                Ok(out) => Ok(tonic::Response::new(Bytes::from(export_response(
                    OtlpEncoding::Protobuf,
                    out.rejected,
                    &out.message,
                )))),
                Err(e) => {
                    state.metrics.reject(e.reason);
                    if e.status.is_server_error() {
                        tracing::warn!(status = %e.status, reason = e.reason, message = %e.message, "OTLP/gRPC export failed");
                    }
                    Err(Status::new(Code::from_i32(grpc_code(e.status)), e.message))
                }
            }
        })
    }
}

/// Passes message bytes through untouched: decoding is the ingest crate's job.
#[derive(Debug, Clone, Copy, Default)]
struct RawCodec;

impl Codec for RawCodec {
    type Encode = Bytes;
    type Decode = Bytes;
    type Encoder = RawCodec;
    type Decoder = RawCodec;

    fn encoder(&mut self) -> Self::Encoder {
        RawCodec
    }

    fn decoder(&mut self) -> Self::Decoder {
        RawCodec
    }
}

impl Encoder for RawCodec {
    type Item = Bytes;
    type Error = Status;

    fn encode(&mut self, item: Bytes, dst: &mut EncodeBuf<'_>) -> Result<(), Status> {
        dst.put_slice(&item);
        Ok(())
    }
}

impl Decoder for RawCodec {
    type Item = Bytes;
    type Error = Status;

    fn decode(&mut self, src: &mut DecodeBuf<'_>) -> Result<Option<Bytes>, Status> {
        Ok(Some(src.copy_to_bytes(src.remaining())))
    }
}
