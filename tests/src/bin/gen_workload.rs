//! `gen-workload` writes the shared benchmark workload of issue 3: a multi-tenant document service
//! with N policies, two per tenant, plus its entities and a batch of seeded random requests.
//!
//! # The model, and why it is shaped this way
//!
//! Tenants and roles are entities: `Tenant("t7")`, `Role("t7-editor")` and `Role("t7-viewer")`.
//! A user is a member (an entity child) of exactly one role of one tenant and also carries its
//! tenant as the attribute `tenant`; a document carries `tenant`, `owner` and `classification`
//! (`"public"`, `"internal"` or `"secret"`). Each tenant gets two policies:
//!
//! ```text
//! @id("t7-editors")
//! permit principal in Role("t7-editor"), action: [read, write], resource: Document
//! when resource.tenant == Tenant("t7")
//! unless resource.classification == "secret" && principal.clearance < 3;
//!
//! @id("t7-viewers")
//! permit principal in Role("t7-viewer"), action: read, resource: Document
//! when resource.tenant == Tenant("t7") && resource.classification != "secret";
//! ```
//!
//! Both tenant tests are exactly the two forms the decision engine indexes: a scope
//! `principal in Role(...)` with a constant entity, and a constant equality
//! `resource.tenant == Tenant(...)`. An indexed engine therefore looks at two or three policies
//! per request, whatever N is. Two global policies complete the set: owners may do anything to
//! their own documents (`owners`), and suspended users may do nothing (`suspended`, a forbid).
//! `suspended` is a required `Bool` rather than an optional attribute, so that peers without
//! optional attributes express the same workload.
//!
//! # Output
//!
//! In `--out DIR`: `schema.authz`; `global.authz`; `tenants-0000.authz`, `tenants-0001.authz`, ...
//! with at most 1,000 policies each; `entities.json` (the entities JSON format of docs/language.md);
//! `requests.json` (a JSON array of decision requests, one per line); `expected.json` (a JSON array
//! of `"allow"` or `"deny"`, one per request, computed by this generator's own direct reading of the
//! rules, as an oracle for agreement checks); and `manifest.json` (the parameters). Stale
//! `tenants-*.authz` files from an earlier, larger run in the same directory are removed.
//!
//! # Distributions
//!
//! User `u{i}` belongs to tenant `i mod T` and document `d{j}` to tenant `j mod T`, so every tenant
//! has users and documents when there are at least as many as tenants. Each user is an editor with
//! probability 0.4 and otherwise a viewer, has a clearance drawn uniformly from 0 to 5, and is
//! suspended with probability 0.01. A document's owner is a random user of its tenant and its
//! classification is uniform over the three levels. A request's principal is a uniform random user;
//! its action is read (50%), write (30%) or delete (20%); its resource is one of the principal's own
//! documents (10%, when it owns any), another document of the principal's tenant (60%), or any
//! document at all (30%), which makes about 70% of the requests same-tenant.
//!
//! Everything is drawn from one splitmix64 stream seeded by `--seed`, in a fixed order, so the
//! files are byte-for-byte identical for the same arguments.

use std::fmt;
use std::fs;
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

const USAGE: &str = "\
gen-workload: write the issue-3 benchmark workload (policies, entities, requests)

USAGE:
    gen-workload --policies N --out DIR [OPTIONS]

OPTIONS:
    --policies N     number of tenant policies, two per tenant (N must be even and at least 2)
    --out DIR        directory to write into (created when missing)
    --seed S         seed of the random generator [default: 42]
    --users U        number of users [default: max(100, 4 * N/2)]
    --documents D    number of documents [default: max(200, 8 * N/2)]
    --requests R     number of requests [default: 10000]
    -h, --help       print this help

Writes schema.authz, global.authz, tenants-NNNN.authz (at most 1,000 policies each),
entities.json, requests.json, expected.json and manifest.json into DIR.
";

