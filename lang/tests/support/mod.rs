//! Shared test support for the lang crate's integration tests: a generator of random syntax
//! trees ([`gen`]), span erasure for comparing trees ([`erase`]) and the insertion of random
//! whitespace and comments between the tokens of a text ([`noise`]). A test file uses it with
//! `mod support;`.

// Each test file uses only part of the support module.
#![allow(dead_code)]

pub mod erase;
pub mod gen;
pub mod noise;
