//! The decision log: one JSON line per decision, written off the request path.
//!
//! Handlers hand lines to a bounded channel; a dedicated thread writes them through a 64 KiB buffer
//! and flushes whenever the channel runs dry. Under load it naps a millisecond between drains
//! instead of parking on the channel, so that many lines share one write and handlers rarely have
//! to wake it; a quiet server's log is complete on disk about a millisecond after its last line.
//! With `on_full = "drop"`, `buffer` should hold at least a millisecond of peak traffic. When
//! the writer cannot keep up, `on_full = "block"` makes handlers wait for room (backpressure: no
//! line is ever lost), and `on_full = "drop"` drops the line and counts it in
//! `authz_decision_log_dropped_total`. Closing the log drains every queued line and flushes.

use std::fmt::Write as _;
use std::io::Write;
use std::path::Path;
use std::sync::{Arc, Mutex};

use authz_runtime::explain::write_json_string;
use tokio::sync::mpsc;

use super::config::OnFull;
use super::metrics::Metrics;

/// How long the writer waits for more lines before it parks. Lines reach the sink whenever the
/// queue runs dry (at most a nap after the last line of a burst) or the 64 KiB buffer fills.
const NAP: std::time::Duration = std::time::Duration::from_millis(1);

enum Message {
    Line(String),
    Close,
}

/// A running decision log.
pub struct DecisionLog {
    sender: mpsc::Sender<Message>,
    on_full: OnFull,
    writer: Mutex<Option<std::thread::JoinHandle<()>>>,
    metrics: Arc<Metrics>,
}

impl DecisionLog {
    /// Opens `path` for appending (`-` is standard output) and starts the writer thread.
    pub fn start(
        path: &Path,
        buffer: usize,
        on_full: OnFull,
        metrics: Arc<Metrics>,
    ) -> std::io::Result<DecisionLog> {
        let sink: Box<dyn Write + Send> = if path == Path::new("-") {
            Box::new(std::io::stdout())
        } else {
            Box::new(
                std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(path)?,
            )
        };
        let (sender, receiver) = mpsc::channel(buffer);
        let writer_metrics = metrics.clone();
        let writer = std::thread::Builder::new()
            .name("decision-log".to_string())
            .spawn(move || write_lines(receiver, sink, &writer_metrics))?;
        Ok(DecisionLog {
            sender,
            on_full,
            writer: Mutex::new(Some(writer)),
            metrics,
        })
    }

    /// Queues one line (without its line break).
    pub async fn record(&self, line: String) {
        match self.on_full {
            OnFull::Block => {
                if self.sender.send(Message::Line(line)).await.is_err() {
                    self.metrics.log_dropped.inc();
                }
            }
            OnFull::Drop => {
                if self.sender.try_send(Message::Line(line)).is_err() {
                    self.metrics.log_dropped.inc();
                }
            }
        }
    }

    /// Writes every queued line, flushes and stops the writer. Lines recorded afterwards are
    /// counted as dropped.
    pub async fn close(&self) {
        // A sink that stopped accepting writes must not keep the process from exiting forever.
        let closing = self.sender.send(Message::Close);
        if tokio::time::timeout(std::time::Duration::from_secs(30), closing)
            .await
            .is_err()
        {
            tracing::error!("the decision log sink is stalled; exiting without its last lines");
            return;
        }
        let writer = self.writer.lock().ok().and_then(|mut writer| writer.take());
        if let Some(writer) = writer {
            let _ = tokio::task::spawn_blocking(move || writer.join()).await;
        }
    }
}

fn write_lines(
    mut receiver: mpsc::Receiver<Message>,
    sink: Box<dyn Write + Send>,
    metrics: &Metrics,
) {
    let mut out = std::io::BufWriter::with_capacity(64 * 1024, sink);
    let write = |line: String, out: &mut std::io::BufWriter<Box<dyn Write + Send>>| {
        if out
            .write_all(line.as_bytes())
            .and_then(|()| out.write_all(b"\n"))
            .is_ok()
        {
            metrics.log_written.inc();
        } else {
            metrics.log_dropped.inc();
        }
    };
    // Group commit: while lines keep coming, the writer drains what has queued, writes it with
    // one flush, and naps for a moment instead of parking on the channel, so that handlers do
    // not wake it (a cross-thread wake-up) for every line. Once a nap brings nothing, it parks
    // until the next line. A quiet log is thus complete on disk within about `NAP`.
    let mut busy = false;
    loop {
        let message = if busy {
            match receiver.try_recv() {
                Ok(message) => Some(message),
                Err(mpsc::error::TryRecvError::Empty) => {
                    let _ = out.flush();
                    std::thread::sleep(NAP);
                    match receiver.try_recv() {
                        Ok(message) => Some(message),
                        Err(mpsc::error::TryRecvError::Empty) => {
                            busy = false;
                            continue;
                        }
                        Err(mpsc::error::TryRecvError::Disconnected) => None,
                    }
                }
                Err(mpsc::error::TryRecvError::Disconnected) => None,
            }
        } else {
            receiver.blocking_recv()
        };
        let Some(message) = message else {
            break;
        };
        match message {
            Message::Line(line) => write(line, &mut out),
            Message::Close => {
                receiver.close();
                while let Ok(Message::Line(line)) = receiver.try_recv() {
                    write(line, &mut out);
                }
                break;
            }
        }
        busy = true;
    }
    let _ = out.flush();
}

