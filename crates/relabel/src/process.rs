//! Applying relabel rules to a label set, as Prometheus's `relabel.Process`/`ProcessBuilder`.

use md5::{Digest, Md5};
use periscope_model::{Labels, LabelsBuilder};

use crate::case;
use crate::config::{Action, RelabelConfig, DEFAULT_REGEX};
use crate::expand::{expand, has_reference};

/// Applies `configs` in order to `labels`. Returns `None` if a rule dropped the set.
///
/// The result may be empty (every label removed); callers that need a metric name check for
/// it, as Prometheus's scrape loop does.
pub fn relabel(labels: &Labels, configs: &[RelabelConfig]) -> Option<Labels> {
    if configs.is_empty() {
        return Some(labels.clone());
    }
    let mut builder = labels.builder();
    relabel_builder(&mut builder, configs).then(|| builder.build())
}

/// Applies `configs` in order to the labels in `builder`, editing it in place. Returns
/// `false` if a rule dropped the set (the builder is then left half-edited).
///
/// Configs are expected to have passed [`RelabelConfig::validate`]; an unvalidated config
/// never panics: a `hashmod` with `modulus: 0` and a write to an empty label name do nothing.
pub fn relabel_builder(builder: &mut LabelsBuilder, configs: &[RelabelConfig]) -> bool {
    let mut scratch = Scratch::default();
    configs.iter().all(|cfg| apply(cfg, builder, &mut scratch))
}

/// Buffers reused across the rules of one call.
#[derive(Default)]
struct Scratch {
    value: String,
    target: String,
    result: String,
}

fn apply(cfg: &RelabelConfig, lb: &mut LabelsBuilder, s: &mut Scratch) -> bool {
    s.value.clear();
    for (i, name) in cfg.source_labels.iter().enumerate() {
        if i > 0 {
            s.value.push_str(&cfg.separator);
        }
        s.value.push_str(lb.get(name).unwrap_or(""));
    }
    let val = s.value.as_str();

    match cfg.action {
        Action::Drop => return !cfg.regex.is_match(val),
        Action::Keep => return cfg.regex.is_match(val),
        Action::DropEqual => return lb.get(&cfg.target_label).unwrap_or("") != val,
        Action::KeepEqual => return lb.get(&cfg.target_label).unwrap_or("") == val,
        Action::Replace => replace(cfg, lb, s),
        Action::Lowercase => set(lb, &cfg.target_label, &case::to_lower(val)),
        Action::Uppercase => set(lb, &cfg.target_label, &case::to_upper(val)),
        Action::HashMod => {
            if let Some(m) = hash_mod(val, cfg.modulus) {
                set(lb, &cfg.target_label, &m.to_string());
            }
        }
        Action::LabelMap => {
            let mut renamed = Vec::new();
            for l in lb.labels() {
                if let Some(caps) = cfg.regex.captures(&l.name) {
                    let mut name = String::new();
                    expand(&caps, &cfg.replacement, &mut name);
                    renamed.push((name, l.value.clone()));
                }
            }
            for (name, value) in renamed {
                set(lb, &name, &value);
            }
        }
        Action::LabelDrop => {
            lb.retain(|l| !cfg.regex.is_match(&l.name));
        }
        Action::LabelKeep => {
            lb.retain(|l| cfg.regex.is_match(&l.name));
        }
    }
    true
}

fn replace(cfg: &RelabelConfig, lb: &mut LabelsBuilder, s: &mut Scratch) {
    let val = s.value.as_str();
    // Fast path, as Prometheus: nothing to match or expand.
    if val.is_empty()
        && cfg.regex.as_str() == DEFAULT_REGEX
        && !has_reference(&cfg.target_label)
        && !has_reference(&cfg.replacement)
    {
        set(lb, &cfg.target_label, &cfg.replacement);
        return;
    }
    let Some(caps) = cfg.regex.captures(val) else {
        return;
    };
    s.target.clear();
    expand(&caps, &cfg.target_label, &mut s.target);
    if s.target.is_empty() {
        return;
    }
    s.result.clear();
    expand(&caps, &cfg.replacement, &mut s.result);
    // An empty result deletes the label (LabelsBuilder::set does that for an empty value).
    set(lb, &s.target, &s.result);
}

/// Sets a label unless the name is empty, which a label set cannot hold.
fn set(lb: &mut LabelsBuilder, name: &str, value: &str) {
    if !name.is_empty() {
        lb.set(name, value);
    }
}

/// Prometheus's hashmod: the MD5 sum of the value, its last 8 bytes read as a big-endian
/// u64, modulo `modulus`. `None` for a zero modulus.
pub fn hash_mod(value: &str, modulus: u64) -> Option<u64> {
    let sum = Md5::digest(value.as_bytes());
    let mut tail = [0u8; 8];
    tail.copy_from_slice(&sum[8..16]);
    u64::from_be_bytes(tail).checked_rem(modulus)
}

#[cfg(test)]
#[path = "process_test.rs"]
mod tests;
