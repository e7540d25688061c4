//! IP addresses and CIDR ranges: `ip("10.0.0.1")`, `ip("10.0.0.0/8")`, `ip("::1")`.
//!
//! The value type and the literal parser live in the runtime's value model
//! (`authz_runtime::ext::ip`); they are re-exported here so that stdlib paths keep working.

pub use authz_runtime::ext::ip::{parse_ip, IpError, IpNet};
