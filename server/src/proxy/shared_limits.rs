//! Rate limits shared by several proxy replicas, kept in Redis (`[limits] redis_url`).
//!
//! The algorithm is the GCRA of `limits.rs` (`count` requests per period, refilled evenly, at most
//! `burst` at once),
//! with each key's theoretical arrival time (TAT) stored in Redis and updated by one Lua script,
//! so that a check is one atomic round trip whichever replica makes it. Time comes from Redis
//! (`TIME`), not from the replicas, so their clocks need not agree. A key expires when its
//! bucket is full again, so idle keys cost no memory. Keys are
//! `{prefix}{limit}:{count}/{period}/{burst}:{key}`: a limit whose count, period or burst changes
//! starts afresh,
//! as in memory.
//!
//! When Redis cannot be reached or does not answer within `timeout_ms`, the request is refused
//! (`on_error = "deny"`, the default: fail closed) or let through uncounted (`"allow"`); the
//! first failure and the recovery are logged. Connections are kept per worker thread (each
//! worker runs its own single-threaded runtime) and reopened after an error. Redis Cluster is not
//! supported: the keys of one request may live on different nodes.

use std::cell::RefCell;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::Semaphore;

use serde::Deserialize;

use super::limits::{seconds_up, Obligation, Verdict};
use super::resp::{Connection, Reply, RespError, Target};

/// `[limits]`
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SharedLimitsConfig {
    /// `redis://[[user]:password@]host[:port][/db]`.
    pub redis_url: String,
    /// The prefix of every key this proxy writes.
    #[serde(default = "default_prefix")]
    pub key_prefix: String,
    /// Milliseconds a check may take, connecting included.
    #[serde(default = "default_timeout_ms")]
    pub timeout_ms: u64,
    /// What a request with limits meets when Redis fails: `deny` (default) or `allow`.
    #[serde(default)]
    pub on_error: OnError,
}

fn default_prefix() -> String {
    "authz:limit:".to_string()
}

fn default_timeout_ms() -> u64 {
    100
}

/// What happens to a request with limits when Redis fails.
#[derive(Clone, Copy, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum OnError {
    /// Refuse it (fail closed).
    #[default]
    Deny,
    /// Let it through without counting it.
    Allow,
}

impl SharedLimitsConfig {
    /// Checks the settings.
    pub fn validate(&self) -> Result<Target, String> {
        if !(1..=10_000).contains(&self.timeout_ms) {
            return Err("`limits.timeout_ms` must be between 1 and 10000".to_string());
        }
        Target::parse(&self.redis_url).map_err(|message| format!("`limits.redis_url`: {message}"))
    }
}

