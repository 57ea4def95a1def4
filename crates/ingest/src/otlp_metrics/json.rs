//! OTLP/JSON: the proto3 JSON mapping with OTLP's deviations (specification, "JSON Protobuf
//! Encoding"), decoded with serde into [`super::model`].
//!
//! Rules, each enforced here or by the `#[serde]` attributes of the model:
//! - Keys are lowerCamelCase field names; unknown keys (snake_case names included) are
//!   ignored, never an error. `null` means the field's default.
//! - 64-bit integers may be decimal strings or JSON numbers (an integral float is accepted);
//!   doubles may be numbers or the strings `"NaN"`, `"Infinity"`, `"-Infinity"`.
//! - `traceId`/`spanId` are hex, case-insensitive, empty for "no id"; any other length than
//!   16/8 bytes is an error, as in the protobuf decoder. Other bytes (`bytesValue`) are base64.
//! - Enums are integers. Tolerated on top: the enum's name for `aggregationTemporality`
//!   (`"AGGREGATION_TEMPORALITY_CUMULATIVE"`), which generic proto3 JSON encoders emit;
//!   any other string is an error.
//! - Nesting is bounded by serde_json's recursion limit (128 levels), which also bounds
//!   `AnyValue` arrays and maps.

use std::fmt;

use serde::de::{self, Deserialize, Deserializer, IgnoredAny, MapAccess, Visitor};

use super::model::{temporality, AnyValue, ExportMetricsRequest, KeyValue};
use crate::IngestError;

/// Decodes an OTLP/JSON `ExportMetricsServiceRequest`.
pub(crate) fn decode(body: &[u8]) -> Result<ExportMetricsRequest, IngestError> {
    serde_json::from_slice(body).map_err(IngestError::OtlpJson)
}

/// `null` or absent → `T::default()`; otherwise `T`'s own deserializer.
pub(crate) fn nullable<'de, D, T>(d: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de> + Default,
{
    Option::<T>::deserialize(d).map(Option::unwrap_or_default)
}

/// A JSON number or decimal string that must fit a `u64`.
struct U64Visitor;

impl Visitor<'_> for U64Visitor {
    type Value = u64;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an unsigned 64-bit integer (number or decimal string)")
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<u64, E> {
        Ok(v)
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<u64, E> {
        u64::try_from(v).map_err(|_| E::custom(format!("{v} is negative")))
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<u64, E> {
        if v.fract() == 0.0 && (0.0..18_446_744_073_709_551_616.0).contains(&v) {
            Ok(v as u64)
        } else {
            Err(E::custom(format!("{v} is not an unsigned 64-bit integer")))
        }
    }
    fn visit_str<E: de::Error>(self, s: &str) -> Result<u64, E> {
        s.parse().map_err(|_| E::custom(format!("{s:?} is not an unsigned 64-bit integer")))
    }
    fn visit_unit<E: de::Error>(self) -> Result<u64, E> {
        Ok(0)
    }
}

/// A JSON number or decimal string that must fit an `i64`.
struct I64Visitor;

impl Visitor<'_> for I64Visitor {
    type Value = i64;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a signed 64-bit integer (number or decimal string)")
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<i64, E> {
        i64::try_from(v).map_err(|_| E::custom(format!("{v} overflows a signed 64-bit integer")))
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<i64, E> {
        Ok(v)
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<i64, E> {
        if v.fract() == 0.0 && (-9_223_372_036_854_775_808.0..9_223_372_036_854_775_808.0).contains(&v) {
            Ok(v as i64)
        } else {
            Err(E::custom(format!("{v} is not a signed 64-bit integer")))
        }
    }
    fn visit_str<E: de::Error>(self, s: &str) -> Result<i64, E> {
        s.parse().map_err(|_| E::custom(format!("{s:?} is not a signed 64-bit integer")))
    }
    fn visit_unit<E: de::Error>(self) -> Result<i64, E> {
        Ok(0)
    }
}

/// A JSON number or one of the strings proto3 JSON allows for doubles.
struct F64Visitor;

impl Visitor<'_> for F64Visitor {
    type Value = f64;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a number or \"NaN\", \"Infinity\", \"-Infinity\"")
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<f64, E> {
        Ok(v as f64)
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<f64, E> {
        Ok(v as f64)
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<f64, E> {
        Ok(v)
    }
    fn visit_str<E: de::Error>(self, s: &str) -> Result<f64, E> {
        match s {
            "NaN" => Ok(f64::NAN),
            "Infinity" => Ok(f64::INFINITY),
            "-Infinity" => Ok(f64::NEG_INFINITY),
            // proto3 JSON also allows a number in a string.
            _ => s.parse().map_err(|_| E::custom(format!("{s:?} is not a double"))),
        }
    }
    fn visit_unit<E: de::Error>(self) -> Result<f64, E> {
        Ok(0.0)
    }
}

pub(crate) fn u64_any<'de, D: Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
    d.deserialize_any(U64Visitor)
}

pub(crate) fn f64_any<'de, D: Deserializer<'de>>(d: D) -> Result<f64, D::Error> {
    d.deserialize_any(F64Visitor)
}

/// For proto3 `optional double` and oneof members: present (even as 0) → `Some`.
pub(crate) fn opt_f64_any<'de, D: Deserializer<'de>>(d: D) -> Result<Option<f64>, D::Error> {
    struct Opt;
    impl<'de> Visitor<'de> for Opt {
        type Value = Option<f64>;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            F64Visitor.expecting(f)
        }
        fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_some<D2: Deserializer<'de>>(self, d: D2) -> Result<Self::Value, D2::Error> {
            d.deserialize_any(F64Visitor).map(Some)
        }
    }
    d.deserialize_option(Opt)
}

