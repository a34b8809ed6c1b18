//! `TransportSecurityMiddleware` (mcp/server/transport_security.py, 1.20.0
//! and 2.3.0).
//!
//! A POST must carry `Content-Type: application/json…` (400 otherwise; 1.20
//! logs a WARNING first, 2.3 does not). DNS rebinding protection is off
//! unless settings are given — and FastMCP 1.20 gives none by default, so by
//! default any `Host` and any `Origin` pass; 2.3's app factory gives loopback
//! lists for a loopback host (see [`Release::default_dns_rebinding_protection`]).
//! With settings, a `Host` not in the allowed list gets 421 and an `Origin`
//! (when present) not in its list gets 403; entries ending in `:*` match any
//! port.
//!
//! [`Release::default_dns_rebinding_protection`]: super::super::release::Release::default_dns_rebinding_protection

use super::super::release::Release;
use super::super::starlette::{Request, Response};

/// `TransportSecuritySettings(enable_dns_rebinding_protection=True, ...)`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SecuritySettings {
    /// `allowed_hosts`.
    pub allowed_hosts: Vec<String>,
    /// `allowed_origins`.
    pub allowed_origins: Vec<String>,
}

fn matches(value: &str, allowed: &[String]) -> bool {
    crate::servers::AllowList::matches(value, allowed)
}

/// `await validate_request(request, is_post)`: the error response, if any.
pub fn validate_request(
    release: Release,
    settings: Option<&SecuritySettings>,
    request: &Request,
    is_post: bool,
) -> Option<Response> {
    let warns = release.warns_on_bad_content_type();
    if is_post {
        match request.header("content-type") {
            None | Some("") => {
                if warns {
                    tracing::warn!(target: "mcp.server.transport_security", "Missing Content-Type header in POST request");
                }
                return Some(Response::new(
                    "Invalid Content-Type header",
                    400,
                    vec![],
                    None,
                ));
            }
            Some(ct) if !ct.to_ascii_lowercase().starts_with("application/json") => {
                if warns {
                    tracing::warn!(target: "mcp.server.transport_security", "Invalid Content-Type header: {ct}");
                }
                return Some(Response::new(
                    "Invalid Content-Type header",
                    400,
                    vec![],
                    None,
                ));
            }
            Some(_) => {}
        }
    }
    let settings = settings?;
    match request.header("host") {
        None | Some("") => {
            tracing::warn!(target: "mcp.server.transport_security", "Missing Host header in request");
            return Some(Response::new("Invalid Host header", 421, vec![], None));
        }
        Some(h) if !matches(h, &settings.allowed_hosts) => {
            tracing::warn!(target: "mcp.server.transport_security", "Invalid Host header: {h}");
            return Some(Response::new("Invalid Host header", 421, vec![], None));
        }
        Some(_) => {}
    }
    match request.header("origin") {
        Some(o) if !o.is_empty() && !matches(o, &settings.allowed_origins) => {
            tracing::warn!(target: "mcp.server.transport_security", "Invalid Origin header: {o}");
            Some(Response::new("Invalid Origin header", 403, vec![], None))
        }
        _ => None,
    }
}

impl SecuritySettings {
    /// 2.3's `streamable_http_app(host="127.0.0.1")` default: "Auto-enable
    /// DNS rebinding protection for localhost". `own_host` is the `Host` the
    /// simulated server is reached by, which stands in for `127.0.0.1:PORT`
    /// (see [`Release::default_dns_rebinding_protection`]).
    pub fn loopback_default(own_host: &str) -> Self {
        let mut allowed_hosts: Vec<String> = ["127.0.0.1:*", "localhost:*", "[::1]:*"]
            .map(String::from)
            .to_vec();
        allowed_hosts.push(format!("{own_host}:*"));
        Self {
            allowed_hosts,
            allowed_origins: ["http://127.0.0.1:*", "http://localhost:*", "http://[::1]:*"]
                .map(String::from)
                .to_vec(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::matches;

    #[test]
    fn port_wildcards() {
        let allowed = vec!["http://localhost:*".to_string(), "server:8000".to_string()];
        assert!(matches("http://localhost:3000", &allowed));
        assert!(matches("server:8000", &allowed));
        assert!(!matches("http://evil.example", &allowed));
        assert!(!matches("http://localhostx:1", &allowed));
    }
}
