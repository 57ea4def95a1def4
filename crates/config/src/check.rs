//! Validation helpers: an error collector and address syntax checks.

use std::net::{Ipv4Addr, Ipv6Addr};

use crate::ConfigError;

/// Collects validation errors; validation never stops at the first one.
#[derive(Default)]
pub(crate) struct Errors(pub(crate) Vec<ConfigError>);

impl Errors {
    pub(crate) fn add(&mut self, key: impl Into<String>, message: impl Into<String>) {
        self.0.push(ConfigError::invalid(key, message));
    }
}

pub(crate) use periscope_relabel::ParseVisitor;

/// `base[i]`.
pub(crate) fn index(base: &str, i: usize) -> String {
    format!("{base}[{i}]")
}

/// `base.key`, quoting map keys that are not plain words: `tenants."a b"`.
pub(crate) fn map_key(base: &str, key: &str) -> String {
    let plain = !key.is_empty() && key.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
    if plain {
        format!("{base}.{key}")
    } else {
        format!("{base}.{key:?}")
    }
}

/// A host name or IPv4 address (no brackets): DNS-style labels of letters, digits, `-`, `_`.
fn valid_host(host: &str) -> bool {
    if host.parse::<Ipv4Addr>().is_ok() {
        return true;
    }
    !host.is_empty()
        && host.len() <= 253
        && host.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && label.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        })
}

/// Splits `host:port` or `[v6]:port`; the port is optional when `port_required` is false.
/// Returns a message saying what is wrong.
pub(crate) fn check_host_port(addr: &str, port_required: bool) -> Result<(), String> {
    let port = if let Some(rest) = addr.strip_prefix('[') {
        let Some((host, after)) = rest.split_once(']') else {
            return Err(format!("{addr:?} has an unclosed '['"));
        };
        if host.parse::<Ipv6Addr>().is_err() {
            return Err(format!("{host:?} is not an IPv6 address"));
        }
        match after {
            "" => None,
            _ => match after.strip_prefix(':') {
                Some(p) => Some(p),
                None => return Err(format!("{addr:?} is not host:port")),
            },
        }
    } else {
        match addr.rsplit_once(':') {
            Some((h, _)) if h.contains(':') => {
                return Err(format!("{addr:?} is not host:port (write IPv6 addresses in brackets: [::1]:9800)"))
            }
            Some((h, p)) => {
                if !valid_host(h) {
                    return Err(format!("{addr:?} is not host:port ({h:?} is not a host name or IP address)"));
                }
                Some(p)
            }
            None => {
                if !valid_host(addr) {
                    return Err(format!("{addr:?} is not a host name or IP address"));
                }
                None
            }
        }
    };
    match port {
        Some(p) if p.parse::<u16>().is_err() => Err(format!("{addr:?} has an invalid port {p:?} (0 to 65535)")),
        None if port_required => Err(format!("{addr:?} has no port (expected host:port)")),
        _ => Ok(()),
    }
}

/// A listen address: `host:port` with a required port; `0.0.0.0`/`[::]` listen everywhere.
pub(crate) fn check_listen_address(addr: &str) -> Result<(), String> {
    if addr.starts_with(':') && !addr[1..].contains(':') {
        return Err(format!("{addr:?} has no host (write 0.0.0.0{addr} to listen on every interface)"));
    }
    check_host_port(addr, true)
}

/// A static scrape target, checked as Prometheus checks one (no `/`, so no URL) plus
/// `host[:port]` syntax.
pub(crate) fn check_target(target: &str) -> Result<(), String> {
    if target.contains('/') {
        return Err(format!(
            "{target:?} is not a valid hostname (a target is host:port; put the scheme in scheme and the path in metrics_path)"
        ));
    }
    check_host_port(target, false)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn listen_addresses() {
        for ok in ["127.0.0.1:9800", "0.0.0.0:0", "[::]:4317", "[::1]:80", "localhost:9800", "my-host.example.com:1"] {
            assert_eq!(check_listen_address(ok), Ok(()), "{ok}");
        }
        for (bad, want) in [
            ("9800", "no port"),
            (":9800", "no host"),
            ("127.0.0.1:99999", "invalid port"),
            ("::1:80", "brackets"),
            ("[::1]", "no port"),
            ("[zz]:1", "not an IPv6"),
            ("a b:1", "not a host name"),
            ("", "not a host name"),
        ] {
            let e = check_listen_address(bad).unwrap_err();
            assert!(e.contains(want), "{bad:?}: {e}");
        }
    }

    #[test]
    fn targets() {
        for ok in ["localhost:9100", "localhost", "10.0.0.1:9100", "[::1]:9100", "[::1]", "node_1.svc:80"] {
            assert_eq!(check_target(ok), Ok(()), "{ok}");
        }
        for (bad, want) in [("http://a:9100", "not a valid hostname"), ("a:b", "invalid port"), ("", "not a host name")]
        {
            let e = check_target(bad).unwrap_err();
            assert!(e.contains(want), "{bad:?}: {e}");
        }
    }

    #[test]
    fn map_keys() {
        assert_eq!(map_key("tenants", "team-a"), "tenants.team-a");
        assert_eq!(map_key("tenants", "a b"), "tenants.\"a b\"");
    }
}