/// For oneof `as_int` members.
pub(crate) fn opt_i64_any<'de, D: Deserializer<'de>>(d: D) -> Result<Option<i64>, D::Error> {
    struct Opt;
    impl<'de> Visitor<'de> for Opt {
        type Value = Option<i64>;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            I64Visitor.expecting(f)
        }
        fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_some<D2: Deserializer<'de>>(self, d: D2) -> Result<Self::Value, D2::Error> {
            d.deserialize_any(I64Visitor).map(Some)
        }
    }
    d.deserialize_option(Opt)
}

/// A list of 64-bit unsigned integers, each a number or a string.
pub(crate) fn vec_u64_any<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u64>, D::Error> {
    struct Item(u64);
    impl<'de> Deserialize<'de> for Item {
        fn deserialize<D2: Deserializer<'de>>(d: D2) -> Result<Self, D2::Error> {
            d.deserialize_any(U64Visitor).map(Item)
        }
    }
    let v: Option<Vec<Item>> = Option::deserialize(d)?;
    Ok(v.unwrap_or_default().into_iter().map(|i| i.0).collect())
}

/// A list of doubles, each a number or one of the special strings.
pub(crate) fn vec_f64_any<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<f64>, D::Error> {
    struct Item(f64);
    impl<'de> Deserialize<'de> for Item {
        fn deserialize<D2: Deserializer<'de>>(d: D2) -> Result<Self, D2::Error> {
            d.deserialize_any(F64Visitor).map(Item)
        }
    }
    let v: Option<Vec<Item>> = Option::deserialize(d)?;
    Ok(v.unwrap_or_default().into_iter().map(|i| i.0).collect())
}

/// `AggregationTemporality`: an integer, or (tolerated) the enum value's name.
pub(crate) fn temporality<'de, D: Deserializer<'de>>(d: D) -> Result<i32, D::Error> {
    struct V;
    impl Visitor<'_> for V {
        type Value = i32;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("an AggregationTemporality number")
        }
        fn visit_u64<E: de::Error>(self, v: u64) -> Result<i32, E> {
            i32::try_from(v).map_err(|_| E::custom(format!("aggregationTemporality {v} out of range")))
        }
        fn visit_i64<E: de::Error>(self, v: i64) -> Result<i32, E> {
            i32::try_from(v).map_err(|_| E::custom(format!("aggregationTemporality {v} out of range")))
        }
        fn visit_str<E: de::Error>(self, s: &str) -> Result<i32, E> {
            match s {
                "AGGREGATION_TEMPORALITY_UNSPECIFIED" => Ok(temporality::UNSPECIFIED),
                "AGGREGATION_TEMPORALITY_DELTA" => Ok(temporality::DELTA),
                "AGGREGATION_TEMPORALITY_CUMULATIVE" => Ok(temporality::CUMULATIVE),
                _ => Err(E::custom(format!("{s:?} is not an aggregationTemporality"))),
            }
        }
        fn visit_unit<E: de::Error>(self) -> Result<i32, E> {
            Ok(temporality::UNSPECIFIED)
        }
    }
    d.deserialize_any(V)
}

/// `traceId`: 32 hex digits or empty.
pub(crate) fn trace_id<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
    let id = hex_id(d)?;
    super::proto::check_id(&id, "traceId", 16).map_err(de::Error::custom)?;
    Ok(id)
}

/// `spanId`: 16 hex digits or empty.
pub(crate) fn span_id<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
    let id = hex_id(d)?;
    super::proto::check_id(&id, "spanId", 8).map_err(de::Error::custom)?;
    Ok(id)
}

