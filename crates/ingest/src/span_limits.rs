//! Limits every span passes before it is stored, whatever protocol brought it
//! (`docs/traces.md`, "Limits"): clamps that keep the span and record what they cut in the
//! OpenTelemetry model's own dropped counts, and refusals for what cannot be a real span.
//!
//! Clamps: more attributes than `max_attributes` on a span, event, link or resource (the rest
//! are dropped and added to the `dropped_attributes` count where the model has one); more
//! events or links than `max_events` / `max_links` (the newest are kept for events, the
//! first for links; added to `dropped_events` / `dropped_links`); string and byte values
//! longer than `max_attribute_value_bytes` (cut at a character boundary); arrays and maps
//! inside a value longer than `max_attributes` (cut). Refusals: values nested deeper than
//! [`MAX_VALUE_DEPTH`] levels, a start before 2000-01-01 (a unit mistake: µs or ms read as
//! ns) or more than `max_future` ahead of the server's clock.

use periscope_model::{AttrValue, Attribute, Span, SpanBatch, SpanOrigin};
use std::collections::HashMap;
use std::sync::Arc;

/// Deepest nesting of arrays and maps in an attribute value (OTLP's decoders stop at 32).
pub const MAX_VALUE_DEPTH: usize = 32;

/// 2000-01-01T00:00:00Z in ns: the earliest start accepted.
pub const MIN_START_NS: i64 = 946_684_800_000_000_000;

/// The limits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpanLimits {
    /// Attributes kept per span, event, link, resource and scope (and elements per array
    /// or map inside a value).
    pub max_attributes: usize,
    /// Longest string or byte value, span name, event name, status message or trace state.
    pub max_attribute_value_bytes: usize,
    /// Events kept per span.
    pub max_events: usize,
    /// Links kept per span.
    pub max_links: usize,
    /// How far a span may start ahead of the server's clock, in ns.
    pub max_future_ns: i64,
}

impl Default for SpanLimits {
    /// OpenTelemetry SDKs' default counts (128), 16 KiB values, one hour into the future.
    fn default() -> Self {
        SpanLimits {
            max_attributes: 128,
            max_attribute_value_bytes: 16 << 10,
            max_events: 128,
            max_links: 128,
            max_future_ns: 3_600_000_000_000,
        }
    }
}

/// What the clamps cut in one batch.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Clamped {
    /// Values (or arrays and maps) cut short.
    pub values_truncated: u64,
    /// Attributes dropped past the count limit.
    pub attributes_dropped: u64,
    /// Events dropped past the count limit.
    pub events_dropped: u64,
    /// Links dropped past the count limit.
    pub links_dropped: u64,
}

/// A span refused: its position in the batch as received, its name and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refused {
    /// Position in the batch as received.
    pub index: usize,
    /// The span's name.
    pub name: String,
    /// Why.
    pub reason: String,
}

impl std::fmt::Display for Refused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "span {} ({:?}): {}", self.index, self.name, self.reason)
    }
}

