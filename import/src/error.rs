//! Why an import failed: every problem is one [`ImportError`], with a stable code.

use miette::Diagnostic;
use thiserror::Error;

/// Something in the input that authz cannot take, or an input that cannot be read.
#[derive(Clone, Debug, Error, Diagnostic, PartialEq, Eq)]
pub enum ImportError {
    /// The Cedar schema does not parse.
    #[error("the Cedar schema does not parse: {message}")]
    #[diagnostic(code(authz::import::schema_syntax))]
    SchemaSyntax {
        /// Cedar's message.
        message: String,
    },
    /// A Cedar policy does not parse.
    #[error("Cedar policy {index} does not parse: {message}")]
    #[diagnostic(code(authz::import::policy_syntax))]
    PolicySyntax {
        /// The policy's position in the file, from 0.
        index: usize,
        /// Cedar's message.
        message: String,
    },
    /// Entities or a request that are not valid JSON of the Cedar shape.
    #[error("{what} is not valid Cedar JSON: {message}")]
    #[diagnostic(code(authz::import::json))]
    Json {
        /// What was read: "the entities file", "the request".
        what: &'static str,
        /// What is wrong.
        message: String,
    },
    /// A construct with no counterpart in authz.
    #[error("{place}: {construct} has no counterpart in authz")]
    #[diagnostic(code(authz::import::unsupported), help("{help}"))]
    Unsupported {
        /// Where: "policy `p3`", "entity type `User`", "entity `User::\"alice\"`".
        place: String,
        /// What: "a policy template slot `?principal`", "the `decimal` type".
        construct: String,
        /// What to do instead.
        help: String,
    },
    /// Two Cedar names that become the same authz name once namespaces are dropped.
    #[error(
        "`{first}` and `{second}` would both be named `{name}` in authz, which has no namespaces"
    )]
    #[diagnostic(
        code(authz::import::name_clash),
        help("rename one of them in the Cedar schema")
    )]
    NameClash {
        /// The authz name.
        name: String,
        /// The first Cedar name.
        first: String,
        /// The second Cedar name.
        second: String,
    },
}
