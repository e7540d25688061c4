//! The decision table of issue 3: one row per (engine, form, N) with the median time of one
//! decision, its ratio to a reference engine measured in the same run, the load time, the peak
//! RSS and the memory the loaded engine holds. `scripts/bench-decisions.sh` runs it in release.
//!
//! The parent process generates each workload once (`gen-workload`, 10,000 requests) and runs
//! every (engine, form, N) in a child process of this same binary, so that each child's peak RSS
//! (`VmHWM` in `/proc/self/status`) belongs to that engine alone, and a child that runs past
//! `--timeout` seconds is killed and reported as such instead of holding up the table.
//!
//! A child loads the workload, builds the engine (timed as "load"), then decides the requests in
//! order for up to a second as a warm-up, checking each decision against the generator's oracle
//! ("agree" column). It then times rounds of consecutive decisions (round-robin over the requests),
//! each round about 1/25 of `--seconds`, for at least five rounds and `--seconds` in all, and
//! reports the median over rounds of the time per decision.
//!
//! ```text
//! cargo bench -p authz-tests --bench decision_table -- [--policies 10,100,1000,10000]
//!     [--engines cedar,rego,casbin] [--forms literal,expert] [--seconds 3] [--timeout 300]
//! ```

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

#[path = "../peers/mod.rs"]
mod peers;

use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};
use std::time::{Duration, Instant};

use peers::{EngineKind, Form, Workload};

const REQUESTS: usize = 10_000;

/// The options of a table run.
struct Options {
    policies: Vec<usize>,
    engines: Vec<EngineKind>,
    forms: Vec<Form>,
    seconds: f64,
    timeout: f64,
}

/// One measured row, as a child reports it.
#[derive(Clone, Debug)]
struct Row {
    engine: String,
    form: String,
    policies: usize,
    median_ns: f64,
    load_ms: f64,
    peak_rss_kib: u64,
    engine_rss_kib: i64,
    agreed: usize,
    checked: usize,
    errors: u64,
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some("--child") {
        return match run_child(&args[1..]) {
            Ok(()) => ExitCode::SUCCESS,
            Err(err) => {
                eprintln!("decision_table child: {err}");
                ExitCode::FAILURE
            }
        };
    }
    // `cargo test --benches` runs this binary without `--bench`; the table is for `cargo bench`.
    if !args.iter().any(|arg| arg == "--bench") {
        println!("decision_table: run it with `cargo bench` or scripts/bench-decisions.sh");
        return ExitCode::SUCCESS;
    }
    match parse_options(&args).and_then(|options| run_parent(&options)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("decision_table: {err}");
            ExitCode::FAILURE
        }
    }
}

fn parse_options(args: &[String]) -> Result<Options, String> {
    let mut options = Options {
        policies: vec![10, 100, 1_000, 10_000],
        engines: EngineKind::ALL.to_vec(),
        forms: Form::ALL.to_vec(),
        seconds: 3.0,
        timeout: 300.0,
    };
    let mut iter = args.iter();
    while let Some(arg) = iter.next() {
        let mut value = || {
            iter.next()
                .cloned()
                .ok_or_else(|| format!("`{arg}` needs a value"))
        };
        match arg.as_str() {
            // cargo bench passes `--bench` to every bench binary.
            "--bench" => {}
            "--policies" => {
                options.policies = value()?
                    .split(',')
                    .map(|item| {
                        item.trim()
                            .replace('_', "")
                            .parse()
                            .map_err(|_| format!("bad policy count `{item}`"))
                    })
                    .collect::<Result<Vec<usize>, String>>()?;
            }
            "--engines" => {
                options.engines = value()?
                    .split(',')
                    .map(|name| {
                        EngineKind::from_name(name.trim())
                            .ok_or_else(|| format!("unknown engine `{name}`"))
                    })
                    .collect::<Result<Vec<EngineKind>, String>>()?;
            }
            "--forms" => {
                options.forms = value()?
                    .split(',')
                    .map(|name| {
                        Form::from_name(name.trim()).ok_or_else(|| format!("unknown form `{name}`"))
                    })
                    .collect::<Result<Vec<Form>, String>>()?;
            }
            "--seconds" => {
                options.seconds = value()?
                    .parse()
                    .map_err(|_| "bad `--seconds`".to_string())?;
            }
            "--timeout" => {
                options.timeout = value()?
                    .parse()
                    .map_err(|_| "bad `--timeout`".to_string())?;
            }
            other => return Err(format!("unknown argument `{other}`")),
        }
    }
    Ok(options)
}

