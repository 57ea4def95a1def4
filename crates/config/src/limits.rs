//! `limits` (defaults for every tenant) and `tenants` (per-tenant overrides).
//!
//! Both structs are generated from one list so that a new limit is one line: its type,
//! default and doc appear in [`Limits`], and an optional copy in [`LimitsOverride`].

use serde::{Deserialize, Serialize};

use crate::{defaults, Duration};

macro_rules! limits {
    ($( $(#[$doc:meta])* $name:ident : $ty:ty = $default:expr, )*) => {
        /// Limits that apply to one tenant. The `limits` section sets them for every tenant;
        /// `tenants.<id>` overrides some of them for one. Zero means unlimited unless a field
        /// says otherwise.
        #[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
        #[serde(default, deny_unknown_fields)]
        pub struct Limits {
            $( $(#[$doc])* pub $name: $ty, )*
        }

        impl Default for Limits {
            fn default() -> Self {
                Limits { $( $name: $default, )* }
            }
        }

        /// A partial [`Limits`] for one tenant: set fields replace the defaults.
        #[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
        #[serde(default, deny_unknown_fields)]
        pub struct LimitsOverride {
            $( $(#[$doc])* #[serde(skip_serializing_if = "Option::is_none")] pub $name: Option<$ty>, )*
        }

        impl LimitsOverride {
            /// `base` with the fields set here replaced.
            pub fn apply_to(&self, base: &Limits) -> Limits {
                Limits { $( $name: self.$name.unwrap_or(base.$name), )* }
            }
        }
    };
}

limits! {
    /// Active series a tenant may have; zero means unlimited.
    max_series_per_tenant: u64 = defaults::MAX_SERIES_PER_TENANT,
    /// Labels (including `__name__`) one series may have; zero means unlimited.
    max_label_names_per_series: usize = defaults::MAX_LABEL_NAMES_PER_SERIES,
    /// Bytes in one label name; zero means unlimited.
    max_label_name_length: usize = defaults::MAX_LABEL_NAME_LENGTH,
    /// Bytes in one label value; zero means unlimited.
    max_label_value_length: usize = defaults::MAX_LABEL_VALUE_LENGTH,
    /// Samples in one write request; zero means unlimited.
    max_samples_per_request: u64 = defaults::MAX_SAMPLES_PER_REQUEST,
    /// Exemplars kept per series (the newest win); zero stores no exemplars.
    max_exemplars: usize = defaults::MAX_EXEMPLARS,
    /// Samples with a timestamp later than now plus this are rejected; zero rejects every
    /// sample from the future.
    creation_grace_period: Duration = defaults::CREATION_GRACE_PERIOD,
    /// Samples per second a tenant may write, averaged by a token bucket; requests beyond it
    /// are answered 429 (retry later). Zero means unlimited.
    ingestion_rate: u64 = defaults::INGESTION_RATE,
    /// Samples the bucket holds: how far a burst may go above `ingestion_rate`; zero means one
    /// second's worth of `ingestion_rate`.
    ingestion_burst_size: u64 = defaults::INGESTION_BURST_SIZE,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn override_replaces_only_set_fields() {
        let base = Limits::default();
        let o = LimitsOverride { max_series_per_tenant: Some(5), ..Default::default() };
        let l = o.apply_to(&base);
        assert_eq!(l.max_series_per_tenant, 5);
        assert_eq!(l.max_label_names_per_series, base.max_label_names_per_series);
        assert_eq!(LimitsOverride::default().apply_to(&base), base);
    }
}
