//! What the CLI prints for people: colour (only on a terminal, never with `NO_COLOR`) and
//! boxed banners.

use std::io::IsTerminal;

/// True when stdout is a terminal and `NO_COLOR` is unset or empty (https://no-color.org).
pub fn colour() -> bool {
    std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty()) && std::io::stdout().is_terminal()
}

/// `text` in bold `code` (an ANSI colour number) when colour is on.
pub fn paint(code: u8, text: &str) -> String {
    if colour() {
        format!("\x1b[1;{code}m{text}\x1b[0m")
    } else {
        text.to_string()
    }
}

pub fn green(text: &str) -> String {
    paint(32, text)
}

pub fn yellow(text: &str) -> String {
    paint(33, text)
}

/// `lines` in a box, the first line as its title.
pub fn boxed(lines: &[String]) -> String {
    let width = lines.iter().map(|l| l.chars().count()).max().unwrap_or(0);
    let rule = "─".repeat(width + 2);
    let mut out = vec![format!("┌{rule}┐")];
    for (i, line) in lines.iter().enumerate() {
        let pad = " ".repeat(width - line.chars().count());
        out.push(format!("│ {line}{pad} │"));
        if i == 0 && lines.len() > 1 {
            out.push(format!("├{rule}┤"));
        }
    }
    out.push(format!("└{rule}┘"));
    out.join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn boxes_fit_their_longest_line() {
        let b = boxed(&["title".into(), "a longer line".into()]);
        let widths: Vec<usize> = b.lines().map(|l| l.chars().count()).collect();
        assert!(widths.iter().all(|w| *w == widths[0]), "{b}");
        assert_eq!(b.lines().count(), 5);
    }
}