fn run_parent(options: &Options) -> Result<(), String> {
    let exe = std::env::current_exe().map_err(|err| format!("no current exe: {err}"))?;
    let mut rows: Vec<Row> = Vec::new();
    let mut failures: Vec<String> = Vec::new();
    for &policies in &options.policies {
        let dir = Path::new(env!("CARGO_TARGET_TMPDIR"))
            .join(format!("decision-table-p{policies}-{}", std::process::id()));
        peers::workload::write_workload(&dir, policies, REQUESTS)?;
        for &engine in &options.engines {
            for &form in engine.forms() {
                if !options.forms.contains(&form) {
                    continue;
                }
                eprintln!(
                    "decision_table: {} {} N={policies} ...",
                    engine.name(),
                    form.name()
                );
                match run_one(&exe, &dir, engine, form, options) {
                    Ok(row) => {
                        eprintln!(
                            "decision_table:   {:.0} ns/decision, load {:.0} ms, agree {}/{}",
                            row.median_ns, row.load_ms, row.agreed, row.checked
                        );
                        rows.push(row);
                    }
                    Err(err) => {
                        eprintln!("decision_table:   {err}");
                        failures.push(format!(
                            "| {} | {} | {policies} | {err} |",
                            engine.name(),
                            form.name()
                        ));
                    }
                }
            }
        }
        let _ = std::fs::remove_dir_all(&dir);
    }
    print_table(&rows);
    if !failures.is_empty() {
        println!();
        println!("| engine | form | N | not measured |");
        println!("|---|---|---:|---|");
        for failure in &failures {
            println!("{failure}");
        }
    }
    Ok(())
}

