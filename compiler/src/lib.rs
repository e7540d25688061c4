//! The authz compiler: it resolves names across the files of a policy set, builds the schema,
//! type-checks every policy, route and limit, and lowers checked policies to decision programs.
