//! Resource targets: `host:port` parsed into a canonical form so equivalent spellings compare equal.

use std::fmt;
use std::net::{IpAddr, Ipv6Addr};

/// A `host:port` target in canonical form: lower-case host without trailing dot, IPv4-mapped
/// IPv6 addresses as IPv4, so equivalent spellings compare equal.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Target {
    /// Host name or IP address literal (without brackets).
    pub host: String,
    /// TCP port, never 0.
    pub port: u16,
    /// For `allocated:<pool>:<port>`: the VM pool whose machine held by the person is the host
    /// (then `host` is empty until the gateway looks the VM up).
    pub pool: Option<String>,
}

impl Target {
    /// Parses `host:port`, `[v6]:port` or `allocated:<pool>:<port>` into canonical form.
    pub fn parse(text: &str) -> Result<Self, String> {
        let text = text.trim();
        if let Some(rest) = text.strip_prefix("allocated:") {
            let (pool, port) = rest
                .rsplit_once(':')
                .ok_or("allocated targets are written allocated:<pool>:<port>")?;
            let port: u16 = port.parse().map_err(|_| format!("invalid port {port:?}"))?;
            if port == 0 {
                return Err("port 0 is not a valid target".into());
            }
            let valid = !pool.is_empty()
                && pool.len() <= 64
                && pool
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
            if !valid {
                return Err(format!("{pool:?} is not a pool name (letters, digits, -, _ and .)"));
            }
            return Ok(Self {
                host: String::new(),
                port,
                pool: Some(pool.to_owned()),
            });
        }
        let (host, port) = if let Some(rest) = text.strip_prefix('[') {
            let (host, port) = rest.split_once("]:").ok_or("IPv6 targets are written [address]:port")?;
            (host, port)
        } else {
            text.rsplit_once(':').ok_or("expected host:port")?
        };
        let port: u16 = port.parse().map_err(|_| format!("invalid port {port:?}"))?;
        if port == 0 {
            return Err("port 0 is not a valid target".into());
        }
        let host = canonical_host(host)?;
        // Written back, a host named `allocated` would read as an `allocated:` target.
        if host == "allocated" {
            return Err("a host named \"allocated\" reads as allocated:<pool>:<port>; write its full name".into());
        }
        Ok(Self { host, port, pool: None })
    }

    /// The target with the VM's address as host (for `allocated:` targets).
    pub fn on_host(&self, address: &str) -> Result<Self, String> {
        Ok(Self {
            host: canonical_host(address)?,
            port: self.port,
            pool: None,
        })
    }

    /// Checks that `host` is what [`on_host`](Self::on_host) accepts (a host name, or an IP
    /// address without brackets), returning its canonical form; for inventories, so an address
    /// the gateway could never dial is refused when it is entered, not at the first connection.
    pub fn check_host(host: &str) -> Result<String, String> {
        canonical_host(host)
    }

    /// The address to dial, with brackets around IPv6 literals.
    pub fn dial_string(&self) -> String {
        if self.host.contains(':') {
            format!("[{}]:{}", self.host, self.port)
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.pool {
            Some(pool) => write!(f, "allocated:{pool}:{}", self.port),
            None => f.write_str(&self.dial_string()),
        }
    }
}

fn canonical_host(host: &str) -> Result<String, String> {
    let host = host.strip_suffix('.').unwrap_or(host).to_ascii_lowercase();
    if let Ok(ip) = host.parse::<IpAddr>() {
        return Ok(match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or_else(|| v6.to_string(), |v4| v4.to_string()),
            IpAddr::V4(v4) => v4.to_string(),
        });
    }
    if host.parse::<Ipv6Addr>().is_err() && host.contains(':') {
        return Err(format!("invalid host {host:?}"));
    }
    let valid_label = |l: &str| {
        !l.is_empty() && l.len() <= 63 && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
    };
    if host.is_empty() || host.len() > 253 || !host.split('.').all(valid_label) {
        return Err(format!("invalid host {host:?}"));
    }
    Ok(host)
}
