//! Progress bars and spinners for downloads and long steps, on stderr: drawn only when
//! stderr is a terminal, and in colour only when `NO_COLOR` is unset.

use std::io::IsTerminal;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// A bar counting the bytes of a download; `total` is its length when known.
pub fn bytes(total: Option<u64>, message: &str) -> ProgressBar {
    let bar = match total {
        Some(total) => ProgressBar::new(total).with_style(style(if colour() {
            "{msg} [{bar:30.cyan/blue}] {bytes}/{total_bytes} ({bytes_per_sec}, {eta})"
        } else {
            "{msg} [{bar:30}] {bytes}/{total_bytes} ({bytes_per_sec}, {eta})"
        })),
        None => ProgressBar::new_spinner()
            .with_style(style("{spinner} {msg} {bytes} ({bytes_per_sec})")),
    };
    shown(bar, message)
}

/// A spinner for a step of unknown length.
pub fn spinner(message: &str) -> ProgressBar {
    let bar = ProgressBar::new_spinner().with_style(style("{spinner} {msg} ({elapsed})"));
    let bar = shown(bar, message);
    bar.enable_steady_tick(Duration::from_millis(120));
    bar
}

fn shown(bar: ProgressBar, message: &str) -> ProgressBar {
    bar.set_message(message.to_string());
    if !std::io::stderr().is_terminal() {
        bar.set_draw_target(ProgressDrawTarget::hidden());
    }
    bar
}

fn style(template: &str) -> ProgressStyle {
    ProgressStyle::with_template(template).unwrap_or_else(|_| ProgressStyle::default_bar())
}

fn colour() -> bool {
    std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_template_parses() {
        for template in [
            "{msg} [{bar:30.cyan/blue}] {bytes}/{total_bytes} ({bytes_per_sec}, {eta})",
            "{msg} [{bar:30}] {bytes}/{total_bytes} ({bytes_per_sec}, {eta})",
            "{spinner} {msg} {bytes} ({bytes_per_sec})",
            "{spinner} {msg} ({elapsed})",
        ] {
            assert!(ProgressStyle::with_template(template).is_ok(), "{template}");
        }
        // Without a terminal (as under `cargo test`) nothing is drawn.
        assert!(bytes(Some(10), "x").is_hidden());
    }
}
