//! Shared support for the end-to-end tests, conformance harnesses and benchmarks of authz.