/// Cuts a string to at most `max` bytes at a character boundary.
fn cut(s: &mut String, max: usize) -> bool {
    if s.len() <= max {
        return false;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    s.truncate(end);
    true
}

/// Clamps one value; `Err` when it is nested too deep.
fn clamp_value(v: &mut AttrValue, l: &SpanLimits, depth: usize, c: &mut Clamped) -> Result<(), ()> {
    match v {
        AttrValue::Str(s) => c.values_truncated += u64::from(cut(s, l.max_attribute_value_bytes)),
        AttrValue::Bytes(b) if b.len() > l.max_attribute_value_bytes => {
            b.truncate(l.max_attribute_value_bytes);
            c.values_truncated += 1;
        }
        AttrValue::Array(items) => {
            if depth >= MAX_VALUE_DEPTH {
                return Err(());
            }
            if items.len() > l.max_attributes {
                items.truncate(l.max_attributes);
                c.values_truncated += 1;
            }
            for i in items {
                clamp_value(i, l, depth + 1, c)?;
            }
        }
        AttrValue::Map(kvs) => {
            if depth >= MAX_VALUE_DEPTH {
                return Err(());
            }
            if kvs.len() > l.max_attributes {
                kvs.truncate(l.max_attributes);
                c.values_truncated += 1;
            }
            for kv in kvs {
                clamp_value(&mut kv.value, l, depth + 1, c)?;
            }
        }
        _ => {}
    }
    Ok(())
}

/// Clamps a list of attributes; returns how many were dropped, or the key nested too deep.
fn clamp_attrs(attrs: &mut Vec<Attribute>, l: &SpanLimits, c: &mut Clamped) -> Result<u32, String> {
    let dropped = attrs.len().saturating_sub(l.max_attributes);
    attrs.truncate(l.max_attributes);
    c.attributes_dropped += dropped as u64;
    for a in attrs.iter_mut() {
        if clamp_value(&mut a.value, l, 0, c).is_err() {
            return Err(format!("attribute {:?} is nested deeper than {MAX_VALUE_DEPTH} levels", a.key));
        }
    }
    Ok(u32::try_from(dropped).unwrap_or(u32::MAX))
}

fn clamp_span(s: &mut Span, l: &SpanLimits, now_ns: i64, c: &mut Clamped) -> Result<(), String> {
    if s.start_ns < MIN_START_NS {
        return Err(format!("start time {} ns is before 2000-01-01 (a timestamp in µs or ms?)", s.start_ns));
    }
    if s.start_ns > now_ns.saturating_add(l.max_future_ns) {
        return Err(format!(
            "start time {} ns is more than {} s ahead of the server's clock",
            s.start_ns,
            l.max_future_ns / 1_000_000_000
        ));
    }
    let mut local = Clamped::default();
    let n = clamp_attrs(&mut s.attributes, l, &mut local)?;
    s.dropped_attributes = s.dropped_attributes.saturating_add(n);
    if s.events.len() > l.max_events {
        // The newest events tell most about how the span ended.
        let extra = s.events.len() - l.max_events;
        s.events.drain(..extra);
        s.dropped_events = s.dropped_events.saturating_add(u32::try_from(extra).unwrap_or(u32::MAX));
        local.events_dropped += extra as u64;
    }
    for e in &mut s.events {
        let n = clamp_attrs(&mut e.attributes, l, &mut local)?;
        e.dropped_attributes = e.dropped_attributes.saturating_add(n);
        local.values_truncated += u64::from(cut(&mut e.name, l.max_attribute_value_bytes));
    }
    if s.links.len() > l.max_links {
        let extra = s.links.len() - l.max_links;
        s.links.truncate(l.max_links);
        s.dropped_links = s.dropped_links.saturating_add(u32::try_from(extra).unwrap_or(u32::MAX));
        local.links_dropped += extra as u64;
    }
    for k in &mut s.links {
        let n = clamp_attrs(&mut k.attributes, l, &mut local)?;
        k.dropped_attributes = k.dropped_attributes.saturating_add(n);
    }
    for text in [&mut s.name, &mut s.status_message, &mut s.trace_state] {
        local.values_truncated += u64::from(cut(text, l.max_attribute_value_bytes));
    }
    c.values_truncated += local.values_truncated;
    c.attributes_dropped += local.attributes_dropped;
    c.events_dropped += local.events_dropped;
    c.links_dropped += local.links_dropped;
    Ok(())
}

/// Applies the limits to every span of `batch` at server time `now_ns`: clamps in place,
/// removes refused spans and says which and why.
pub fn apply_span_limits(batch: &mut SpanBatch, l: &SpanLimits, now_ns: i64) -> (Clamped, Vec<Refused>) {
    let mut c = Clamped::default();
    let mut refused = Vec::new();
    let mut index = 0;
    // Origins are shared by the spans of one resource and scope: each is checked once and
    // replaced by a clamped copy only when it needs one.
    type Checked = Result<Option<Arc<SpanOrigin>>, String>;
    let mut origins: HashMap<*const SpanOrigin, Checked> = HashMap::new();
    batch.spans.retain_mut(|s| {
        let checked = origins.entry(Arc::as_ptr(&s.origin)).or_insert_with(|| {
            let mut probe = Clamped::default();
            let (mut resource, mut scope) = (s.origin.resource.clone(), s.origin.scope_attributes.clone());
            clamp_attrs(&mut resource, l, &mut probe).map_err(|e| format!("resource {e}"))?;
            clamp_attrs(&mut scope, l, &mut probe).map_err(|e| format!("scope {e}"))?;
            if probe == Clamped::default() {
                return Ok(None);
            }
            c.values_truncated += probe.values_truncated;
            c.attributes_dropped += probe.attributes_dropped;
            Ok(Some(Arc::new(SpanOrigin { resource, scope_attributes: scope, ..(*s.origin).clone() })))
        });
        let r = match checked {
            Ok(Some(o)) => {
                s.origin = o.clone();
                clamp_span(s, l, now_ns, &mut c)
            }
            Ok(None) => clamp_span(s, l, now_ns, &mut c),
            Err(e) => Err(e.clone()),
        };
        index += 1;
        match r {
            Ok(()) => true,
            Err(reason) => {
                refused.push(Refused { index: index - 1, name: s.name.clone(), reason });
                false
            }
        }
    });
    (c, refused)
}

#[cfg(test)]
#[path = "span_limits_test.rs"]
mod tests;