/// One line of the decision log, written straight into text: the fields in the order given,
/// values escaped as JSON, without building a `serde_json::Value` first (that was a map insert
/// and a clone per field, per request).
pub struct Line {
    text: String,
}

impl Line {
    /// An empty object.
    pub fn new() -> Line {
        let mut text = String::with_capacity(512);
        text.push('{');
        Line { text }
    }

    fn key(&mut self, key: &str) {
        if self.text.len() > 1 {
            self.text.push(',');
        }
        write_json_string(&mut self.text, key);
        self.text.push(':');
    }

    /// A string member.
    pub fn str(mut self, key: &str, value: &str) -> Line {
        self.key(key);
        write_json_string(&mut self.text, value);
        self
    }

    /// A string member, `null` when absent.
    pub fn opt_str(mut self, key: &str, value: Option<&str>) -> Line {
        self.key(key);
        match value {
            Some(value) => write_json_string(&mut self.text, value),
            None => self.text.push_str("null"),
        }
        self
    }

    /// The `time` member: now, as an ISO-8601 UTC timestamp with milliseconds.
    pub fn time_now(mut self) -> Line {
        let millis = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |elapsed| elapsed.as_millis());
        self.key("time");
        self.text.push('"');
        write_iso8601(&mut self.text, u64::try_from(millis).unwrap_or(u64::MAX));
        self.text.push('"');
        self
    }

    /// A number member.
    pub fn u64(mut self, key: &str, value: u64) -> Line {
        self.key(key);
        let _ = write!(self.text, "{value}");
        self
    }

    /// A member holding any JSON value (`null` when absent).
    pub fn json(mut self, key: &str, value: Option<&serde_json::Value>) -> Line {
        self.key(key);
        match value {
            Some(value) => {
                let _ = write!(self.text, "{value}");
            }
            None => self.text.push_str("null"),
        }
        self
    }

    /// A member whose value `write` appends as JSON text (it must write exactly one value).
    pub fn with(mut self, key: &str, write: impl FnOnce(&mut String)) -> Line {
        self.key(key);
        write(&mut self.text);
        self
    }

    /// The line, without its line break.
    pub fn finish(mut self) -> String {
        self.text.push('}');
        self.text
    }
}

/// Milliseconds since the Unix epoch as `YYYY-MM-DDTHH:MM:SS.mmmZ` (UTC).
#[cfg(test)]
fn iso8601(millis: u64) -> String {
    let mut text = String::with_capacity(24);
    write_iso8601(&mut text, millis);
    text
}

thread_local! {
    /// The second last formatted, and its text up to the seconds: lines come many per second, and
    /// the calendar arithmetic is done once per second and thread.
    static SECOND: std::cell::RefCell<(u64, String)> = const { std::cell::RefCell::new((u64::MAX, String::new())) };
}

/// Appends `millis` as `YYYY-MM-DDTHH:MM:SS.mmmZ`.
fn write_iso8601(out: &mut String, millis: u64) {
    let second = millis / 1000;
    let milli = millis % 1000;
    SECOND.with(|cell| {
        let mut cached = cell.borrow_mut();
        if cached.0 != second {
            let full = authz_runtime::ext::format_timestamp_millis(
                i64::try_from(second.saturating_mul(1000)).unwrap_or(i64::MAX),
            );
            // `…:SS.000Z`: keep what comes before the milliseconds.
            let prefix = full.strip_suffix(".000Z").unwrap_or(&full).to_string();
            *cached = (second, prefix);
        }
        out.push_str(&cached.1);
    });
    let digits = [
        b'.',
        b'0' + (milli / 100) as u8,
        b'0' + (milli / 10 % 10) as u8,
        b'0' + (milli % 10) as u8,
        b'Z',
    ];
    out.push_str(std::str::from_utf8(&digits).unwrap_or(".000Z"));
}

impl Default for Line {
    fn default() -> Line {
        Line::new()
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn times_are_iso8601() {
        assert_eq!(super::iso8601(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(super::iso8601(951_782_400_123), "2000-02-29T00:00:00.123Z");
        assert_eq!(
            super::iso8601(1_796_587_154_387),
            "2026-12-06T19:59:14.387Z"
        );
        assert_eq!(
            super::iso8601(4_102_444_799_999),
            "2099-12-31T23:59:59.999Z"
        );
    }

    use super::Line;
    use serde_json::json;

    #[test]
    fn a_line_is_one_json_object_with_its_members_in_order() {
        let principal = json!({ "type": "User", "id": "al\"ice\n" });
        let line = Line::new()
            .u64("time", 17)
            .str("request_id", "r-1")
            .opt_str("reason", None)
            .json("principal", Some(&principal))
            .json("missing", None)
            .finish();
        assert_eq!(
            line,
            format!(
                r#"{{"time":17,"request_id":"r-1","reason":null,"principal":{principal},"missing":null}}"#
            )
        );
        let parsed: serde_json::Value = serde_json::from_str(&line).unwrap();
        assert_eq!(parsed["principal"], principal);
        assert!(!line.contains('\n'));
    }
}