/// The most policies written into one `tenants-NNNN.authz` file.
const POLICIES_PER_FILE: usize = 1000;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match run(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(Error::Usage(message)) => {
            eprintln!("gen-workload: error: {message}");
            eprintln!("try `gen-workload --help`");
            ExitCode::FAILURE
        }
        Err(err) => {
            eprintln!("gen-workload: error: {err}");
            ExitCode::FAILURE
        }
    }
}

fn run(args: &[String]) -> Result<(), Error> {
    let config = match parse_args(args)? {
        Command::Help => {
            print!("{USAGE}");
            return Ok(());
        }
        Command::Generate(config) => config,
    };
    let workload = Workload::generate(&config);
    workload.write(&config.out)?;
    println!(
        "wrote {} tenant policies ({} tenants, {} policy files) and 2 global policies, {} users, {} documents, {} requests to {}",
        config.policies,
        config.tenants(),
        config.tenants().div_ceil(POLICIES_PER_FILE / 2),
        config.users,
        config.documents,
        config.requests,
        config.out.display(),
    );
    Ok(())
}

/// What went wrong, reported on stderr before exiting with status 1.
#[derive(Debug)]
enum Error {
    /// The command line was wrong.
    Usage(String),
    /// A file or directory could not be written.
    Io { path: PathBuf, source: io::Error },
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Usage(message) => f.write_str(message),
            Error::Io { path, source } => write!(f, "cannot write `{}`: {source}", path.display()),
        }
    }
}

fn io_error(path: &Path) -> impl FnOnce(io::Error) -> Error + '_ {
    move |source| Error::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// What the command line asks for.
enum Command {
    Help,
    Generate(Config),
}

/// The parameters of one workload.
struct Config {
    policies: usize,
    out: PathBuf,
    seed: u64,
    users: usize,
    documents: usize,
    requests: usize,
}

impl Config {
    fn tenants(&self) -> usize {
        self.policies / 2
    }
}

fn parse_args(args: &[String]) -> Result<Command, Error> {
    let mut policies = None;
    let mut out = None;
    let mut seed = 42;
    let mut users = None;
    let mut documents = None;
    let mut requests = 10_000;

    let mut iter = args.iter();
    while let Some(arg) = iter.next() {
        if arg == "-h" || arg == "--help" {
            return Ok(Command::Help);
        }
        // Both `--flag value` and `--flag=value` are accepted.
        let (flag, inline_value) = match arg.split_once('=') {
            Some((flag, value)) if arg.starts_with("--") => (flag, Some(value.to_string())),
            _ => (arg.as_str(), None),
        };
        let mut value = || -> Result<String, Error> {
            match inline_value.clone().or_else(|| iter.next().cloned()) {
                Some(value) => Ok(value),
                None => Err(Error::Usage(format!("`{flag}` needs a value"))),
            }
        };
        match flag {
            "--policies" => policies = Some(parse_number(flag, &value()?)?),
            "--out" => out = Some(PathBuf::from(value()?)),
            "--seed" => seed = parse_number(flag, &value()?)?,
            "--users" => users = Some(parse_number(flag, &value()?)?),
            "--documents" => documents = Some(parse_number(flag, &value()?)?),
            "--requests" => requests = parse_number(flag, &value()?)?,
            other => return Err(Error::Usage(format!("unknown argument `{other}`"))),
        }
    }

    let Some(policies) = policies else {
        return Err(Error::Usage("`--policies N` is required".to_string()));
    };
    let Some(out) = out else {
        return Err(Error::Usage("`--out DIR` is required".to_string()));
    };
    let policies = usize::try_from(policies)
        .map_err(|_| Error::Usage(format!("`--policies {policies}` is too large")))?;
    if policies < 2 || policies % 2 != 0 {
        return Err(Error::Usage(format!(
            "`--policies` must be even and at least 2 (two policies per tenant), not {policies}"
        )));
    }
    let tenants = policies / 2;
    let users = to_count("--users", users, 100.max(tenants.saturating_mul(4)))?;
    let documents = to_count("--documents", documents, 200.max(tenants.saturating_mul(8)))?;
    let requests = to_count("--requests", Some(requests), 0)?;
    if users == 0 || documents == 0 {
        return Err(Error::Usage(
            "`--users` and `--documents` must be at least 1".to_string(),
        ));
    }
    Ok(Command::Generate(Config {
        policies,
        out,
        seed,
        users,
        documents,
        requests,
    }))
}

