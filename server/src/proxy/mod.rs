//! `authz proxy`: the access proxy. Every request goes through normalize → route → count the
//! attempt → identify → decide → limit → rewrite headers → forward → audit (see
//! `docs/proxy.md`).
//!
//! `server.rs` loads everything and accepts connections, which `workers.rs` serves on
//! single-threaded workers; `pipeline.rs` holds the steps, in order, each in terms of one module:
//! `normalize`, `identity`, the runtime's route table, `context_plan` (the context each action
//! takes, derived at install by `schema_check`) and the decision, `limits` (in memory, or
//! `shared_limits` in Redis through `resp`), `headers`,
//! `assertion` (the optional signed identity assertion), `upstream_headers` (headers set from
//! verified identity), `forward`; `request_id.rs` gives every request an id; `framing.rs` watches each client connection's raw request
//! heads for framing the pipeline cannot see (`Content-Length` with `Transfer-Encoding`);
//! `tls.rs` is the TLS listener, `admin.rs` the admin listener (health, metrics, policy API),
//! whose verified client certificates `identity::mtls` maps to principals; `demo.rs` is the
//! built-in upstream of the quickstart.

pub mod admin;
pub mod assertion;
pub mod config;
pub mod context_plan;
pub mod demo;
pub mod forward;
pub mod framing;
pub mod headers;
pub mod identity;
pub mod limits;
pub mod normalize;
pub mod pipeline;
pub mod request_id;
pub mod resp;
pub mod schema_check;
pub mod server;
pub mod shared_limits;
pub mod tls;
pub mod upstream_headers;
pub mod workers;

#[cfg(test)]
mod boundary_tests;
