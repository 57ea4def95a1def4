//! The family table both parsers fill: one entry per metric family name, its metadata and how
//! many samples it received.
//!
//! Invariants:
//! - A name maps to at most one entry; indexes handed out stay valid until [`FamilyTable::finish`].
//! - Only families that received at least one sample are counted and reported, so a HELP line for
//!   a metric that never appears produces nothing (as in `expfmt`).

use std::collections::HashMap;

use periscope_model::{MetricMetadata, MetricType};

/// One metric family.
#[derive(Debug, Clone)]
pub(crate) struct Family {
    pub name: String,
    pub typ: MetricType,
    /// The type can no longer change: a TYPE line was seen, or (0.0.4) a sample fixed it.
    pub type_fixed: bool,
    /// A TYPE line was seen.
    pub type_declared: bool,
    pub help: Option<String>,
    pub unit: Option<String>,
    pub samples: usize,
}

/// All families of one exposition, in order of first appearance.
#[derive(Debug, Default)]
pub(crate) struct FamilyTable {
    list: Vec<Family>,
    by_name: HashMap<String, usize>,
}

impl FamilyTable {
    /// The family named exactly `name`.
    pub fn get(&self, name: &str) -> Option<usize> {
        self.by_name.get(name).copied()
    }

    /// The family `name` belongs to by suffix: for each `(suffix, types)` rule, `name` minus a
    /// non-empty base plus `suffix`, where the base family has one of `types`.
    pub fn by_suffix(&self, name: &str, rules: &[(&str, &[MetricType])]) -> Option<usize> {
        for (suffix, types) in rules {
            let Some(base) = name.strip_suffix(suffix) else { continue };
            if base.is_empty() {
                continue;
            }
            if let Some(i) = self.get(base) {
                if types.contains(&self.list[i].typ) {
                    return Some(i);
                }
            }
        }
        None
    }

    /// Creates a new, untyped family `name` (which must not exist yet).
    pub fn create(&mut self, name: &str) -> usize {
        let i = self.list.len();
        self.list.push(Family {
            name: name.to_string(),
            typ: MetricType::Unknown,
            type_fixed: false,
            type_declared: false,
            help: None,
            unit: None,
            samples: 0,
        });
        self.by_name.insert(name.to_string(), i);
        i
    }

    /// The family at `i`; `i` must come from this table.
    pub fn at(&self, i: usize) -> &Family {
        &self.list[i]
    }

    /// The family at `i`, mutably; `i` must come from this table.
    pub fn at_mut(&mut self, i: usize) -> &mut Family {
        &mut self.list[i]
    }

    /// The metadata of every family that has samples and any metadata line, and the number of
    /// families that have samples.
    pub fn finish(self) -> (Vec<MetricMetadata>, usize) {
        let mut count = 0;
        let mut metadata = Vec::new();
        for f in self.list {
            if f.samples == 0 {
                continue;
            }
            count += 1;
            if f.type_declared || f.help.is_some() || f.unit.is_some() {
                metadata.push(MetricMetadata {
                    metric_family: f.name,
                    metric_type: f.typ,
                    help: f.help.unwrap_or_default(),
                    unit: f.unit.unwrap_or_default(),
                });
            }
        }
        (metadata, count)
    }
}