fn parse_number(flag: &str, text: &str) -> Result<u64, Error> {
    text.parse().map_err(|_| {
        Error::Usage(format!(
            "`{flag}` takes a non-negative integer, not `{text}`"
        ))
    })
}

fn to_count(flag: &str, value: Option<u64>, default: usize) -> Result<usize, Error> {
    match value {
        None => Ok(default),
        Some(value) => usize::try_from(value)
            .map_err(|_| Error::Usage(format!("`{flag} {value}` is too large"))),
    }
}

/// The splitmix64 generator: tiny, fast, and good enough to shuffle a benchmark.
struct SplitMix64 {
    state: u64,
}

impl SplitMix64 {
    fn new(seed: u64) -> SplitMix64 {
        SplitMix64 { state: seed }
    }

    fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A number in `0..bound` (0 when `bound` is 0), by Lemire's multiply-shift; its bias is
    /// below 2^-40 for the bounds used here, which is far below what a benchmark can notice.
    fn below(&mut self, bound: usize) -> usize {
        let wide = u128::from(self.next_u64()) * bound as u128;
        // The high half of a 64x64 product is below `bound`, so it fits a usize.
        usize::try_from(wide >> 64).unwrap_or(0)
    }

    /// True with probability `percent` / 100.
    fn percent(&mut self, percent: usize) -> bool {
        self.below(100) < percent
    }

    fn pick<'a, T>(&mut self, items: &'a [T]) -> Option<&'a T> {
        items.get(self.below(items.len()))
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum RoleKind {
    Editor,
    Viewer,
}

impl RoleKind {
    fn suffix(self) -> &'static str {
        match self {
            RoleKind::Editor => "editor",
            RoleKind::Viewer => "viewer",
        }
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Classification {
    Public,
    Internal,
    Secret,
}

impl Classification {
    const ALL: [Classification; 3] = [
        Classification::Public,
        Classification::Internal,
        Classification::Secret,
    ];

