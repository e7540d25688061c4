//! The authz runtime: values, interned strings, the entity store, requests, compiled decision
//! programs and their evaluator. It knows nothing of the policy language's syntax.
