#![allow(clippy::unwrap_used)]

use super::*;
use periscope_model::hex_id;

/// A minimal Thrift binary-protocol writer for building batches.
#[derive(Default)]
struct W(Vec<u8>);

impl W {
    fn field(&mut self, ty: u8, id: i16) -> &mut Self {
        self.0.push(ty);
        self.0.extend_from_slice(&id.to_be_bytes());
        self
    }
    fn i32(&mut self, id: i16, v: i32) -> &mut Self {
        self.field(T_I32, id);
        self.0.extend_from_slice(&v.to_be_bytes());
        self
    }
    fn i64(&mut self, id: i16, v: i64) -> &mut Self {
        self.field(T_I64, id);
        self.0.extend_from_slice(&v.to_be_bytes());
        self
    }
    fn str(&mut self, id: i16, s: &str) -> &mut Self {
        self.field(T_STRING, id);
        self.0.extend_from_slice(&(s.len() as i32).to_be_bytes());
        self.0.extend_from_slice(s.as_bytes());
        self
    }
    fn list(&mut self, id: i16, items: &[Vec<u8>]) -> &mut Self {
        self.field(T_LIST, id);
        self.0.push(T_STRUCT);
        self.0.extend_from_slice(&(items.len() as i32).to_be_bytes());
        for i in items {
            self.0.extend_from_slice(i);
        }
        self
    }
    fn stop(&mut self) -> Vec<u8> {
        self.0.push(T_STOP);
        std::mem::take(&mut self.0)
    }
}

fn str_tag(k: &str, v: &str) -> Vec<u8> {
    W::default().str(1, k).i32(2, 0).str(3, v).stop()
}

fn bool_tag(k: &str, v: bool) -> Vec<u8> {
    let mut w = W::default();
    w.str(1, k).i32(2, 2).field(T_BOOL, 5).0.push(v as u8);
    w.stop()
}

fn long_tag(k: &str, v: i64) -> Vec<u8> {
    W::default().str(1, k).i32(2, 3).i64(6, v).stop()
}

fn batch() -> Vec<u8> {
    let process = W::default().str(1, "go-svc").list(2, &[str_tag("host.name", "h1")]).stop();
    let root = W::default()
        .i64(1, 0x0102)
        .i64(2, 0x0a0b)
        .i64(3, 7)
        .i64(4, 0)
        .str(5, "root")
        .i32(7, 1)
        .i64(8, 1_700_000_000_000_000)
        .i64(9, 1500)
        .list(
            10,
            &[
                str_tag("span.kind", "server"),
                long_tag("http.status_code", 500),
                bool_tag("error", true),
                str_tag("otel.library.name", "lib"),
            ],
        )
        .list(
            11,
            &[W::default()
                .i64(1, 1_700_000_000_000_100)
                .list(2, &[str_tag("event", "retry"), long_tag("attempt", 2)])
                .stop()],
        )
        .stop();
    let reference = W::default().i32(1, 0).i64(2, 0x0102).i64(3, 0x0a0b).i64(4, 7).stop();
    let child = W::default()
        .i64(1, 0x0102)
        .i64(2, 0x0a0b)
        .i64(3, 8)
        .str(5, "child")
        .list(6, &[reference])
        .i64(8, 1_700_000_000_000_200)
        .i64(9, 300)
        .list(10, &[str_tag("span.kind", "client")])
        .stop();
    let mut w = W::default();
    w.field(T_STRUCT, 1).0.extend_from_slice(&process);
    w.list(2, &[root, child]);
    w.i64(3, 42); // seqNo, not read
    w.stop()
}

#[test]
fn a_batch_maps_as_the_collector_maps_it() {
    let b = decode_jaeger_batch(&batch()).unwrap();
    assert_eq!(b.spans.len(), 2);
    let root = &b.spans[0];
    assert_eq!(hex_id(&root.trace_id), "0000000000000a0b0000000000000102");
    assert_eq!(hex_id(&root.span_id), "0000000000000007");
    assert_eq!(root.parent_span_id, None);
    assert_eq!((root.kind, root.status), (SpanKind::Server, StatusCode::Error));
    assert_eq!((root.start_ns, root.end_ns), (1_700_000_000_000_000_000, 1_700_000_000_001_500_000));
    assert_eq!(root.attributes, vec![Attribute { key: "http.status_code".into(), value: AttrValue::Int(500) }]);
    assert_eq!(root.origin.scope_name, "lib");
    assert_eq!(root.service_name(), "go-svc");
    assert!(root.origin.resource.contains(&Attribute::str("host.name", "h1")));
    assert_eq!(root.events[0].name, "retry");
    assert_eq!(root.events[0].time_ns, 1_700_000_000_000_100_000);
    assert_eq!(root.events[0].attributes, vec![Attribute { key: "attempt".into(), value: AttrValue::Int(2) }]);
    let child = &b.spans[1];
    assert_eq!(child.parent_span_id, Some(7i64.to_be_bytes()), "CHILD_OF reference as the parent");
    assert!(child.links.is_empty());
    assert_eq!(child.kind, SpanKind::Client);
}

#[test]
fn bad_batches_are_errors() {
    let full = batch();
    for cut in [1, 10, full.len() / 2, full.len() - 1] {
        assert!(decode_jaeger_batch(&full[..cut]).is_err(), "cut at {cut}");
    }
    // A zero span id.
    let span = W::default().i64(1, 1).i64(3, 0).i64(8, 1).stop();
    let mut w = W::default();
    w.list(2, &[span]);
    let e = decode_jaeger_batch(&w.stop()).unwrap_err().to_string();
    assert!(e.contains("span 0"), "{e}");
    // A list claiming more elements than bytes.
    let mut w = W::default();
    w.field(T_LIST, 2).0.extend_from_slice(&[T_STRUCT, 0x7f, 0xff, 0xff, 0xff]);
    assert!(decode_jaeger_batch(&w.stop()).is_err());
}

proptest::proptest! {
    #[test]
    fn garbage_and_mutations_never_panic(body in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..300), flip in 0usize..1000) {
        let _ = decode_jaeger_batch(&body);
        let mut b = batch();
        let i = flip % b.len();
        b[i] ^= 0xa5;
        let _ = decode_jaeger_batch(&b);
    }
}