    fn name(self) -> &'static str {
        match self {
            Classification::Public => "public",
            Classification::Internal => "internal",
            Classification::Secret => "secret",
        }
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Action {
    Read,
    Write,
    Delete,
}

impl Action {
    fn name(self) -> &'static str {
        match self {
            Action::Read => "read",
            Action::Write => "write",
            Action::Delete => "delete",
        }
    }
}

struct User {
    tenant: usize,
    role: RoleKind,
    clearance: i64,
    suspended: bool,
}

struct Document {
    tenant: usize,
    owner: usize,
    classification: Classification,
}

struct Request {
    principal: usize,
    action: Action,
    document: usize,
}

/// A generated workload, held in memory before it is written.
struct Workload {
    tenants: usize,
    users: Vec<User>,
    documents: Vec<Document>,
    requests: Vec<Request>,
    seed: u64,
}

impl Workload {
    fn generate(config: &Config) -> Workload {
        let mut rng = SplitMix64::new(config.seed);
        let tenants = config.tenants();

        let users: Vec<User> = (0..config.users)
            .map(|index| User {
                tenant: index % tenants,
                role: if rng.percent(40) {
                    RoleKind::Editor
                } else {
                    RoleKind::Viewer
                },
                clearance: i64::try_from(rng.below(6)).unwrap_or(0),
                suspended: rng.percent(1),
            })
            .collect();
        let mut users_by_tenant = vec![Vec::new(); tenants];
        for (index, user) in users.iter().enumerate() {
            if let Some(members) = users_by_tenant.get_mut(user.tenant) {
                members.push(index);
            }
        }

        let documents: Vec<Document> = (0..config.documents)
            .map(|index| {
                let tenant = index % tenants;
                let members = users_by_tenant
                    .get(tenant)
                    .map(Vec::as_slice)
                    .unwrap_or(&[]);
                // A tenant without users (fewer users than tenants) gets an owner from anywhere.
                let owner = match rng.pick(members) {
                    Some(&owner) => owner,
                    None => rng.below(users.len()),
                };
                let classification = rng
                    .pick(&Classification::ALL)
                    .copied()
                    .unwrap_or(Classification::Public);
                Document {
                    tenant,
                    owner,
                    classification,
                }
            })
            .collect();
        let mut documents_by_tenant = vec![Vec::new(); tenants];
        let mut documents_by_owner = vec![Vec::new(); users.len()];
        for (index, document) in documents.iter().enumerate() {
            if let Some(list) = documents_by_tenant.get_mut(document.tenant) {
                list.push(index);
            }
            if let Some(list) = documents_by_owner.get_mut(document.owner) {
                list.push(index);
            }
        }

        let requests = (0..config.requests)
            .map(|_| {
                let principal = rng.below(users.len());
                let action = match rng.below(10) {
                    0..=4 => Action::Read,
                    5..=7 => Action::Write,
                    _ => Action::Delete,
                };
                let tenant = users.get(principal).map_or(0, |user| user.tenant);
                let own = documents_by_owner
                    .get(principal)
                    .map(Vec::as_slice)
                    .unwrap_or(&[]);
                let same_tenant = documents_by_tenant
                    .get(tenant)
                    .map(Vec::as_slice)
                    .unwrap_or(&[]);
                let roll = rng.below(100);
                let chosen = if roll < 10 {
                    rng.pick(own).or_else(|| rng.pick(same_tenant)).copied()
                } else if roll < 70 {
                    rng.pick(same_tenant).copied()
                } else {
                    None
                };
                let document = match chosen {
                    Some(document) => document,
                    None => rng.below(documents.len()),
                };
                Request {
                    principal,
                    action,
                    document,
                }
            })
            .collect();

        Workload {
            tenants,
            users,
            documents,
            requests,
            seed: config.seed,
        }
    }

    /// The decision the rules call for, read directly off the data: an oracle for agreement checks.
    fn expected(&self, request: &Request) -> bool {
        let (Some(user), Some(document)) = (
            self.users.get(request.principal),
            self.documents.get(request.document),
        ) else {
            return false;
        };
        if user.suspended {
            return false;
        }
        let owner = document.owner == request.principal;
        let same_tenant = user.tenant == document.tenant;
        let secret = document.classification == Classification::Secret;
        let editor = same_tenant
            && user.role == RoleKind::Editor
            && matches!(request.action, Action::Read | Action::Write)
            && !(secret && user.clearance < 3);
        let viewer = same_tenant
            && user.role == RoleKind::Viewer
            && request.action == Action::Read
            && !secret;
        owner || editor || viewer
    }

    fn write(&self, out: &Path) -> Result<(), Error> {
        fs::create_dir_all(out).map_err(io_error(out))?;
        remove_stale_tenant_files(out, self.tenants)?;
        write_file(&out.join("schema.authz"), |w| {
            w.write_all(SCHEMA.as_bytes())
        })?;
        write_file(&out.join("global.authz"), |w| {
            w.write_all(GLOBAL_POLICIES.as_bytes())
        })?;
        let tenants_per_file = POLICIES_PER_FILE / 2;
        for file_index in 0..self.tenants.div_ceil(tenants_per_file) {
            let first = file_index * tenants_per_file;
            let last = (first + tenants_per_file).min(self.tenants);
            let path = out.join(tenant_file_name(file_index));
            write_file(&path, |w| write_tenant_policies(w, first..last))?;
        }
        write_file(&out.join("entities.json"), |w| self.write_entities(w))?;
        write_file(&out.join("requests.json"), |w| self.write_requests(w))?;
        write_file(&out.join("expected.json"), |w| self.write_expected(w))?;
        write_file(&out.join("manifest.json"), |w| self.write_manifest(w))?;
        Ok(())
    }

