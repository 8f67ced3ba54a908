//! How far a long operation is: the import of files, the demo league's seasons, a backtest's match
//! days, a backup's tables. The operation reports through [`Progress`]; the functions pass
//! [`Silent`], `fp` and the benches [`for_stderr`]: a progress bar (indicatif) when standard error
//! is a terminal, plain lines (at most one every few seconds, and one at each stage's end) when it
//! is not, as in CI logs or `make` output piped to a file.

use std::{
    io::IsTerminal,
    sync::Mutex,
    time::{Duration, Instant},
};

/// Where progress goes. Every method has a do-nothing default.
pub trait Progress: Send + Sync {
    /// A new stage of `total` steps (0: unknown) named `name`.
    fn stage(&self, _name: &str, _total: u64) {}
    /// `done` steps of the current stage are done; `note` says what was last done.
    fn set(&self, _done: u64, _note: &str) {}
    /// The current stage is over.
    fn finish(&self) {}
}

/// No progress shown (the Lambda functions, tests).
pub struct Silent;

impl Progress for Silent {}

/// Progress on standard error: a bar on a terminal, plain lines otherwise.
pub fn for_stderr() -> Box<dyn Progress> {
    if std::io::stderr().is_terminal() { Box::new(Bar::new()) } else { Box::new(Lines::new(Duration::from_secs(5))) }
}

/// A progress bar on standard error (indicatif).
pub struct Bar {
    bar: Mutex<Option<indicatif::ProgressBar>>,
}

impl Bar {
    pub fn new() -> Self {
        Bar { bar: Mutex::new(None) }
    }
}

impl Default for Bar {
    fn default() -> Self {
        Self::new()
    }
}

impl Progress for Bar {
    fn stage(&self, name: &str, total: u64) {
        let bar = if total > 0 {
            indicatif::ProgressBar::new(total).with_style(
                indicatif::ProgressStyle::with_template(
                    "[fp] {prefix} [{bar:30}] {pos}/{len} {percent}% {elapsed_precise} (eta {eta}) {wide_msg}",
                )
                .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar())
                .progress_chars("=> "),
            )
        } else {
            indicatif::ProgressBar::new_spinner().with_style(
                indicatif::ProgressStyle::with_template("[fp] {prefix} {spinner} {pos} {elapsed_precise} {wide_msg}")
                    .unwrap_or_else(|_| indicatif::ProgressStyle::default_spinner()),
            )
        };
        bar.set_prefix(name.to_string());
        bar.enable_steady_tick(Duration::from_millis(200));
        if let Some(old) = self.bar.lock().unwrap_or_else(|e| e.into_inner()).replace(bar) {
            old.finish();
        }
    }

    fn set(&self, done: u64, note: &str) {
        if let Some(bar) = &*self.bar.lock().unwrap_or_else(|e| e.into_inner()) {
            bar.set_position(done);
            bar.set_message(note.to_string());
        }
    }

    fn finish(&self) {
        if let Some(bar) = self.bar.lock().unwrap_or_else(|e| e.into_inner()).take() {
            bar.finish();
        }
    }
}

/// Plain lines on standard error: `[fp] import: 3/12 (25%) E0_1415.csv`, at most one per
/// `every`, and the last one of each stage.
pub struct Lines {
    every: Duration,
    state: Mutex<LineState>,
}

#[derive(Default)]
struct LineState {
    name: String,
    total: u64,
    done: u64,
    note: String,
    started: Option<Instant>,
    printed: Option<Instant>,
}

impl Lines {
    pub fn new(every: Duration) -> Self {
        Lines { every, state: Mutex::new(LineState::default()) }
    }

    /// The line for the state (without the elapsed time when `done` is still going).
    fn line(s: &LineState) -> String {
        let elapsed = s.started.map_or(0.0, |t| t.elapsed().as_secs_f64());
        let mut line = if s.total > 0 {
            format!("[fp] {}: {}/{} ({}%)", s.name, s.done, s.total, s.done * 100 / s.total)
        } else {
            format!("[fp] {}: {}", s.name, s.done)
        };
        line.push_str(&format!(" {elapsed:.1}s"));
        if !s.note.is_empty() {
            line.push(' ');
            line.push_str(&s.note);
        }
        line
    }
}

impl Progress for Lines {
    fn stage(&self, name: &str, total: u64) {
        let mut s = self.state.lock().unwrap_or_else(|e| e.into_inner());
        *s = LineState { name: name.to_string(), total, started: Some(Instant::now()), ..LineState::default() };
        eprintln!("{}", Self::line(&s));
        s.printed = Some(Instant::now());
    }

    fn set(&self, done: u64, note: &str) {
        let mut s = self.state.lock().unwrap_or_else(|e| e.into_inner());
        s.done = done;
        s.note = note.to_string();
        if s.printed.is_none_or(|t| t.elapsed() >= self.every) {
            eprintln!("{}", Self::line(&s));
            s.printed = Some(Instant::now());
        }
    }

    fn finish(&self) {
        let s = self.state.lock().unwrap_or_else(|e| e.into_inner());
        if s.started.is_some() {
            eprintln!("{} done", Self::line(&s));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_line_says_the_stage_how_far_and_what() {
        let s = LineState {
            name: "import".into(),
            total: 12,
            done: 3,
            note: "E0_1415.csv".into(),
            started: Some(Instant::now()),
            printed: None,
        };
        let line = Lines::line(&s);
        assert!(line.starts_with("[fp] import: 3/12 (25%) "), "{line}");
        assert!(line.ends_with(" E0_1415.csv"), "{line}");
        let unknown = LineState { name: "backup".into(), done: 4, ..LineState::default() };
        assert_eq!(Lines::line(&unknown), "[fp] backup: 4 0.0s");
    }
}
