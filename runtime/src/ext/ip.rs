//! IP addresses and CIDR ranges: `ip("10.0.0.1")`, `ip("10.0.0.0/8")`, `ip("::1")`.

use std::fmt;
use std::net::IpAddr;

pub use crate::value::IpNet;

/// Why a string is not an IP address or CIDR range.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum IpError {
    /// The address part is neither an IPv4 nor an IPv6 address.
    InvalidAddress(String),
    /// The text after `/` is not a decimal number.
    InvalidPrefix(String),
    /// The prefix length exceeds the address width.
    PrefixTooLong {
        /// The prefix length written.
        prefix: u32,
        /// The largest allowed: 32 or 128.
        max: u8,
    },
}

impl fmt::Display for IpError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            IpError::InvalidAddress(text) => write!(f, "`{text}` is not an IPv4 or IPv6 address"),
            IpError::InvalidPrefix(text) => write!(f, "`{text}` is not a prefix length"),
            IpError::PrefixTooLong { prefix, max } => {
                write!(f, "prefix length {prefix} is longer than {max}")
            }
        }
    }
}

impl std::error::Error for IpError {}

/// Parses an address with an optional `/prefix`.
pub fn parse_ip(text: &str) -> Result<IpNet, IpError> {
    let (addr_text, prefix_text) = match text.split_once('/') {
        Some((addr, prefix)) => (addr, Some(prefix)),
        None => (text, None),
    };
    let addr: IpAddr = addr_text
        .parse()
        .map_err(|_| IpError::InvalidAddress(addr_text.to_owned()))?;
    let max: u8 = if addr.is_ipv4() { 32 } else { 128 };
    let Some(prefix_text) = prefix_text else {
        return Ok(IpNet { addr, prefix: max });
    };
    let well_formed = !prefix_text.is_empty()
        && prefix_text.len() <= 3
        && prefix_text.bytes().all(|b| b.is_ascii_digit());
    if !well_formed {
        return Err(IpError::InvalidPrefix(prefix_text.to_owned()));
    }
    let prefix: u32 = prefix_text
        .parse()
        .map_err(|_| IpError::InvalidPrefix(prefix_text.to_owned()))?;
    match u8::try_from(prefix) {
        Ok(prefix) if prefix <= max => Ok(IpNet { addr, prefix }),
        _ => Err(IpError::PrefixTooLong { prefix, max }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_addresses_have_full_prefix() {
        assert_eq!(parse_ip("10.0.0.1").unwrap().prefix, 32);
        assert_eq!(parse_ip("::1").unwrap().prefix, 128);
        assert!(parse_ip("2001:db8::ff00:42:8329").unwrap().addr.is_ipv6());
    }

    #[test]
    fn cidr_ranges_keep_their_prefix() {
        assert_eq!(parse_ip("10.0.0.0/8").unwrap().prefix, 8);
        assert_eq!(parse_ip("fe80::/10").unwrap().prefix, 10);
        assert_eq!(parse_ip("0.0.0.0/0").unwrap().prefix, 0);
    }

    #[test]
    fn bad_addresses_are_rejected() {
        assert_eq!(
            parse_ip("300.1.1.1"),
            Err(IpError::InvalidAddress("300.1.1.1".into()))
        );
        assert!(parse_ip("").is_err());
        assert!(parse_ip("1.2.3").is_err());
        assert!(parse_ip("::g").is_err());
        assert!(parse_ip(" 10.0.0.1").is_err());
    }

    #[test]
    fn bad_prefixes_are_rejected() {
        assert_eq!(
            parse_ip("10.0.0.0/33"),
            Err(IpError::PrefixTooLong {
                prefix: 33,
                max: 32
            })
        );
        assert_eq!(
            parse_ip("::/129"),
            Err(IpError::PrefixTooLong {
                prefix: 129,
                max: 128
            })
        );
        assert_eq!(
            parse_ip("10.0.0.0/"),
            Err(IpError::InvalidPrefix(String::new()))
        );
        assert!(parse_ip("10.0.0.0/+8").is_err());
        assert!(parse_ip("10.0.0.0/8/8").is_err());
        assert!(parse_ip("10.0.0.0/99999999999").is_err());
    }
}