    fn write_entities(&self, w: &mut dyn Write) -> io::Result<()> {
        let mut entries = EntryWriter::new(w)?;
        for tenant in 0..self.tenants {
            entries.entry(|w| {
                write!(
                    w,
                    r#"{{"type":"Tenant","id":"t{tenant}","attrs":{{}},"parents":[]}}"#
                )
            })?;
            for role in [RoleKind::Editor, RoleKind::Viewer] {
                let suffix = role.suffix();
                entries.entry(|w| {
                    write!(
                        w,
                        r#"{{"type":"Role","id":"t{tenant}-{suffix}","attrs":{{}},"parents":[{{"type":"Tenant","id":"t{tenant}"}}]}}"#
                    )
                })?;
            }
        }
        for (index, user) in self.users.iter().enumerate() {
            entries.entry(|w| {
                write!(
                    w,
                    r#"{{"type":"User","id":"u{index}","attrs":{{"tenant":{{"type":"Tenant","id":"t{tenant}"}},"clearance":{clearance},"suspended":{suspended}}},"parents":[{{"type":"Role","id":"t{tenant}-{role}"}}]}}"#,
                    tenant = user.tenant,
                    clearance = user.clearance,
                    suspended = user.suspended,
                    role = user.role.suffix(),
                )
            })?;
        }
        for (index, document) in self.documents.iter().enumerate() {
            entries.entry(|w| {
                write!(
                    w,
                    r#"{{"type":"Document","id":"d{index}","attrs":{{"tenant":{{"type":"Tenant","id":"t{tenant}"}},"owner":{{"type":"User","id":"u{owner}"}},"classification":"{classification}"}},"parents":[]}}"#,
                    tenant = document.tenant,
                    owner = document.owner,
                    classification = document.classification.name(),
                )
            })?;
        }
        entries.finish()
    }

    fn write_requests(&self, w: &mut dyn Write) -> io::Result<()> {
        let mut entries = EntryWriter::new(w)?;
        for request in &self.requests {
            entries.entry(|w| {
                write!(
                    w,
                    r#"{{"principal":{{"type":"User","id":"u{principal}"}},"action":"{action}","resource":{{"type":"Document","id":"d{document}"}},"context":{{}}}}"#,
                    principal = request.principal,
                    action = request.action.name(),
                    document = request.document,
                )
            })?;
        }
        entries.finish()
    }

    fn write_expected(&self, w: &mut dyn Write) -> io::Result<()> {
        let mut entries = EntryWriter::new(w)?;
        for request in &self.requests {
            let decision = if self.expected(request) {
                "allow"
            } else {
                "deny"
            };
            entries.entry(|w| write!(w, "\"{decision}\""))?;
        }
        entries.finish()
    }

    fn write_manifest(&self, w: &mut dyn Write) -> io::Result<()> {
        let allowed = self
            .requests
            .iter()
            .filter(|request| self.expected(request))
            .count();
        let same_tenant = self
            .requests
            .iter()
            .filter(|request| {
                let user = self.users.get(request.principal).map(|user| user.tenant);
                let document = self.documents.get(request.document).map(|doc| doc.tenant);
                user.is_some() && user == document
            })
            .count();
        writeln!(
            w,
            r#"{{"policies":{policies},"tenants":{tenants},"users":{users},"documents":{documents},"requests":{requests},"seed":{seed},"expected_allow":{allowed},"same_tenant_requests":{same_tenant}}}"#,
            policies = self.tenants * 2 + 2,
            tenants = self.tenants,
            users = self.users.len(),
            documents = self.documents.len(),
            requests = self.requests.len(),
            seed = self.seed,
        )
    }
}

/// Writes a JSON array one element per line, with the commas in the right places.
struct EntryWriter<'a> {
    w: &'a mut dyn Write,
    first: bool,
}

