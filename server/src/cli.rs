//! The command-line interface: every subcommand, flag and default, declared with clap.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

/// authz: a policy language for who may call what, its compiler, decision server and access proxy.
#[derive(Debug, Parser)]
#[command(
    name = "authz",
    version,
    about = "authz: a policy language for who may call what, its compiler, decision server and access proxy",
    propagate_version = true
)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Type-check policy sets; exits 0 when clean, 1 on errors.
    ///
    /// Each directory argument is one policy set: every `.authz` file beneath it, resolved
    /// together. File arguments together form one more set.
    Check(CheckArgs),
    /// Format `.authz` files canonically, in place (or print them, or check them).
    Fmt(FmtArgs),
    /// Decide one request; prints the decision as JSON and exits 0 on allow, 2 on deny, 1 on
    /// errors.
    Eval(EvalArgs),
    /// Run the policy tests (`*.test.toml`) beneath a policy directory; exits 1 on any failure.
    Test(TestArgs),
    /// Answer decisions over HTTP (`POST /v1/decide`), with hot reload, metrics and a decision log.
    Serve(ServeArgs),
    /// Run the access proxy: authenticate, authorize, rate limit, audit and forward every call.
    Proxy(ProxyArgs),
    /// Mint a signed JWT from a development key (for trying the proxy; never for production).
    Token(TokenArgs),
    /// Re-decide every request of an audit log against a policy set and list each decision that
    /// would change: the impact of a policy change on real traffic, before it ships.
    Replay(ReplayArgs),
    /// Build, sign and verify policy bundles: one signed file of a policy set and its entities,
    /// which `authz serve` and `authz proxy` pull with `[bundle]`.
    Bundle(BundleArgs),
    /// Translate a policy set from another language into authz (today: Cedar).
    #[cfg(feature = "cedar-import")]
    Import(ImportArgs),
}

/// `authz import`.
#[cfg(feature = "cedar-import")]
#[derive(Debug, Args)]
pub struct ImportArgs {
    /// The language to import from.
    #[command(subcommand)]
    pub from: ImportSource,
}

/// The languages `authz import` reads.
#[cfg(feature = "cedar-import")]
#[derive(Debug, Subcommand)]
pub enum ImportSource {
    /// Import a Cedar schema (human-readable `.cedarschema`), policies and entities: writes
    /// `schema.authz`, `policies.authz` and `entities.json` into `--out`, then checks them.
    ///
    /// Each policy keeps its `@id` (or gets Cedar's own id, `policy0`, `policy1`, ...) and the
    /// comments before it; namespaces are dropped. What has no counterpart in authz (templates,
    /// `decimal`, entity tags, ...) is refused with what and where, and nothing is written.
    Cedar {
        /// The Cedar schema, in the human-readable format.
        #[arg(long, value_name = "FILE")]
        schema: PathBuf,
        /// The Cedar policies.
        #[arg(long, value_name = "FILE")]
        policies: PathBuf,
        /// The Cedar entities JSON.
        #[arg(long, value_name = "FILE")]
        entities: Option<PathBuf>,
        /// The directory to write into (created when missing).
        #[arg(long, value_name = "DIR")]
        out: PathBuf,
        /// Overwrite files that already exist in `--out`.
        #[arg(long)]
        force: bool,
        /// Diagnostic output.
        #[command(flatten)]
        output: OutputArgs,
    },
}

/// `authz bundle`.
#[derive(Debug, Args)]
pub struct BundleArgs {
    /// What to do.
    #[command(subcommand)]
    pub command: BundleCommand,
}