/// A hex id (either case), empty or absent for none.
fn hex_id<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
    let s: Option<std::borrow::Cow<'de, str>> = Option::deserialize(d)?;
    let s = s.unwrap_or_default();
    let b = s.as_bytes();
    if b.len() % 2 == 1 || b.len() > 64 {
        return Err(de::Error::custom(format!("{s:?} is not a hex trace or span id")));
    }
    let mut out = Vec::with_capacity(b.len() / 2);
    for pair in b.chunks_exact(2) {
        match (hex_digit(pair[0]), hex_digit(pair[1])) {
            (Some(h), Some(l)) => out.push(h << 4 | l),
            _ => return Err(de::Error::custom(format!("{s:?} is not a hex trace or span id"))),
        }
    }
    Ok(out)
}

fn hex_digit(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    }
}

impl<'de> Deserialize<'de> for AnyValue {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = AnyValue;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an AnyValue object")
            }
            fn visit_unit<E: de::Error>(self) -> Result<AnyValue, E> {
                Ok(AnyValue::Empty)
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<AnyValue, A::Error> {
                #[derive(serde::Deserialize, Default)]
                #[serde(default)]
                struct Values {
                    #[serde(deserialize_with = "nullable")]
                    values: Vec<AnyValue>,
                }
                #[derive(serde::Deserialize, Default)]
                #[serde(default)]
                struct KeyValues {
                    #[serde(deserialize_with = "nullable")]
                    values: Vec<KeyValue>,
                }
                struct I64(i64);
                impl<'de> Deserialize<'de> for I64 {
                    fn deserialize<D2: Deserializer<'de>>(d: D2) -> Result<Self, D2::Error> {
                        d.deserialize_any(I64Visitor).map(I64)
                    }
                }
                struct F64(f64);
                impl<'de> Deserialize<'de> for F64 {
                    fn deserialize<D2: Deserializer<'de>>(d: D2) -> Result<Self, D2::Error> {
                        d.deserialize_any(F64Visitor).map(F64)
                    }
                }
                // A null member counts as absent; the last member present wins.
                let mut out = AnyValue::Empty;
                while let Some(key) = map.next_key::<std::borrow::Cow<'de, str>>()? {
                    match key.as_ref() {
                        "stringValue" => {
                            if let Some(s) = map.next_value::<Option<String>>()? {
                                out = AnyValue::String(s);
                            }
                        }
                        "boolValue" => {
                            if let Some(b) = map.next_value::<Option<bool>>()? {
                                out = AnyValue::Bool(b);
                            }
                        }
                        "intValue" => {
                            if let Some(I64(i)) = map.next_value::<Option<I64>>()? {
                                out = AnyValue::Int(i);
                            }
                        }
                        "doubleValue" => {
                            if let Some(F64(f)) = map.next_value::<Option<F64>>()? {
                                out = AnyValue::Double(f);
                            }
                        }
                        "arrayValue" => {
                            if let Some(l) = map.next_value::<Option<Values>>()? {
                                out = AnyValue::Array(l.values);
                            }
                        }
                        "kvlistValue" => {
                            if let Some(l) = map.next_value::<Option<KeyValues>>()? {
                                out = AnyValue::KvList(l.values);
                            }
                        }
                        "bytesValue" => {
                            if let Some(s) = map.next_value::<Option<std::borrow::Cow<'de, str>>>()? {
                                let bytes =
                                    base64_decode(&s).ok_or_else(|| de::Error::custom("bytesValue is not base64"))?;
                                out = AnyValue::Bytes(bytes);
                            }
                        }
                        _ => {
                            map.next_value::<IgnoredAny>()?;
                        }
                    }
                }
                Ok(out)
            }
        }
        d.deserialize_any(V)
    }
}

/// Decodes standard or URL-safe base64, padded or not (proto3 JSON accepts both alphabets).
pub(crate) fn base64_decode(s: &str) -> Option<Vec<u8>> {
    let s = s.trim_end_matches('=');
    let mut out = Vec::with_capacity(s.len() * 3 / 4);
    let (mut acc, mut bits) = (0u32, 0u32);
    for c in s.bytes() {
        let v = match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' | b'-' => 62,
            b'/' | b'_' => 63,
            _ => return None,
        };
        acc = (acc << 6) | u32::from(v);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    // A lone trailing character (6 bits) cannot end a valid encoding.
    if bits >= 6 {
        return None;
    }
    Some(out)
}

/// Standard base64 with padding (Go's `base64.StdEncoding`), for rendering bytes attributes
/// and HTTP `Basic` credentials.
pub fn base64_encode(data: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(data.len().div_ceil(3) * 4);
    for chunk in data.chunks(3) {
        let b = [chunk[0], chunk.get(1).copied().unwrap_or(0), chunk.get(2).copied().unwrap_or(0)];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(char::from(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize]));
            } else {
                out.push('=');
            }
        }
    }
    out
}
