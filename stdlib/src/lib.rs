//! The authz standard library: the built-in functions and extension types (IP addresses and CIDR
//! ranges, globs, strings, sets, timestamps and durations), each with its type signature and its
//! implementation.
