//! What a running transfer shows: bars per file and in total on a terminal,
//! plain lines when stderr is not one, or JSON lines on stdout for scripts.

use std::{
    io::Write,
    sync::{
        atomic::{AtomicBool, AtomicU64, Ordering},
        Arc, Mutex,
    },
    time::{Duration, Instant},
};

use indicatif::{HumanBytes, HumanDuration, MultiProgress, ProgressBar, ProgressStyle};
use serde_json::{json, Value};

use super::failure::Failure;

/// How progress is shown.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// indicatif bars on stderr (stderr is a terminal).
    Bars,
    /// A line per file every few seconds on stderr.
    Plain,
    /// One JSON object per line on stdout; human notes still go to stderr.
    Json,
}

impl Mode {
    /// `--json` wins; otherwise bars only when stderr is a terminal.
    pub fn choose(json: bool) -> Mode {
        use std::io::IsTerminal;
        if json {
            Mode::Json
        } else if std::io::stderr().is_terminal() {
            Mode::Bars
        } else {
            Mode::Plain
        }
    }
}

/// Counters of one file, written by the transfer and read by the display.
pub struct FileProgress {
    pub name: String,
    /// Bytes the file has (resumed ones included).
    pub have: AtomicU64,
    /// Bytes received from the server by this run (the rate is computed from these).
    pub fetched: AtomicU64,
    pub size: AtomicU64,
    pub active: AtomicBool,
}

impl FileProgress {
    fn new(name: &str, size: u64) -> FileProgress {
        FileProgress {
            name: name.to_string(),
            have: AtomicU64::new(0),
            fetched: AtomicU64::new(0),
            size: AtomicU64::new(size),
            active: AtomicBool::new(false),
        }
    }
}

/// Smoothed rate of a growing counter.
#[derive(Default)]
struct Meter {
    last: Option<(Instant, u64)>,
    rate: f64,
}

impl Meter {
    fn sample(&mut self, value: u64) -> f64 {
        let now = Instant::now();
        if let Some((t, v)) = self.last {
            let dt = now.duration_since(t).as_secs_f64();
            if dt >= 0.05 {
                let inst = value.saturating_sub(v) as f64 / dt;
                self.rate = if self.rate == 0.0 {
                    inst
                } else {
                    0.7 * self.rate + 0.3 * inst
                };
                self.last = Some((now, value));
            }
        } else {
            self.last = Some((now, value));
        }
        self.rate
    }
}

fn eta(remaining: u64, rate: f64) -> Option<Duration> {
    (rate >= 1.0).then(|| Duration::from_secs_f64(remaining as f64 / rate))
}

fn rate_text(rate: f64, remaining: u64) -> String {
    let mut s = format!("{}/s", HumanBytes(rate as u64));
    if let Some(e) = eta(remaining, rate) {
        s.push_str(&format!(", ETA {}", HumanDuration(e)));
    }
    s
}

struct Entry {
    progress: Arc<FileProgress>,
    bar: Option<ProgressBar>,
    meter: Meter,
}

struct Inner {
    files: Vec<Entry>,
    total_bar: Option<ProgressBar>,
    total_meter: Meter,
    last_emit: Option<Instant>,
}

/// The display of one command run.
pub struct Reporter {
    mode: Mode,
    bars: Option<MultiProgress>,
    inner: Mutex<Inner>,
}

fn bar_style(total: bool) -> ProgressStyle {
    let template = if total {
        "{prefix:>24.bold} [{bar:30}] {bytes:>10}/{total_bytes:<10} {msg}"
    } else {
        "{prefix:>24} [{bar:30}] {bytes:>10}/{total_bytes:<10} {msg}"
    };
    ProgressStyle::with_template(template)
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .progress_chars("=> ")
}

/// Shortens a file name to fit the bar's label column.
fn label(name: &str) -> String {
    let chars: Vec<char> = name.chars().collect();
    if chars.len() <= 24 {
        name.to_string()
    } else {
        let tail: String = chars[chars.len() - 23..].iter().collect();
        format!("…{tail}")
    }
}

impl Reporter {
    pub fn new(mode: Mode) -> Reporter {
        Reporter {
            mode,
            bars: (mode == Mode::Bars).then(MultiProgress::new),
            inner: Mutex::new(Inner {
                files: Vec::new(),
                total_bar: None,
                total_meter: Meter::default(),
                last_emit: None,
            }),
        }
    }

