//! Tenants: every record belongs to one (`X-Scope-OrgID`, `default` when absent).

use std::fmt;
use std::sync::Arc;

/// A tenant id: 1 to 150 characters of `[A-Za-z0-9!_.*'()-]`, never `.` or `..`, so that it can
/// name a directory safely (the rule Mimir and Loki apply).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TenantId(Arc<str>);

/// Why a tenant id was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TenantError {
    #[error("tenant id is empty")]
    Empty,
    #[error("tenant id is longer than 150 characters")]
    TooLong,
    #[error("tenant id {0:?} has a character outside [A-Za-z0-9!_.*'()-]")]
    BadChar(String),
    #[error("tenant id may not be '.' or '..'")]
    Dots,
}

impl crate::Classify for TenantError {
    fn class(&self) -> crate::ErrorClass {
        crate::ErrorClass::InvalidInput
    }
}

impl TenantId {
    /// The tenant used when a request names none.
    pub const DEFAULT: &'static str = "default";

    /// Checks and wraps a tenant id.
    pub fn new(id: &str) -> Result<Self, TenantError> {
        if id.is_empty() {
            return Err(TenantError::Empty);
        }
        if id.len() > 150 {
            return Err(TenantError::TooLong);
        }
        if id == "." || id == ".." {
            return Err(TenantError::Dots);
        }
        let ok = id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'!' | b'_' | b'.' | b'*' | b'\'' | b'(' | b')' | b'-'));
        if !ok {
            return Err(TenantError::BadChar(id.to_string()));
        }
        Ok(TenantId(Arc::from(id)))
    }

    /// The `default` tenant.
    pub fn default_tenant() -> Self {
        TenantId(Arc::from(Self::DEFAULT))
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl Default for TenantId {
    fn default() -> Self {
        Self::default_tenant()
    }
}

impl fmt::Display for TenantId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_and_rejects() {
        assert!(TenantId::new("team-a_1").is_ok());
        assert_eq!(TenantId::new(""), Err(TenantError::Empty));
        assert_eq!(TenantId::new(".."), Err(TenantError::Dots));
        assert!(matches!(TenantId::new("a/b"), Err(TenantError::BadChar(_))));
        assert_eq!(TenantId::new(&"x".repeat(151)), Err(TenantError::TooLong));
    }
}
