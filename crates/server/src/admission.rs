//! Admission of a decoded write before it reaches the store: the per-request sample limit
//! (413) and the per-tenant ingestion rate (429), shared by every write protocol.

use crate::ApiError;
use periscope_config::Limits;
use periscope_model::{ErrorClass, TenantId};
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Instant;

#[derive(Debug)]
struct Bucket {
    tokens: f64,
    last: Instant,
}

/// Token buckets of samples, one per tenant.
#[derive(Debug, Default)]
pub struct IngestLimiter {
    buckets: Mutex<HashMap<TenantId, Bucket>>,
}

impl IngestLimiter {
    /// Takes `samples` tokens from `tenant`'s bucket (refilled at `rate`/s up to `burst`).
    /// A request is admitted while the bucket is not empty, and may leave it in debt, so that a
    /// request larger than the burst still passes once the bucket is full.
    fn take(&self, tenant: &TenantId, samples: u64, rate: u64, burst: u64, now: Instant) -> bool {
        let mut buckets = self.buckets.lock().unwrap_or_else(|p| p.into_inner());
        let b = buckets.entry(tenant.clone()).or_insert(Bucket { tokens: burst as f64, last: now });
        let refill = now.saturating_duration_since(b.last).as_secs_f64() * rate as f64;
        b.tokens = (b.tokens + refill).min(burst as f64);
        b.last = now;
        if b.tokens <= 0.0 {
            return false;
        }
        b.tokens -= samples as f64;
        true
    }
}

/// Checks a write of `samples` samples for `tenant` against its limits.
pub(crate) fn admit(limiter: &IngestLimiter, tenant: &TenantId, limits: &Limits, samples: u64) -> Result<(), ApiError> {
    if limits.max_samples_per_request > 0 && samples > limits.max_samples_per_request {
        return Err(ApiError::from_class(
            ErrorClass::TooLarge,
            "too_many_samples",
            format!(
                "request has {samples} samples, more than the limit of {} (limits.max_samples_per_request)",
                limits.max_samples_per_request
            ),
        ));
    }
    if limits.ingestion_rate > 0 {
        let burst = if limits.ingestion_burst_size > 0 { limits.ingestion_burst_size } else { limits.ingestion_rate };
        if !limiter.take(tenant, samples, limits.ingestion_rate, burst, Instant::now()) {
            return Err(ApiError::from_class(
                ErrorClass::RateLimited,
                "rate_limited",
                format!(
                    "ingestion rate limit ({} samples/s, burst {burst}) exceeded for tenant {tenant} while adding {samples} samples (limits.ingestion_rate); retry later",
                    limits.ingestion_rate
                ),
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn bucket_refills_and_allows_debt() {
        let l = IngestLimiter::default();
        let t = TenantId::default_tenant();
        let t0 = Instant::now();
        assert!(l.take(&t, 150, 100, 100, t0)); // full bucket: passes, leaves debt of 50
        assert!(!l.take(&t, 1, 100, 100, t0));
        assert!(!l.take(&t, 1, 100, 100, t0 + Duration::from_millis(400))); // still -10
        assert!(l.take(&t, 10, 100, 100, t0 + Duration::from_millis(700)));
        // Tenants are separate.
        assert!(l.take(&TenantId::new("b").unwrap(), 10, 100, 100, t0));
    }

    #[test]
    fn admit_names_the_limits() {
        let l = IngestLimiter::default();
        let t = TenantId::default_tenant();
        let limits = Limits { max_samples_per_request: 10, ingestion_rate: 5, ..Limits::default() };
        let e = admit(&l, &t, &limits, 11).unwrap_err();
        assert_eq!(e.status.as_u16(), 413);
        assert!(e.message.contains("limits.max_samples_per_request"));
        admit(&l, &t, &limits, 10).unwrap();
        let e = admit(&l, &t, &limits, 1).unwrap_err();
        assert_eq!(e.status.as_u16(), 429);
        assert!(e.message.contains("limits.ingestion_rate"));
    }
}