/// Runs one (engine, form, workload) in a child process, killed after `options.timeout`.
fn run_one(
    exe: &Path,
    dir: &Path,
    engine: EngineKind,
    form: Form,
    options: &Options,
) -> Result<Row, String> {
    let mut child = Command::new(exe)
        .arg("--child")
        .arg(engine.name())
        .arg(form.name())
        .arg(dir)
        .arg(options.seconds.to_string())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .map_err(|err| format!("cannot start child: {err}"))?;
    let deadline = Instant::now() + Duration::from_secs_f64(options.timeout);
    let status = loop {
        if let Some(status) = child.try_wait().map_err(|err| err.to_string())? {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            return Err(format!("timed out after {} s", options.timeout));
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let mut output = String::new();
    if let Some(mut stdout) = child.stdout.take() {
        let _ = stdout.read_to_string(&mut output);
    }
    if !status.success() {
        return Err(format!("child failed ({status})"));
    }
    let line = output
        .lines()
        .find_map(|line| line.strip_prefix("RESULT "))
        .ok_or("child printed no result")?;
    parse_row(line)
}

/// A child's result line: `engine form N median_ns load_ms peak_kib engine_kib agreed checked errors`.
fn parse_row(line: &str) -> Result<Row, String> {
    let fields: Vec<&str> = line.split_whitespace().collect();
    if fields.len() != 10 {
        return Err(format!("bad result line `{line}`"));
    }
    let bad = |_| format!("bad result line `{line}`");
    Ok(Row {
        engine: fields[0].to_string(),
        form: fields[1].to_string(),
        policies: fields[2].parse().map_err(|_| format!("bad `{line}`"))?,
        median_ns: fields[3].parse().map_err(|_| format!("bad `{line}`"))?,
        load_ms: fields[4].parse().map_err(|_| format!("bad `{line}`"))?,
        peak_rss_kib: fields[5].parse().map_err(bad)?,
        engine_rss_kib: fields[6].parse().map_err(|_| format!("bad `{line}`"))?,
        agreed: fields[7].parse().map_err(bad)?,
        checked: fields[8].parse().map_err(bad)?,
        errors: fields[9].parse().map_err(|_| format!("bad `{line}`"))?,
    })
}

/// Prints the markdown table. The ratio column divides each row's median by the reference row's
/// at the same N: authz when it is in the run, otherwise Cedar's literal form.
fn print_table(rows: &[Row]) {
    let mut reference: BTreeMap<usize, (String, f64)> = BTreeMap::new();
    for preferred in ["authz-literal", "cedar-literal"] {
        for row in rows {
            let key = format!("{}-{}", row.engine, row.form);
            if key == preferred && !reference.contains_key(&row.policies) {
                reference.insert(row.policies, (key, row.median_ns));
            }
        }
    }
    let reference_names: Vec<&str> = {
        let mut names: Vec<&str> = reference.values().map(|(name, _)| name.as_str()).collect();
        names.dedup();
        if names.is_empty() {
            names.push("reference");
        }
        names
    };
    println!();
    println!(
        "| engine | form | N | median ns/decision | × {} | load ms | peak RSS MiB | engine RSS MiB | agree |",
        reference_names.join(" / ")
    );
    println!("|---|---|---:|---:|---:|---:|---:|---:|---|");
    for row in rows {
        let ratio = reference
            .get(&row.policies)
            .map(|(_, reference_ns)| format_ratio(row.median_ns / reference_ns))
            .unwrap_or_else(|| "-".to_string());
        let errors = if row.errors > 0 {
            format!(", {} errors", row.errors)
        } else {
            String::new()
        };
        println!(
            "| {} | {} | {} | {} | {} | {:.0} | {:.1} | {:.1} | {}/{}{} |",
            row.engine,
            row.form,
            row.policies,
            format_ns(row.median_ns),
            ratio,
            row.load_ms,
            row.peak_rss_kib as f64 / 1024.0,
            row.engine_rss_kib as f64 / 1024.0,
            row.agreed,
            row.checked,
            errors
        );
    }
}

/// Two decimals, or two significant digits below 0.1 (`0.00048`).
fn format_ratio(ratio: f64) -> String {
    if !ratio.is_finite() || ratio >= 0.1 || ratio <= 0.0 {
        return format!("{ratio:.2}");
    }
    let decimals = (-ratio.log10()).ceil() as usize + 1;
    format!("{ratio:.decimals$}")
}

fn format_ns(ns: f64) -> String {
    if ns >= 100.0 {
        format!("{ns:.0}")
    } else {
        format!("{ns:.1}")
    }
}

/// The child: `--child ENGINE FORM DIR SECONDS`.
fn run_child(args: &[String]) -> Result<(), String> {
    let [engine, form, dir, seconds] = args else {
        return Err("usage: --child ENGINE FORM DIR SECONDS".to_string());
    };
    let engine = EngineKind::from_name(engine).ok_or("unknown engine")?;
    let form = Form::from_name(form).ok_or("unknown form")?;
    let seconds: f64 = seconds.parse().map_err(|_| "bad seconds")?;
    let workload = Workload::load(&PathBuf::from(dir))?;

    let rss_before = proc_status_kib("VmRSS").unwrap_or(0);
    let load_start = Instant::now();
    let mut built = peers::build(engine, form, &workload)?;
    let load_ms = load_start.elapsed().as_secs_f64() * 1e3;
    let engine_rss_kib = proc_status_kib("VmRSS").unwrap_or(0) as i64 - rss_before as i64;
    let peak_rss_kib = proc_status_kib("VmHWM").unwrap_or(0);

    // Warm-up, and agreement with the oracle on the requests it reaches.
    let total = workload.requests.len();
    let warm_up_start = Instant::now();
    let mut checked = 0;
    let mut agreed = 0;
    while checked < total && warm_up_start.elapsed() < Duration::from_secs(1) {
        if built.decide(checked) == workload.expected(checked) {
            agreed += 1;
        }
        checked += 1;
    }
    let estimate_ns = warm_up_start.elapsed().as_nanos() as f64 / checked.max(1) as f64;

    // Rounds of about 1/25 of the budget each, at least five.
    let round_ns = seconds * 1e9 / 25.0;
    let batch = ((round_ns / estimate_ns.max(1.0)) as usize).clamp(1, 10_000_000);
    let mut next = checked % total.max(1);
    let mut per_decision: Vec<f64> = Vec::new();
    let measure_start = Instant::now();
    while per_decision.len() < 5 || measure_start.elapsed().as_secs_f64() < seconds {
        let round_start = Instant::now();
        for _ in 0..batch {
            std::hint::black_box(built.decide(next));
            next += 1;
            if next == total {
                next = 0;
            }
        }
        per_decision.push(round_start.elapsed().as_nanos() as f64 / batch as f64);
        if per_decision.len() >= 1_000 {
            break;
        }
    }
    per_decision.sort_by(f64::total_cmp);
    let median_ns = median(&per_decision);
    println!(
        "RESULT {} {} {} {median_ns:.2} {load_ms:.2} {peak_rss_kib} {engine_rss_kib} {agreed} {checked} {}",
        engine.name(),
        form.name(),
        workload.policies,
        built.errors()
    );
    Ok(())
}

fn median(sorted: &[f64]) -> f64 {
    match sorted.len() {
        0 => 0.0,
        n if n % 2 == 1 => sorted[n / 2],
        n => (sorted[n / 2 - 1] + sorted[n / 2]) / 2.0,
    }
}

/// A `kB` field of `/proc/self/status` (Linux), such as `VmRSS` or `VmHWM`.
fn proc_status_kib(field: &str) -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    status.lines().find_map(|line| {
        let rest = line.strip_prefix(field)?.strip_prefix(':')?;
        rest.trim().trim_end_matches("kB").trim().parse().ok()
    })
}
