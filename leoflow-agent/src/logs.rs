//! Log shipping: lines from the task's stdout and stderr and the agent's own `system`
//! lines, batched (100 lines or 100 ms, whichever comes first) and sent to the agent API.

use std::fmt::Display;
use std::io::Write;
use std::time::{Duration, Instant};

use chrono::{SecondsFormat, Utc};

use crate::api::{Client, LogLine};

/// Lines per batch at most.
const MAX_LINES: usize = 100;
/// How long a line may wait in the buffer.
pub const MAX_DELAY: Duration = Duration::from_millis(100);
/// Bytes per batch at most, well under the API's 1 MiB limit.
const MAX_BYTES: usize = 512 * 1024;
/// Queued bytes at most that travel inside `finish` rather than in a `logs` call of their
/// own (the API allows 64 KiB beyond the XCom cap in a finish body).
const MAX_PIGGYBACK_BYTES: usize = 32 * 1024;
/// A longer line is split into pieces of this size.
pub const MAX_LINE_BYTES: usize = 64 * 1024;

/// Writes one of the agent's own diagnostics to stderr (the subprocess executor turns them
/// into `system` log lines). Never panics: with the executor gone, the pipe may be closed
/// and the attempt must still run and report.
pub fn diag(message: impl Display) {
    let _ = writeln!(std::io::stderr(), "leoflow-agent: {message}");
}

pub struct Shipper {
    client: Client,
    buf: Vec<LogLine>,
    bytes: usize,
    oldest: Option<Instant>,
}

impl Shipper {
    pub fn new(client: Client) -> Shipper {
        Shipper {
            client,
            buf: Vec::new(),
            bytes: 0,
            oldest: None,
        }
    }

    /// Queues a line; flushes when the batch is full.
    pub fn push(&mut self, stream: &'static str, message: String) {
        self.bytes += message.len() + 64;
        self.buf.push(LogLine {
            at: Utc::now().to_rfc3339_opts(SecondsFormat::Micros, true),
            stream,
            message,
        });
        self.oldest.get_or_insert_with(Instant::now);
        if self.buf.len() >= MAX_LINES || self.bytes >= MAX_BYTES {
            self.flush();
        }
    }

    /// A line written by the agent about the attempt.
    pub fn system(&mut self, message: impl Into<String>) {
        self.push("system", message.into());
    }

    /// When the oldest queued line must be sent.
    pub fn deadline(&self) -> Option<Instant> {
        self.oldest.map(|t| t + MAX_DELAY)
    }

    pub fn flush_if_due(&mut self) {
        if self.deadline().is_some_and(|d| Instant::now() >= d) {
            self.flush();
        }
    }

    /// The queued lines, to send with the `finish` call, when they are few enough to ride
    /// along (under `MAX_PIGGYBACK_BYTES`); otherwise they are shipped now and none are
    /// returned.
    pub fn take_for_finish(&mut self) -> Vec<LogLine> {
        if self.bytes > MAX_PIGGYBACK_BYTES {
            self.flush();
        }
        self.bytes = 0;
        self.oldest = None;
        std::mem::take(&mut self.buf)
    }

    pub fn flush(&mut self) {
        if self.buf.is_empty() {
            return;
        }
        if let Err(e) = self.client.logs(&self.buf) {
            diag(format!("dropped {} log lines: {e}", self.buf.len()));
        }
        self.buf.clear();
        self.bytes = 0;
        self.oldest = None;
    }
}