/// The Lua script: for each key `KEYS[i]`, with the emission interval `ARGV[2i-1]` and the burst
/// `ARGV[2i]`, counts one request if the bucket allows it; returns, per key, allowed (1 or 0),
/// the requests left and the microseconds until one would be allowed.
const SCRIPT: &str = r"
if redis.replicate_commands then redis.replicate_commands() end
local now = redis.call('TIME')
local now_us = tonumber(now[1]) * 1000000 + tonumber(now[2])
local out = {}
for i, key in ipairs(KEYS) do
  local interval = tonumber(ARGV[2 * i - 1])
  local burst = tonumber(ARGV[2 * i])
  local tat = tonumber(redis.call('GET', key) or now_us) or now_us
  if tat < now_us then tat = now_us end
  local new_tat = tat + interval
  local allowed_at = new_tat - burst * interval
  if allowed_at > now_us then
    out[#out + 1] = 0
    out[#out + 1] = 0
    out[#out + 1] = allowed_at - now_us
  else
    local ttl_ms = math.ceil((new_tat - now_us) / 1000)
    redis.call('SET', key, string.format('%.0f', new_tat), 'PX', string.format('%.0f', ttl_ms))
    out[#out + 1] = 1
    out[#out + 1] = math.floor((burst * interval - (new_tat - now_us)) / interval)
    out[#out + 1] = 0
  end
end
return out
";

thread_local! {
    /// Idle connections of this worker thread, with when each was last used.
    static IDLE: RefCell<Vec<(Connection, Instant)>> = const { RefCell::new(Vec::new()) };
    /// Permits for the connections this worker thread may have open at once.
    static OPEN: Arc<Semaphore> = Arc::new(Semaphore::new(MAX_OPEN_PER_THREAD));
}

/// How many idle connections a worker thread keeps.
const MAX_IDLE_PER_THREAD: usize = 8;
/// How many connections a worker thread uses at once: when Redis is slow, further checks wait
/// for one (within the timeout) rather than open more, which would slow Redis down further.
const MAX_OPEN_PER_THREAD: usize = 16;
/// An idle connection older than this is closed rather than used: a firewall or NAT between the
/// proxy and Redis may have forgotten it without a word, and a write into such a connection
/// waits out the whole timeout.
const MAX_IDLE_TIME: Duration = Duration::from_secs(30);

/// The limits of one limit declaration, as the limiters (in memory and in Redis) need them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Declared<'a> {
    /// The limit's name.
    pub name: &'a str,
    /// Requests per period.
    pub count: u64,
    /// The period.
    pub period_seconds: u64,
    /// Requests allowed at once.
    pub burst: u64,
}

impl<'a> Declared<'a> {
    /// The limits of a program's declaration.
    pub fn of(limit: &'a authz_runtime::program::Limit) -> Declared<'a> {
        Declared {
            name: &limit.name,
            count: limit.count,
            period_seconds: limit.period_seconds,
            burst: limit.burst,
        }
    }
}

/// Redis failed and `on_error = "deny"`: the request is refused.
#[derive(Debug)]
pub struct Unavailable;

/// The shared limiter.
pub struct SharedLimits {
    target: Target,
    prefix: String,
    timeout: Duration,
    on_error: OnError,
    script_sha: String,
    failing: Arc<AtomicBool>,
    /// Failed Redis commands (a detached counter until [`SharedLimits::report_to`]).
    errors: prometheus_client::metrics::counter::Counter,
}

impl SharedLimits {
    /// Whether Redis is failing now (set by the last command), shared for `/readyz`.
    pub fn failing(&self) -> Arc<AtomicBool> {
        Arc::clone(&self.failing)
    }

    /// Where Redis is, for `/readyz` (never its credentials).
    pub fn address(&self) -> String {
        self.target.address.to_string()
    }

    /// Counts failed Redis commands in `metrics` from now on.
    pub fn report_to(&mut self, metrics: &crate::host::metrics::Metrics) {
        self.errors = metrics.redis_errors.clone();
    }

    /// A limiter for validated settings.
    pub fn new(config: &SharedLimitsConfig) -> Result<SharedLimits, String> {
        let target = config.validate()?;
        let digest = aws_lc_rs::digest::digest(
            &aws_lc_rs::digest::SHA1_FOR_LEGACY_USE_ONLY,
            SCRIPT.as_bytes(),
        );
        let script_sha = digest
            .as_ref()
            .iter()
            .map(|byte| format!("{byte:02x}"))
            .collect();
        Ok(SharedLimits {
            target,
            prefix: config.key_prefix.clone(),
            timeout: Duration::from_millis(config.timeout_ms),
            on_error: config.on_error,
            script_sha,
            failing: Arc::new(AtomicBool::new(false)),
            errors: prometheus_client::metrics::counter::Counter::default(),
        })
    }

    /// Checks that Redis answers and runs the script, so that a wrong URL or password stops the
    /// proxy at start.
    pub async fn probe(&self) -> Result<(), String> {
        // One real, throwaway count (its key expires in a millisecond), so that a Redis that
        // refuses the script's write is found now rather than on every request.
        let key = format!("{}probe", self.prefix);
        let args = ["1".to_string(), "1000000".to_string()];
        self.run(&[key], &args).await.map(drop).map_err(|error| {
            format!(
                "`limits.redis_url`: cannot use Redis at {}: {error}",
                self.target.address
            )
        })
    }

    /// Counts the request against every obligation whose limit is declared; the verdict of the
    /// tightest, as `Limiters::check` does. `Err` when Redis failed and failures deny.
    pub async fn check(
        &self,
        declared: &[Declared<'_>],
        obligations: &[Obligation<'_>],
    ) -> Result<Option<Verdict>, Unavailable> {
        let mut keys = Vec::new();
        let mut args = Vec::new();
        let mut limits = Vec::new();
        for obligation in obligations {
            let Some(limit) = declared.iter().find(|limit| limit.name == obligation.limit) else {
                continue;
            };
            let count = limit.count.max(1);
            let interval_us = (limit.period_seconds.max(1) * 1_000_000 / count).max(1);
            keys.push(format!(
                "{}{}:{}/{}/{}:{}",
                self.prefix,
                limit.name,
                limit.count,
                limit.period_seconds,
                limit.burst,
                obligation.key
            ));
            args.push(interval_us.to_string());
            args.push(limit.burst.max(1).to_string());
            limits.push((limit, interval_us));
        }
        if keys.is_empty() {
            return Ok(None);
        }
        let outcome = match self.run(&keys, &args).await {
            Ok(outcome) => outcome,
            Err(error) => {
                self.errors.inc();
                if !self.failing.swap(true, Ordering::Relaxed) {
                    tracing::error!(%error, address = %self.target.address, on_error = ?self.on_error, "shared rate limits unavailable");
                }
                return match self.on_error {
                    OnError::Deny => Err(Unavailable),
                    OnError::Allow => Ok(None),
                };
            }
        };
        if self.failing.load(Ordering::Relaxed) && self.failing.swap(false, Ordering::Relaxed) {
            tracing::warn!(address = %self.target.address, "shared rate limits available again");
        }
        let mut tightest: Option<Verdict> = None;
        for ((limit, _), chunk) in limits.iter().zip(outcome.chunks(3)) {
            let [allowed, remaining, wait_us] = chunk else {
                continue;
            };
            let verdict = Verdict {
                allowed: *allowed == 1,
                limit: limit.name.to_string(),
                count: limit.count,
                remaining: u64::try_from(*remaining).unwrap_or(0),
                retry_after: if *allowed == 1 {
                    0
                } else {
                    seconds_up(Duration::from_micros(u64::try_from(*wait_us).unwrap_or(0)))
                },
                reset: limit.period_seconds,
            };
            if super::limits::tighter(&verdict, tightest.as_ref()) {
                tightest = Some(verdict);
            }
        }
        Ok(tightest)
    }

    /// Runs the script on a connection of this thread, within the timeout.
    async fn run(&self, keys: &[String], args: &[String]) -> Result<Vec<i64>, RespError> {
        let slots = OPEN.with(Arc::clone);
        let call = async {
            let permit = slots
                .acquire_owned()
                .await
                .map_err(|_| RespError::Timeout)?;
            let pooled = IDLE.with(|idle| {
                let mut idle = idle.borrow_mut();
                idle.retain(|(_, used)| used.elapsed() < MAX_IDLE_TIME);
                idle.pop()
            });
            // A retry on a fresh connection after an I/O error can count a request twice when
            // the script ran but its reply was lost; rare, and it errs on the strict side.
            if let Some((mut pooled, _)) = pooled {
                match self.evaluate(&mut pooled, keys, args).await {
                    Ok(reply) => return Ok((pooled, reply, permit)),
                    // Closed while idle (a Redis restart, an idle timeout): open another.
                    Err(RespError::Io(_)) => {}
                    Err(other) => return Err(other),
                }
            }
            let mut fresh = Connection::open(&self.target, self.timeout).await?;
            let reply = self.evaluate(&mut fresh, keys, args).await?;
            Ok::<_, RespError>((fresh, reply, permit))
        };
        let (connection, reply, permit) = tokio::time::timeout(self.timeout, call)
            .await
            .map_err(|_| RespError::Timeout)??;
        IDLE.with(|idle| {
            let mut idle = idle.borrow_mut();
            if idle.len() < MAX_IDLE_PER_THREAD {
                idle.push((connection, Instant::now()));
            }
        });
        drop(permit);
        match reply {
            Reply::Array(Some(items)) => items
                .into_iter()
                .map(|item| match item {
                    Reply::Integer(value) => Ok(value),
                    other => Err(RespError::Protocol(format!(
                        "the script answered {other:?}"
                    ))),
                })
                .collect(),
            other => Err(RespError::Protocol(format!(
                "the script answered {other:?}"
            ))),
        }
    }

    /// `EVALSHA`, or `EVAL` when Redis does not have the script yet (which caches it).
    async fn evaluate(
        &self,
        connection: &mut Connection,
        keys: &[String],
        args: &[String],
    ) -> Result<Reply, RespError> {
        let count = keys.len().to_string();
        let mut command: Vec<&[u8]> =
            vec![b"EVALSHA", self.script_sha.as_bytes(), count.as_bytes()];
        command.extend(keys.iter().map(|key| key.as_bytes()));
        command.extend(args.iter().map(|arg| arg.as_bytes()));
        match connection.call(&command).await? {
            Reply::Error(message) if message.starts_with("NOSCRIPT") => {
                if let Some(first) = command.first_mut() {
                    *first = b"EVAL";
                }
                if let Some(second) = command.get_mut(1) {
                    *second = SCRIPT.as_bytes();
                }
                connection.call(&command).await?.ok()
            }
            reply => reply.ok(),
        }
    }
}
