//! IP addresses and CIDR ranges: `ip(text)` and the methods `isIpv4`, `isIpv6`, `isLoopback`,
//! `isMulticast` and `isInRange`.
//!
//! An `Ip` value is an address with a prefix length, that is a range: `10.0.0.1` is the range of
//! one address (`/32`), `10.0.0.0/8` the range of 2^24. Host bits written after the prefix are kept
//! (`10.0.0.7/8` is allowed) but ignored by every method.
//!
//! `a.isInRange(b)` holds when the whole range `a` lies inside the range `b`: `a` and `b` are of
//! the same family, `a`'s prefix is at least as long as `b`'s, and the first `b.prefix` bits agree.
//! An IPv4 value is never in an IPv6 range, nor the reverse. `isLoopback` and `isMulticast` mean
//! "lies wholly in the loopback (multicast) range": `127.0.0.0/8` or `::1`, and `224.0.0.0/4` or
//! `ff00::/8`. So `ip("127.0.0.0/8").isLoopback()` is true and `ip("0.0.0.0/0").isLoopback()` is
//! false.
//!
//! IPv4-mapped IPv6 addresses (`::ffff:127.0.0.1`) are IPv6 values like any other, since the
//! language has no implicit conversions: they are not `isIpv4`, not loopback, not multicast and not
//! in IPv4 ranges; they are in `ip("::ffff:0:0/96")`. Whoever fills a context with peer addresses
//! should convert mapped addresses to IPv4 first.

use std::net::IpAddr;

use authz_runtime::eval::{EvalError, Evaluator};
use authz_runtime::ext::parse_ip;
use authz_runtime::value::{IpNet, Value};

use super::arguments;

/// `ip(text)`: an address or a CIDR range.
pub(super) fn ip(evaluator: &mut Evaluator<'_>, args: &[Value]) -> Result<Value, EvalError> {
    let [text] = arguments(args)?;
    let net = parse_ip(evaluator.text(text)?)
        .map_err(|_| EvalError::Extension("not an IP address or CIDR range"))?;
    Ok(evaluator.make_ip(net))
}

/// `a.isIpv4()`
pub(super) fn is_ipv4(evaluator: &mut Evaluator<'_>, args: &[Value]) -> Result<Value, EvalError> {
    let [receiver] = arguments(args)?;
    Ok(Value::Bool(evaluator.ip(receiver)?.addr.is_ipv4()))
}

/// `a.isIpv6()`
pub(super) fn is_ipv6(evaluator: &mut Evaluator<'_>, args: &[Value]) -> Result<Value, EvalError> {
    let [receiver] = arguments(args)?;
    Ok(Value::Bool(evaluator.ip(receiver)?.addr.is_ipv6()))
}

/// `a.isLoopback()`: `a` lies in `127.0.0.0/8` or is `::1`.
pub(super) fn is_loopback(
    evaluator: &mut Evaluator<'_>,
    args: &[Value],
) -> Result<Value, EvalError> {
    let [receiver] = arguments(args)?;
    let net = evaluator.ip(receiver)?;
    Ok(Value::Bool(
        in_range(net, LOOPBACK_V4) || in_range(net, LOOPBACK_V6),
    ))
}

/// `a.isMulticast()`: `a` lies in `224.0.0.0/4` or `ff00::/8`.
pub(super) fn is_multicast(
    evaluator: &mut Evaluator<'_>,
    args: &[Value],
) -> Result<Value, EvalError> {
    let [receiver] = arguments(args)?;
    let net = evaluator.ip(receiver)?;
    Ok(Value::Bool(
        in_range(net, MULTICAST_V4) || in_range(net, MULTICAST_V6),
    ))
}

/// `a.isInRange(b)`: the range `a` lies wholly inside the range `b`.
pub(super) fn is_in_range(
    evaluator: &mut Evaluator<'_>,
    args: &[Value],
) -> Result<Value, EvalError> {
    let [receiver, range] = arguments(args)?;
    let net = evaluator.ip(receiver)?;
    let range = evaluator.ip(range)?;
    Ok(Value::Bool(in_range(net, range)))
}

/// `127.0.0.0/8`
const LOOPBACK_V4: IpNet = IpNet {
    addr: IpAddr::V4(std::net::Ipv4Addr::new(127, 0, 0, 0)),
    prefix: 8,
};

/// `::1/128`
const LOOPBACK_V6: IpNet = IpNet {
    addr: IpAddr::V6(std::net::Ipv6Addr::LOCALHOST),
    prefix: 128,
};

/// `224.0.0.0/4`
const MULTICAST_V4: IpNet = IpNet {
    addr: IpAddr::V4(std::net::Ipv4Addr::new(224, 0, 0, 0)),
    prefix: 4,
};

/// `ff00::/8`
const MULTICAST_V6: IpNet = IpNet {
    addr: IpAddr::V6(std::net::Ipv6Addr::new(0xff00, 0, 0, 0, 0, 0, 0, 0)),
    prefix: 8,
};

/// Whether the range `inner` lies wholly inside the range `outer`; ranges of different families
/// are disjoint.
fn in_range(inner: IpNet, outer: IpNet) -> bool {
    if inner.prefix < outer.prefix {
        return false;
    }
    match (inner.addr, outer.addr) {
        (IpAddr::V4(inner_addr), IpAddr::V4(outer_addr)) => {
            let mask = u32::MAX
                .checked_shl(32u32.saturating_sub(u32::from(outer.prefix)))
                .unwrap_or(0);
            u32::from(inner_addr) & mask == u32::from(outer_addr) & mask
        }
        (IpAddr::V6(inner_addr), IpAddr::V6(outer_addr)) => {
            let mask = u128::MAX
                .checked_shl(128u32.saturating_sub(u32::from(outer.prefix)))
                .unwrap_or(0);
            u128::from(inner_addr) & mask == u128::from(outer_addr) & mask
        }
        _ => false,
    }
}
