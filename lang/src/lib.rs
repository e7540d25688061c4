//! The authz policy language front end: it turns the text of `.authz` files into syntax trees and
//! syntax diagnostics, and syntax trees back into canonical text.
//!
//! This crate knows nothing of evaluation or types; the compiler resolves names and checks types
//! on the trees it produces. Parsing never fails: [`parse`] always returns a tree together with
//! every syntax error it found, so that one run reports all of them.

pub mod ast;
pub mod diagnostics;
pub mod format;
pub mod lexer;
pub mod parser;
pub mod span;

pub use diagnostics::SyntaxError;
pub use format::{field_name, format_file, format_source, quote};
pub use parser::{parse, Parse};
pub use span::{FileId, LineCol, SourceFile, Span};