impl<'a> EntryWriter<'a> {
    fn new(w: &'a mut dyn Write) -> io::Result<EntryWriter<'a>> {
        w.write_all(b"[\n")?;
        Ok(EntryWriter { w, first: true })
    }

    fn entry(&mut self, body: impl FnOnce(&mut dyn Write) -> io::Result<()>) -> io::Result<()> {
        if !self.first {
            self.w.write_all(b",\n")?;
        }
        self.first = false;
        body(self.w)
    }

    fn finish(self) -> io::Result<()> {
        self.w.write_all(b"\n]\n")
    }
}

const SCHEMA: &str = "\
// The schema of the generated multi-tenant workload (see gen-workload).
entity Tenant;
entity Role in Tenant;
entity User in Role { tenant: Tenant, clearance: Long, suspended: Bool }
entity Document { tenant: Tenant, owner: User, classification: String }

action read, write, delete: User -> Document;
";

const GLOBAL_POLICIES: &str = "\
// Rules that hold in every tenant.

@id(\"owners\")
permit principal: User, action: *, resource: Document
when resource.owner == principal;

@id(\"suspended\")
@reason(\"suspended users may do nothing\")
forbid principal: User, action: *, resource: *
when principal.suspended;
";

fn tenant_file_name(file_index: usize) -> String {
    format!("tenants-{file_index:04}.authz")
}

fn write_tenant_policies(w: &mut dyn Write, tenants: std::ops::Range<usize>) -> io::Result<()> {
    writeln!(
        w,
        "// Per-tenant policies for tenants t{} to t{}.",
        tenants.start,
        tenants.end.saturating_sub(1)
    )?;
    for tenant in tenants {
        write!(
            w,
            "
@id(\"t{tenant}-editors\")
permit principal in Role(\"t{tenant}-editor\"), action: [read, write], resource: Document
when resource.tenant == Tenant(\"t{tenant}\")
unless resource.classification == \"secret\" && principal.clearance < 3;

@id(\"t{tenant}-viewers\")
permit principal in Role(\"t{tenant}-viewer\"), action: read, resource: Document
when resource.tenant == Tenant(\"t{tenant}\") && resource.classification != \"secret\";
"
        )?;
    }
    Ok(())
}

/// Removes `tenants-NNNN.authz` files beyond the ones this run writes, so that a smaller workload
/// written over a larger one does not keep the larger one's extra tenants.
fn remove_stale_tenant_files(out: &Path, tenants: usize) -> Result<(), Error> {
    let files_written = tenants.div_ceil(POLICIES_PER_FILE / 2);
    let entries = fs::read_dir(out).map_err(io_error(out))?;
    for entry in entries {
        let entry = entry.map_err(io_error(out))?;
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        let Some(number) = name
            .strip_prefix("tenants-")
            .and_then(|rest| rest.strip_suffix(".authz"))
        else {
            continue;
        };
        let stale = match number.parse::<usize>() {
            Ok(index) => index >= files_written,
            Err(_) => false,
        };
        if stale {
            let path = entry.path();
            fs::remove_file(&path).map_err(io_error(&path))?;
        }
    }
    Ok(())
}

fn write_file(
    path: &Path,
    body: impl FnOnce(&mut dyn Write) -> io::Result<()>,
) -> Result<(), Error> {
    let file = fs::File::create(path).map_err(io_error(path))?;
    let mut writer = BufWriter::new(file);
    body(&mut writer).map_err(io_error(path))?;
    writer.flush().map_err(io_error(path))
}