/// The bundle subcommands.
#[derive(Debug, Subcommand)]
pub enum BundleCommand {
    /// Bundle a policy directory and an entities file into one (unsigned) file; the set must
    /// compile and its entities load.
    Build {
        /// The policy directory.
        dir: PathBuf,
        /// The entities JSON file.
        #[arg(long, short = 'e', value_name = "FILE")]
        entities: Option<PathBuf>,
        /// Where to write the bundle.
        #[arg(long, short = 'o', value_name = "FILE")]
        output: PathBuf,
        /// The revision it names [default: derived from the files' SHA-256].
        #[arg(long)]
        revision: Option<String>,
    },
    /// Sign a bundle with an Ed25519 private key (PKCS#8, PEM or DER), in place or to `-o`.
    Sign {
        /// The bundle.
        bundle: PathBuf,
        /// The private key file.
        #[arg(long, value_name = "FILE")]
        key: PathBuf,
        /// Where to write the signed bundle [default: over the input].
        #[arg(long, short = 'o', value_name = "FILE")]
        output: Option<PathBuf>,
    },
    /// Make an Ed25519 key pair: writes the private key (PEM, mode 0600) and prints the public
    /// key, the value of `[bundle] public_key`.
    Keygen {
        /// Where to write the private key.
        #[arg(long, value_name = "FILE")]
        out: PathBuf,
    },
    /// Check a bundle as servers do before installing it: signature, hashes, names, and that it
    /// compiles.
    Verify {
        /// The bundle.
        bundle: PathBuf,
        /// The Ed25519 public key, base64.
        #[arg(long, value_name = "BASE64")]
        public_key: String,
    },
}

/// How diagnostics are printed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// Labelled source snippets for people, on stderr.
    #[default]
    Human,
    /// One JSON object per diagnostic and line, on stdout.
    Json,
}

/// When to color human output.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, ValueEnum)]
pub enum Color {
    /// When stderr is a terminal and `NO_COLOR` is not set.
    #[default]
    Auto,
    /// Always.
    Always,
    /// Never.
    Never,
}

/// Options shared by commands that print diagnostics.
#[derive(Debug, Args)]
pub struct OutputArgs {
    /// Output format of diagnostics.
    #[arg(long, value_enum, default_value_t = Format::Human)]
    pub format: Format,
    /// Color of human output.
    #[arg(long, value_enum, default_value_t = Color::Auto)]
    pub color: Color,
}

/// `authz check`.
#[derive(Debug, Args)]
pub struct CheckArgs {
    /// Policy directories or `.authz` files [default: the current directory].
    pub paths: Vec<PathBuf>,
    /// Exit 1 when there are warnings, too.
    #[arg(long)]
    pub deny_warnings: bool,
    /// Diagnostic output.
    #[command(flatten)]
    pub output: OutputArgs,
}

/// `authz fmt`.
#[derive(Debug, Args)]
pub struct FmtArgs {
    /// Files or directories to format; `-` reads standard input and prints to standard output
    /// [default: the current directory].
    pub paths: Vec<PathBuf>,
    /// Change nothing; exit 1 and name the files whose formatting differs.
    #[arg(long, conflicts_with = "stdout")]
    pub check: bool,
    /// Print the formatted text instead of rewriting the files.
    #[arg(long)]
    pub stdout: bool,
    /// Diagnostic output for files that do not parse.
    #[command(flatten)]
    pub output: OutputArgs,
}

/// `authz eval`.
#[derive(Debug, Args)]
pub struct EvalArgs {
    /// The policy set: a directory of `.authz` files, or one file.
    #[arg(long, short = 'p', value_name = "PATH")]
    pub policies: PathBuf,
    /// The entities JSON file [default: no entities].
    #[arg(long, short = 'e', value_name = "FILE")]
    pub entities: Option<PathBuf>,
    /// The request as JSON, or `@FILE` to read it from a file (`@-`: standard input).
    #[arg(long, short = 'r', value_name = "JSON|@FILE")]
    pub request: String,
    /// Decide as of this RFC 3339 instant: it fills the context field `now` (the server's clock
    /// under `authz serve`, the source `now` under `authz proxy`) when the action has one.
    #[arg(long, value_name = "TIME")]
    pub now: Option<String>,
    /// Print the determining policies, errors, reasons and obligations, not only the decision.
    #[arg(long)]
    pub explain: bool,
    /// Diagnostic output.
    #[command(flatten)]
    pub output: OutputArgs,
}

