//! Prometheus relabelling over Periscope label sets: `relabel_configs`,
//! `metric_relabel_configs`, and later pipeline processors.
//!
//! Design constraints:
//! - Semantics are Prometheus 3's (`model/relabel/relabel.go`): the same defaults, the same
//!   validation rules, the same results, including `hashmod` values and Go's `$1`/`${name}`
//!   template expansion. Label names follow Prometheus 3's UTF-8 scheme by default.
//! - Regexes are Go RE2 syntax, anchored `^(?s:...)$`, translated where Rust's `regex` crate
//!   reads the same text differently (see [`Regex`]).
//! - [`relabel`] and [`relabel_builder`] never panic, whatever the labels and configs, and do
//!   no I/O.
//!
//! Known difference: when `labelmap` maps several labels to one name, the last in the
//! builder's order wins; Prometheus orders labels set by earlier rules after the rest, we keep
//! a changed label in its place. Only label sets where two sources collide on one target
//! after an earlier rule rewrote one of them can tell.

mod case;
mod config;
mod error;
mod expand;
mod pattern;
mod process;

pub use config::{
    valid_label_name, Action, NameValidationScheme, ParseVisitor, RelabelConfig, DEFAULT_REGEX, DEFAULT_REPLACEMENT,
    DEFAULT_SEPARATOR,
};
pub use error::{RegexError, UnknownAction, ValidationError};
pub use pattern::{go_compatible, Regex};
pub use process::{hash_mod, relabel, relabel_builder};
