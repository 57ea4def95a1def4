//! `RelabelConfig`: one relabelling rule in Prometheus's YAML syntax, and its validation.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize};

use crate::error::{UnknownAction, ValidationError};
use crate::expand::has_reference;
use crate::pattern::Regex;

/// Default `separator`: joins the values of `source_labels`.
pub const DEFAULT_SEPARATOR: &str = ";";
/// Default `regex`: matches anything and captures it as `$1`.
pub const DEFAULT_REGEX: &str = "(.*)";
/// Default `replacement`: the first capture group.
pub const DEFAULT_REPLACEMENT: &str = "$1";

/// What a relabelling rule does. Names are matched case-insensitively when parsed, as in
/// Prometheus, and written in lower case.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Action {
    /// Sets `target_label` to `replacement` (both expanded with the match) if `regex` matches
    /// the joined source values; an empty result deletes `target_label`.
    #[default]
    Replace,
    /// Drops the label set unless `regex` matches the joined source values.
    Keep,
    /// Drops the label set if `regex` matches the joined source values.
    Drop,
    /// Drops the label set unless the joined source values equal the value of `target_label`.
    KeepEqual,
    /// Drops the label set if the joined source values equal the value of `target_label`.
    DropEqual,
    /// Sets `target_label` to the MD5 hash of the joined source values modulo `modulus`.
    HashMod,
    /// For every label whose name matches `regex`, copies its value to the label named by
    /// `replacement` expanded with the match.
    LabelMap,
    /// Removes every label whose name matches `regex`.
    LabelDrop,
    /// Removes every label whose name does not match `regex`.
    LabelKeep,
    /// Sets `target_label` to the joined source values in lower case.
    Lowercase,
    /// Sets `target_label` to the joined source values in upper case.
    Uppercase,
}

impl Action {
    /// Every action, in Prometheus's documentation order.
    pub const ALL: [Action; 11] = [
        Action::Replace,
        Action::Keep,
        Action::Drop,
        Action::KeepEqual,
        Action::DropEqual,
        Action::HashMod,
        Action::LabelMap,
        Action::LabelDrop,
        Action::LabelKeep,
        Action::Lowercase,
        Action::Uppercase,
    ];

    /// The name as written in YAML.
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Replace => "replace",
            Action::Keep => "keep",
            Action::Drop => "drop",
            Action::KeepEqual => "keepequal",
            Action::DropEqual => "dropequal",
            Action::HashMod => "hashmod",
            Action::LabelMap => "labelmap",
            Action::LabelDrop => "labeldrop",
            Action::LabelKeep => "labelkeep",
            Action::Lowercase => "lowercase",
            Action::Uppercase => "uppercase",
        }
    }
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Action {
    type Err = UnknownAction;

    /// Case-insensitive, as Prometheus.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let lower = s.to_ascii_lowercase();
        Action::ALL.into_iter().find(|a| a.as_str() == lower).ok_or_else(|| UnknownAction(s.to_string()))
    }
}

impl Serialize for Action {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for Action {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_str(ParseVisitor::<Action>::new("a relabel action"))
    }
}

/// Parses a string scalar with `FromStr` inside the visitor, so that a YAML error names the
/// key path and position of the bad value.
pub struct ParseVisitor<T> {
    expecting: &'static str,
    _t: std::marker::PhantomData<T>,
}

impl<T> ParseVisitor<T> {
    /// A visitor whose error message says it expected `expecting`.
    pub fn new(expecting: &'static str) -> Self {
        ParseVisitor { expecting, _t: std::marker::PhantomData }
    }
}

impl<T> serde::de::Visitor<'_> for ParseVisitor<T>
where
    T: FromStr,
    T::Err: fmt::Display,
{
    type Value = T;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.expecting)
    }

    fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<T, E> {
        v.parse().map_err(E::custom)
    }
}

/// Which label names are valid targets. Prometheus 3 defaults to UTF-8 (any non-empty name);
/// `legacy` is its `metric_name_validation_scheme: legacy` (`[a-zA-Z_][a-zA-Z0-9_]*`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum NameValidationScheme {
    /// Any non-empty UTF-8 name (Prometheus 3's default and Periscope's model).
    #[default]
    Utf8,
    /// The classic `[a-zA-Z_][a-zA-Z0-9_]*`.
    Legacy,
}

