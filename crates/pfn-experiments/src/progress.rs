//! The progress indicator of a run: a bar on stderr when it is a terminal, a plain line per tenth
//! of the work otherwise (logs of CI jobs), nothing when disabled (tests).

use std::io::IsTerminal;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// How progress is shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProgressMode {
    /// Nothing is shown.
    Hidden,
    /// A bar on a terminal, plain lines otherwise.
    Auto,
}

/// Progress over a known number of work units (e.g. dataset × method fits).
#[derive(Debug)]
pub struct Progress {
    bar: Option<ProgressBar>,
    plain: bool,
    label: String,
    total: u64,
    done: u64,
    next_line: u64,
}

impl Progress {
    /// Starts tracking `total` units of work labelled `label`.
    pub fn new(mode: ProgressMode, label: &str, total: u64) -> Self {
        let terminal = std::io::stderr().is_terminal();
        let bar = (mode == ProgressMode::Auto && terminal).then(|| {
            let bar = ProgressBar::with_draw_target(Some(total), ProgressDrawTarget::stderr());
            let style = ProgressStyle::with_template(
                "{prefix} {bar:30} {pos}/{len} [{elapsed_precise} < {eta_precise}] {msg}",
            )
            .unwrap_or_else(|_| ProgressStyle::default_bar());
            bar.set_style(style);
            bar.set_prefix(label.to_string());
            bar
        });
        let plain = mode == ProgressMode::Auto && !terminal;
        if plain {
            eprintln!("{label}: {total} steps");
        }
        Self {
            bar,
            plain,
            label: label.to_string(),
            total,
            done: 0,
            next_line: total.div_ceil(10).max(1),
        }
    }

    /// Sets the message shown next to the bar (the current stage).
    pub fn stage(&self, message: &str) {
        if let Some(bar) = &self.bar {
            bar.set_message(message.to_string());
        }
    }

    /// Marks `units` more units as done.
    pub fn advance(&mut self, units: u64) {
        self.done = (self.done + units).min(self.total);
        if let Some(bar) = &self.bar {
            bar.set_position(self.done);
        }
        if self.plain && self.done >= self.next_line {
            eprintln!("{}: {}/{}", self.label, self.done, self.total);
            let step = self.total.div_ceil(10).max(1);
            while self.next_line <= self.done {
                self.next_line += step;
            }
        }
    }

    /// Units done so far.
    pub fn done(&self) -> u64 {
        self.done
    }

    /// Removes the bar.
    pub fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        self.finish();
    }
}
