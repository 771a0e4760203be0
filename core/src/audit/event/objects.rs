//! The OCSF objects an audit event carries: metadata, people, endpoints, traffic, policy,
//! API calls and resources.

use serde::{Deserialize, Serialize};

use super::OCSF_VERSION;

/// OCSF `metadata`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Metadata {
    /// Which program wrote it.
    pub product: Product,
    /// OCSF schema version.
    pub version: String,
    /// The audit stream (one per process).
    #[serde(default)]
    pub log_name: String,
}

/// OCSF `metadata.product`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Product {
    /// `Rampart`.
    pub name: String,
    /// `Rampart`.
    pub vendor_name: String,
    /// `gateway`, `provisioner`…
    #[serde(default)]
    pub feature: Feature,
    /// The program's version.
    #[serde(default)]
    pub version: String,
}

/// OCSF `product.feature`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Feature {
    /// The service.
    pub name: String,
}

impl Metadata {
    /// Metadata for a Rampart service writing the stream `log_name`.
    pub fn rampart(service: &str, version: &str, log_name: &str) -> Self {
        Self {
            product: Product {
                name: "Rampart".into(),
                vendor_name: "Rampart".into(),
                feature: Feature { name: service.into() },
                version: version.into(),
            },
            version: OCSF_VERSION.into(),
            log_name: log_name.into(),
        }
    }
}

/// OCSF `user`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct User {
    /// The name as typed or as the directory knows it.
    pub name: String,
    /// The directory's stable id, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uid: Option<String>,
    /// `User`, `Operator` or `System`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub r#type: Option<String>,
    /// Group memberships at the time.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub groups: Vec<Group>,
}

impl User {
    /// A person by name.
    pub fn named(name: &str) -> Self {
        Self {
            name: name.into(),
            ..Self::default()
        }
    }

    /// A person with their stable id.
    pub fn with_uid(name: &str, uid: &str) -> Self {
        Self {
            name: name.into(),
            uid: Some(uid.into()),
            ..Self::default()
        }
    }

    /// Adds group memberships.
    #[must_use]
    pub fn groups(mut self, groups: &[String]) -> Self {
        self.groups = groups.iter().map(|name| Group { name: name.clone() }).collect();
        self
    }
}

/// OCSF `group`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Group {
    /// Group name.
    pub name: String,
}

/// OCSF `actor`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Actor {
    /// Who acted.
    pub user: User,
}

impl Actor {
    /// An operator (API key holder) by name.
    pub fn operator(name: &str) -> Self {
        Self {
            user: User {
                name: name.into(),
                r#type: Some("Operator".into()),
                ..User::default()
            },
        }
    }

    /// A Rampart service acting on its own (e.g. the gateway locking a token).
    pub fn system(name: &str) -> Self {
        Self {
            user: User {
                name: name.into(),
                r#type: Some("System".into()),
                ..User::default()
            },
        }
    }
}

/// OCSF network endpoint.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Endpoint {
    /// IP address.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ip: Option<String>,
    /// Host name, when the target is named.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hostname: Option<String>,
    /// Port.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port: Option<u16>,
    /// The Rampart resource name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub svc_name: Option<String>,
}

impl Endpoint {
    /// An endpoint from a socket address.
    pub fn socket(addr: std::net::SocketAddr) -> Self {
        Self {
            ip: Some(addr.ip().to_canonical().to_string()),
            port: Some(addr.port()),
            ..Self::default()
        }
    }

    /// A resource and the `host:port` it leads to (`target` may be empty before dialling).
    pub fn resource(name: &str, target: &str) -> Self {
        let mut endpoint = Self {
            svc_name: Some(name.into()),
            ..Self::default()
        };
        if let Some((host, port)) = target.rsplit_once(':') {
            let host = host.trim_start_matches('[').trim_end_matches(']');
            if host.parse::<std::net::IpAddr>().is_ok() {
                endpoint.ip = Some(host.into());
            } else {
                endpoint.hostname = Some(host.into());
            }
            endpoint.port = port.parse().ok();
        }
        endpoint
    }
}

/// OCSF `session`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionRef {
    /// Session id.
    pub uid: String,
}

/// OCSF `traffic`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Traffic {
    /// From the target back to the client.
    pub bytes_in: u64,
    /// From the client to the target.
    pub bytes_out: u64,
}

/// OCSF `policy`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PolicyRef {
    /// The rule's name.
    pub name: String,
}

/// OCSF `api`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Api {
    /// `METHOD /route/{param}`.
    pub operation: String,
    /// The service answering.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service: Option<ApiService>,
}

/// OCSF `api.service`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApiService {
    /// `gateway-admin` or `provisioner`.
    pub name: String,
}

/// OCSF `http_request`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct HttpRequest {
    /// GET, POST…
    pub http_method: String,
    /// The path as called.
    pub url: Url,
}

/// OCSF `url`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Url {
    /// Path.
    pub path: String,
}

/// OCSF `resources[]`: something an operator or the gateway changed.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ResourceRef {
    /// `token`, `vm`, `session`…
    pub r#type: String,
    /// Its id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uid: Option<String>,
    /// A name for people.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
}