/// One relabelling rule, in Prometheus's `relabel_config` syntax. Every field has
/// Prometheus's default, so `{}` is a valid (if useless) `replace` rule that still needs a
/// `target_label` to pass [`RelabelConfig::validate`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RelabelConfig {
    /// Labels whose values are joined with `separator` (an absent label joins as "").
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub source_labels: Vec<String>,
    /// String placed between the joined source values.
    #[serde(deserialize_with = "null_as_empty")]
    pub separator: String,
    /// Regex matched against the joined source values (or label names for `labelmap`,
    /// `labeldrop`, `labelkeep`); anchored at both ends.
    pub regex: Regex,
    /// Modulus for `hashmod`.
    #[serde(skip_serializing_if = "is_zero")]
    pub modulus: u64,
    /// Label written by `replace`, `hashmod`, `lowercase`, `uppercase`; compared by
    /// `keepequal`/`dropequal`. `replace` expands `$1`, `${name}` in it.
    #[serde(skip_serializing_if = "String::is_empty", deserialize_with = "null_as_empty")]
    pub target_label: String,
    /// Value written by `replace`, new name for `labelmap`; `$1`, `${name}` are expanded.
    #[serde(deserialize_with = "null_as_empty")]
    pub replacement: String,
    /// What the rule does.
    pub action: Action,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

/// `key: ~` is the empty string, as Go's YAML decoder has it.
fn null_as_empty<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    Ok(Option::<String>::deserialize(d)?.unwrap_or_default())
}

impl Default for RelabelConfig {
    fn default() -> Self {
        RelabelConfig {
            source_labels: Vec::new(),
            separator: DEFAULT_SEPARATOR.to_string(),
            regex: Regex::default(),
            modulus: 0,
            target_label: String::new(),
            replacement: DEFAULT_REPLACEMENT.to_string(),
            action: Action::Replace,
        }
    }
}

impl RelabelConfig {
    /// Checks the rule by Prometheus's rules with UTF-8 label names (Prometheus 3's default),
    /// returning every broken rule.
    pub fn validate(&self) -> Result<(), Vec<ValidationError>> {
        self.validate_with(NameValidationScheme::Utf8)
    }

    /// Checks the rule by Prometheus's rules under the given name validation scheme.
    pub fn validate_with(&self, scheme: NameValidationScheme) -> Result<(), Vec<ValidationError>> {
        let mut errs = Vec::new();
        let action = self.action;
        let mut err = |field, message: String| {
            if !errs.iter().any(|e: &ValidationError| e.field == field) {
                errs.push(ValidationError::new(field, message));
            }
        };

        if self.source_labels.iter().any(String::is_empty) {
            err("source_labels", "label names must not be empty".to_string());
        }
        if action == Action::HashMod && self.modulus == 0 {
            err("modulus", "must be set to a non-zero value for action hashmod".to_string());
        }

        let writes_target = matches!(
            action,
            Action::Replace
                | Action::HashMod
                | Action::Lowercase
                | Action::Uppercase
                | Action::KeepEqual
                | Action::DropEqual
        );
        if writes_target && self.target_label.is_empty() {
            err("target_label", format!("must be set for action {action}"));
        } else if writes_target {
            let valid = if action == Action::Replace && has_reference(&self.target_label) {
                valid_template_name(&self.target_label, scheme)
            } else {
                valid_label_name(&self.target_label, scheme)
            };
            if !valid {
                err("target_label", format!("{:?} is not a valid label name for action {action}", self.target_label));
            }
        }

        let no_replacement =
            matches!(action, Action::Lowercase | Action::Uppercase | Action::KeepEqual | Action::DropEqual);
        if no_replacement && self.replacement != DEFAULT_REPLACEMENT {
            err("replacement", format!("must not be set for action {action}"));
        }
        if action == Action::LabelMap && !valid_template_name(&self.replacement, scheme) {
            err("replacement", format!("{:?} is not a valid label name for action labelmap", self.replacement));
        }

        if matches!(action, Action::KeepEqual | Action::DropEqual) {
            let only = "it takes only source_labels and target_label";
            if self.regex.as_str() != DEFAULT_REGEX {
                err("regex", format!("must not be set for action {action} ({only})"));
            }
            if self.modulus != 0 {
                err("modulus", format!("must not be set for action {action} ({only})"));
            }
            if self.separator != DEFAULT_SEPARATOR {
                err("separator", format!("must not be set for action {action} ({only})"));
            }
        }

        if matches!(action, Action::LabelDrop | Action::LabelKeep) {
            let only = "it takes only regex";
            if !self.source_labels.is_empty() {
                err("source_labels", format!("must not be set for action {action} ({only})"));
            }
            if !self.target_label.is_empty() {
                err("target_label", format!("must not be set for action {action} ({only})"));
            }
            if self.modulus != 0 {
                err("modulus", format!("must not be set for action {action} ({only})"));
            }
            if self.separator != DEFAULT_SEPARATOR {
                err("separator", format!("must not be set for action {action} ({only})"));
            }
            if self.replacement != DEFAULT_REPLACEMENT {
                err("replacement", format!("must not be set for action {action} ({only})"));
            }
        }

        if errs.is_empty() {
            Ok(())
        } else {
            Err(errs)
        }
    }
}

