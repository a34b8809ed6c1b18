//! `TransportSecurityMiddleware` (mcp/server/transport_security.py, 1.20.0).
//!
//! A POST must carry `Content-Type: application/json…` (400 otherwise). DNS
//! rebinding protection is off unless settings are given — and FastMCP 1.20
//! gives none by default, so by default any `Host` and any `Origin` pass. With
//! settings, a `Host` not in the allowed list gets 421 and an `Origin` (when
//! present) not in its list gets 403; entries ending in `:*` match any port.

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
    settings: Option<&SecuritySettings>,
    request: &Request,
    is_post: bool,
) -> Option<Response> {
    if is_post {
        match request.header("content-type") {
            None | Some("") => {
                tracing::warn!(target: "mcp.server.transport_security", "Missing Content-Type header in POST request");
                return Some(Response::new(
                    "Invalid Content-Type header",
                    400,
                    vec![],
                    None,
                ));
            }
            Some(ct) if !ct.to_ascii_lowercase().starts_with("application/json") => {
                tracing::warn!(target: "mcp.server.transport_security", "Invalid Content-Type header: {ct}");
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