/// `authz replay`.
#[derive(Debug, Args)]
pub struct ReplayArgs {
    /// The audit log of `authz proxy` (or decision log of `authz serve`): one JSON line per
    /// verdict; `-` reads standard input.
    #[arg(value_name = "LOG")]
    pub log: PathBuf,
    /// The policy set to decide with: a directory of `.authz` files, or one file.
    #[arg(long, short = 'p', value_name = "PATH")]
    pub policies: PathBuf,
    /// The entities JSON file [default: no entities].
    #[arg(long, short = 'e', value_name = "FILE")]
    pub entities: Option<PathBuf>,
    /// Print each changed decision as a JSON line instead of text.
    #[arg(long)]
    pub json: bool,
    /// Exit 3 when any decision changes (for CI gates).
    #[arg(long)]
    pub exit_code: bool,
    /// Diagnostic output.
    #[command(flatten)]
    pub output: OutputArgs,
}

/// `authz test`.
#[derive(Debug, Args)]
pub struct TestArgs {
    /// The policy directory; its `*.test.toml` files are the tests [default: the current
    /// directory].
    pub dir: Option<PathBuf>,
    /// Fail when a policy determines no test's decision (an untested policy is an unguarded
    /// one).
    #[arg(long)]
    pub deny_uncovered: bool,
    /// Decide every test as of this RFC 3339 instant (the context field `now`, when the action
    /// has one); a test's own `now` wins.
    #[arg(long, value_name = "TIME")]
    pub now: Option<String>,
    /// Diagnostic output.
    #[command(flatten)]
    pub output: OutputArgs,
}

/// `authz serve`.
#[derive(Debug, Args)]
pub struct ServeArgs {
    /// The policy directory [default: `policies.dir` of the configuration].
    #[arg(long, short = 'p', value_name = "DIR")]
    pub policies: Option<PathBuf>,
    /// The entities JSON file.
    #[arg(long, short = 'e', value_name = "FILE")]
    pub entities: Option<PathBuf>,
    /// The address to listen on [default: 127.0.0.1:8181].
    #[arg(long, value_name = "ADDR")]
    pub listen: Option<std::net::SocketAddr>,
    /// A TOML configuration file; flags override it.
    #[arg(long, short = 'c', value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// The format of diagnostic logs on stderr.
    #[arg(long, value_enum, value_name = "FORMAT")]
    pub log_format: Option<crate::host::config::LogFormat>,
    /// Write one JSON line per decision to this file (`-` for stdout).
    #[arg(long, value_name = "FILE")]
    pub decision_log: Option<PathBuf>,
    /// Do not watch the files for changes (SIGHUP still reloads).
    #[arg(long)]
    pub no_watch: bool,
}

/// `authz proxy`.
#[derive(Debug, Args)]
pub struct ProxyArgs {
    /// The proxy's TOML configuration.
    #[arg(long, short = 'c', value_name = "FILE")]
    pub config: PathBuf,
    /// The address to listen on [default: `proxy.listen`].
    #[arg(long, value_name = "ADDR")]
    pub listen: Option<std::net::SocketAddr>,
    /// The format of diagnostic logs on stderr.
    #[arg(long, value_enum, value_name = "FORMAT")]
    pub log_format: Option<crate::host::config::LogFormat>,
}

/// `authz token`.
#[derive(Debug, Args)]
pub struct TokenArgs {
    /// The signing key: a PEM private key, or a file holding the HMAC secret.
    #[arg(long, value_name = "FILE")]
    pub key: PathBuf,
    /// The algorithm.
    #[arg(long, default_value = "ES256")]
    pub alg: String,
    /// The key id (`kid`) to put in the header.
    #[arg(long)]
    pub kid: Option<String>,
    /// The issuer (`iss`).
    #[arg(long)]
    pub iss: String,
    /// The audience (`aud`).
    #[arg(long)]
    pub aud: Option<String>,
    /// The subject (`sub`).
    #[arg(long)]
    pub sub: String,
    /// More claims, `name=value`; the value is read as JSON when it parses, else as a string.
    #[arg(long = "claim", value_name = "NAME=VALUE")]
    pub claims: Vec<String>,
    /// Seconds until the token expires.
    #[arg(long, default_value_t = 3600)]
    pub ttl: u64,
}