/// A label name under `scheme`.
pub fn valid_label_name(name: &str, scheme: NameValidationScheme) -> bool {
    match scheme {
        NameValidationScheme::Utf8 => !name.is_empty(),
        NameValidationScheme::Legacy => legacy_name(name),
    }
}

fn legacy_name(name: &str) -> bool {
    let mut b = name.bytes();
    matches!(b.next(), Some(c) if c.is_ascii_alphabetic() || c == b'_')
        && b.all(|c| c.is_ascii_alphanumeric() || c == b'_')
}

/// A name that may contain `$1`/`${name}` references. Under UTF-8 any non-empty string is
/// allowed; under legacy, Prometheus's `^(?:(?:[a-zA-Z_]|\$(?:\{\w+\}|\w+))+\w*)+$`: it starts
/// with a letter, `_` or a reference, then has only word characters and references.
fn valid_template_name(name: &str, scheme: NameValidationScheme) -> bool {
    if scheme == NameValidationScheme::Utf8 {
        return !name.is_empty();
    }
    let b = name.as_bytes();
    let word = |c: u8| c.is_ascii_alphanumeric() || c == b'_';
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'$' {
            i += 1;
            if b.get(i) == Some(&b'{') {
                let start = i + 1;
                let mut j = start;
                while j < b.len() && word(b[j]) {
                    j += 1;
                }
                if j == start || b.get(j) != Some(&b'}') {
                    return false;
                }
                i = j + 1;
            } else {
                let start = i;
                while i < b.len() && word(b[i]) {
                    i += 1;
                }
                if i == start {
                    return false;
                }
            }
        } else if word(b[i]) && (i > 0 || !b[i].is_ascii_digit()) {
            i += 1;
        } else {
            return false;
        }
    }
    !b.is_empty()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn actions_parse_case_insensitively() {
        for a in Action::ALL {
            assert_eq!(a.as_str().parse::<Action>(), Ok(a));
            assert_eq!(a.as_str().to_uppercase().parse::<Action>(), Ok(a));
        }
        let e = "frobnicate".parse::<Action>().unwrap_err();
        assert!(e.to_string().contains("unknown relabel action \"frobnicate\""), "{e}");
    }

    #[test]
    fn legacy_target_label_templates() {
        // Prometheus's TestTargetLabelValidity table.
        let table = [
            ("-label", false),
            ("label", true),
            ("label${1}", true),
            ("${1}label", true),
            ("${1}", true),
            ("${", false),
            ("$", false),
            ("${}", false),
            ("foo${", false),
            ("$1", true),
            ("asd$2asd", true),
            ("-foo${1}bar-", false),
            ("_${1}_", true),
            ("foo${bar}foo", true),
            ("0${3}", false),
            ("", false),
        ];
        for (s, want) in table {
            assert_eq!(valid_template_name(s, NameValidationScheme::Legacy), want, "{s:?}");
        }
        assert!(valid_template_name("-${3}", NameValidationScheme::Utf8));
    }

    #[test]
    fn legacy_names() {
        assert!(valid_label_name("a_1", NameValidationScheme::Legacy));
        assert!(!valid_label_name("1a", NameValidationScheme::Legacy));
        assert!(!valid_label_name("a.b", NameValidationScheme::Legacy));
        assert!(valid_label_name("a.b", NameValidationScheme::Utf8));
        assert!(!valid_label_name("", NameValidationScheme::Utf8));
    }
}
