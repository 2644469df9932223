//! Structured logs on stdout: a minimal `tracing` subscriber writing one JSON object per
//! event (`ts`, `level`, `target`, `message` and the event's fields) or, for people, one
//! text line. Spans are not recorded; the code logs with fields, not spans.

use std::fmt::Write as _;
use std::io::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};

use serde_json::{Map, Value};
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::{Event, Level, Metadata, Subscriber};

use crate::config::LogConfig;

/// Installs the subscriber for the whole process.
pub fn init(config: LogConfig) {
    let _ = tracing::subscriber::set_global_default(Logger {
        config,
        next_span: AtomicU64::new(1),
    });
}

struct Logger {
    config: LogConfig,
    next_span: AtomicU64,
}

struct Fields(Map<String, Value>);

impl Visit for Fields {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        self.0.insert(
            field.name().to_string(),
            Value::String(format!("{value:?}")),
        );
    }
    fn record_str(&mut self, field: &Field, value: &str) {
        self.0
            .insert(field.name().to_string(), Value::String(value.to_string()));
    }
    fn record_i64(&mut self, field: &Field, value: i64) {
        self.0.insert(field.name().to_string(), Value::from(value));
    }
    fn record_u64(&mut self, field: &Field, value: u64) {
        self.0.insert(field.name().to_string(), Value::from(value));
    }
    fn record_bool(&mut self, field: &Field, value: bool) {
        self.0.insert(field.name().to_string(), Value::from(value));
    }
}

impl Subscriber for Logger {
    fn enabled(&self, metadata: &Metadata<'_>) -> bool {
        // Our own crates at the configured level; dependencies (kube, sqlx, hyper…) only
        // from warnings up unless debugging.
        let ours = metadata.target().starts_with("leoflow");
        let level = if ours || self.config.level >= Level::DEBUG {
            self.config.level
        } else {
            Level::WARN
        };
        *metadata.level() <= level
    }

    fn new_span(&self, _span: &Attributes<'_>) -> Id {
        Id::from_u64(self.next_span.fetch_add(1, Ordering::Relaxed))
    }
    fn record(&self, _span: &Id, _values: &Record<'_>) {}
    fn record_follows_from(&self, _span: &Id, _follows: &Id) {}
    fn enter(&self, _span: &Id) {}
    fn exit(&self, _span: &Id) {}

    fn event(&self, event: &Event<'_>) {
        let mut fields = Fields(Map::new());
        event.record(&mut fields);
        let meta = event.metadata();
        let ts = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
        let message = fields
            .0
            .remove("message")
            .map(|m| match m {
                Value::String(s) => s,
                other => other.to_string(),
            })
            .unwrap_or_default();
        let line = if self.config.json {
            let mut obj = Map::new();
            obj.insert("ts".into(), Value::String(ts));
            obj.insert("level".into(), Value::String(meta.level().to_string()));
            obj.insert("target".into(), Value::String(meta.target().to_string()));
            obj.insert("message".into(), Value::String(message));
            obj.extend(fields.0);
            Value::Object(obj).to_string()
        } else {
            let mut line = format!("{ts} {:>5} {}: {message}", meta.level(), meta.target());
            for (k, v) in fields.0 {
                let _ = write!(
                    line,
                    " {k}={}",
                    v.as_str().map_or_else(|| v.to_string(), str::to_string)
                );
            }
            line
        };
        let mut out = std::io::stdout().lock();
        let _ = writeln!(out, "{line}");
    }
}
