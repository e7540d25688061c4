//! The `authz` command.

fn main() {}