    pub fn mode(&self) -> Mode {
        self.mode
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A line for the person watching (stderr, above any bars).
    pub fn note(&self, text: &str) {
        match &self.bars {
            Some(mp) => {
                let _ = mp.println(text);
            }
            None => eprintln!("{text}"),
        }
    }

    /// A JSON line on stdout (only in `--json` mode).
    pub fn event(&self, value: Value) {
        if self.mode == Mode::Json {
            let mut out = std::io::stdout().lock();
            let _ = writeln!(out, "{value}");
            let _ = out.flush();
        }
    }

    /// Registers a file to show; `size` may still be 0 (unknown until prepared).
    pub fn add_file(&self, name: &str, size: u64) -> Arc<FileProgress> {
        let progress = Arc::new(FileProgress::new(name, size));
        let mut inner = self.lock();
        inner.files.push(Entry {
            progress: progress.clone(),
            bar: None,
            meter: Meter::default(),
        });
        progress
    }

    /// Marks a file as transferring now (its bar appears).
    pub fn start_file(&self, progress: &Arc<FileProgress>) {
        progress.active.store(true, Ordering::Relaxed);
        let mut inner = self.lock();
        // The rate counts from here, not from the first display tick.
        if let Some(e) = inner
            .files
            .iter_mut()
            .find(|e| Arc::ptr_eq(&e.progress, progress))
        {
            e.meter.sample(progress.fetched.load(Ordering::Relaxed));
        }
        let Some(mp) = &self.bars else { return };
        if inner.total_bar.is_none() && inner.files.len() > 1 {
            let total = mp.add(ProgressBar::new(0).with_style(bar_style(true)));
            total.set_prefix("total");
            inner.total_bar = Some(total);
        }
        let total_bar = inner.total_bar.clone();
        if let Some(entry) = inner
            .files
            .iter_mut()
            .find(|e| Arc::ptr_eq(&e.progress, progress))
        {
            let bar = ProgressBar::new(progress.size.load(Ordering::Relaxed))
                .with_style(bar_style(false));
            let bar = match &total_bar {
                Some(t) => mp.insert_before(t, bar),
                None => mp.add(bar),
            };
            bar.set_prefix(label(&progress.name));
            entry.bar = Some(bar);
        }
    }

    /// Redraws bars, or writes a progress line when one is due. Call often.
    pub fn tick(&self) {
        let mut inner = self.lock();
        let due = match self.mode {
            Mode::Bars => Duration::ZERO,
            Mode::Json => Duration::from_secs(1),
            Mode::Plain => Duration::from_secs(5),
        };
        let now = Instant::now();
        let emit = inner.last_emit.is_none_or(|t| now.duration_since(t) >= due);
        if !emit {
            return;
        }
        inner.last_emit = Some(now);
        let (mut total_have, mut total_size, mut total_fetched) = (0u64, 0u64, 0u64);
        for e in &inner.files {
            total_have += e.progress.have.load(Ordering::Relaxed);
            total_size += e.progress.size.load(Ordering::Relaxed);
            total_fetched += e.progress.fetched.load(Ordering::Relaxed);
        }
        let total_rate = inner.total_meter.sample(total_fetched);
        let mut events = Vec::new();
        for e in inner.files.iter_mut() {
            let p = &e.progress;
            if !p.active.load(Ordering::Relaxed) {
                continue;
            }
            let have = p.have.load(Ordering::Relaxed);
            let size = p.size.load(Ordering::Relaxed);
            let rate = e.meter.sample(p.fetched.load(Ordering::Relaxed));
            let remaining = size.saturating_sub(have);
            match self.mode {
                Mode::Bars => {
                    if let Some(bar) = &e.bar {
                        bar.set_length(size);
                        bar.set_position(have);
                        bar.set_message(rate_text(rate, remaining));
                    }
                }
                Mode::Plain => {
                    let pct = (have * 100).checked_div(size).unwrap_or(100);
                    eprintln!(
                        "{}: {pct}% ({} of {}), {}",
                        p.name,
                        HumanBytes(have),
                        HumanBytes(size),
                        rate_text(rate, remaining)
                    );
                }
                Mode::Json => events.push(json!({
                    "event": "progress",
                    "file": p.name,
                    "bytes": have,
                    "size": size,
                    "total_bytes": total_have,
                    "total_size": total_size,
                    "bytes_per_second": rate.round() as u64,
                    "eta_seconds": eta(remaining, rate).map(|d| d.as_secs()),
                })),
            }
        }
        if let Some(t) = &inner.total_bar {
            t.set_length(total_size);
            t.set_position(total_have);
            t.set_message(rate_text(total_rate, total_size.saturating_sub(total_have)));
        }
        drop(inner);
        for e in events {
            self.event(e);
        }
    }

    /// A file finished (verified or not): bar closed, `line` printed.
    pub fn end_file(&self, progress: &Arc<FileProgress>, line: Option<&str>) {
        progress.active.store(false, Ordering::Relaxed);
        let bar = {
            let mut inner = self.lock();
            inner
                .files
                .iter_mut()
                .find(|e| Arc::ptr_eq(&e.progress, progress))
                .and_then(|e| e.bar.take())
        };
        if let Some(bar) = bar {
            bar.set_position(progress.have.load(Ordering::Relaxed));
            bar.finish_and_clear();
        }
        if let Some(line) = line {
            self.note(line);
        }
    }

    /// Clears the display and reports a failure (stderr; a JSON line too).
    pub fn failed(&self, failure: &Failure) {
        self.clear();
        eprintln!("error: {failure}");
        self.event(json!({
            "event": "error",
            "kind": failure.kind.name(),
            "exit_code": failure.kind.exit_code(),
            "message": failure.message,
        }));
    }

    /// Removes every bar (before the last lines are printed).
    pub fn clear(&self) {
        let bars = {
            let mut inner = self.lock();
            let mut bars: Vec<ProgressBar> = inner
                .files
                .iter_mut()
                .filter_map(|e| e.bar.take())
                .collect();
            bars.extend(inner.total_bar.take());
            bars
        };
        for b in bars {
            b.finish_and_clear();
        }
        if let Some(mp) = &self.bars {
            let _ = mp.clear();
        }
    }
}
