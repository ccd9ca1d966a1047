//! The live progress display of `sluice run` in a terminal: per source, how
//! far it is (percent, rows, rate, ETA); per sink, records sunk and objects.
//! Off when stderr is not a terminal; log lines are printed above the bars.

use std::io::IsTerminal;
use std::sync::atomic::Ordering;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use connect_core::runtime::PipelineStatus;
use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use tokio::sync::watch;

/// The bars while a display is on; log writes go through [`suspended`].
static ACTIVE: OnceLock<MultiProgress> = OnceLock::new();

/// Runs `write` with the bars hidden (and redrawn after), if any are shown.
pub fn suspended<R>(write: impl FnOnce() -> R) -> R {
    match ACTIVE.get() {
        Some(multi) => multi.suspend(write),
        None => write(),
    }
}

/// A running display; [`Display::finish`] clears it.
pub struct Display {
    stop: tokio::sync::oneshot::Sender<()>,
    task: tokio::task::JoinHandle<()>,
}

impl Display {
    /// Starts a display of `pipelines` if stderr is a terminal and `enabled`.
    pub fn start(
        pipelines: Vec<(String, watch::Receiver<PipelineStatus>)>,
        enabled: bool,
    ) -> Option<Display> {
        if !enabled || !std::io::stderr().is_terminal() {
            return None;
        }
        let multi = ACTIVE
            .get_or_init(|| MultiProgress::with_draw_target(ProgressDrawTarget::stderr_with_hz(5)));
        let (stop, mut stopped) = tokio::sync::oneshot::channel();
        let multi = multi.clone();
        let task = tokio::spawn(async move {
            let mut bars: Vec<PipelineBars> = pipelines
                .into_iter()
                .map(|(name, status)| PipelineBars::new(&multi, name, status))
                .collect();
            let mut tick = tokio::time::interval(Duration::from_millis(200));
            loop {
                tokio::select! {
                    _ = &mut stopped => break,
                    _ = tick.tick() => bars.iter_mut().for_each(PipelineBars::update),
                }
            }
            for bars in &mut bars {
                bars.update();
                bars.clear();
            }
            let _ = multi.clear();
        });
        Some(Display { stop, task })
    }

    /// Stops and clears the display, before the summary is printed.
    pub async fn finish(self) {
        let _ = self.stop.send(());
        let _ = self.task.await;
    }
}

struct PipelineBars {
    status: watch::Receiver<PipelineStatus>,
    source: ProgressBar,
    sinks: Vec<ProgressBar>,
    multi: MultiProgress,
    name: String,
    started: Instant,
}

impl PipelineBars {
    fn new(multi: &MultiProgress, name: String, status: watch::Receiver<PipelineStatus>) -> Self {
        let source = multi.add(ProgressBar::new(0));
        source.set_style(spinner_style());
        source.set_prefix(format!("{name} source"));
        Self {
            status,
            source,
            sinks: Vec::new(),
            multi: multi.clone(),
            name,
            started: Instant::now(),
        }
    }

    fn update(&mut self) {
        let status = self.status.borrow().clone();
        let Some(run) = status.run else { return };
        let stats = &run.pipeline;
        let polled = stats.polled.load(Ordering::Relaxed);
        let produced = stats.produced.load(Ordering::Relaxed);
        let rate = polled as f64 / self.started.elapsed().as_secs_f64().max(0.001);
        let (done, total) = (
            stats.progress_done.load(Ordering::Relaxed),
            stats.progress_total.load(Ordering::Relaxed),
        );
        if total > 0 {
            if self.source.length() != Some(total) {
                self.source.set_style(bar_style());
                self.source.set_length(total);
            }
            self.source.set_position(done.min(total));
        } else {
            self.source.tick();
        }
        let restarts = if status.restarts > 0 {
            format!(", {} restarts", status.restarts)
        } else {
            String::new()
        };
        self.source.set_message(format!(
            "{polled} rows read, {produced} produced, {rate:.0} rows/s, {}{restarts}",
            status.state.as_str()
        ));
        while self.sinks.len() < run.sinks.len() {
            let bar = self.multi.add(ProgressBar::new(0));
            bar.set_style(spinner_style());
            bar.set_prefix(format!(
                "{} sink {}",
                self.name,
                run.sinks[self.sinks.len()].0
            ));
            self.sinks.push(bar);
        }
        for ((_, sink), bar) in run.sinks.iter().zip(&self.sinks) {
            bar.set_message(format!(
                "{} records sunk, {} objects, {:.1} MB",
                sink.records.load(Ordering::Relaxed),
                sink.objects.load(Ordering::Relaxed),
                sink.bytes.load(Ordering::Relaxed) as f64 / 1e6
            ));
            bar.tick();
        }
    }

    fn clear(&self) {
        self.source.finish_and_clear();
        for bar in &self.sinks {
            bar.finish_and_clear();
        }
    }
}

fn bar_style() -> ProgressStyle {
    ProgressStyle::with_template(
        "{prefix:.bold} [{bar:30.cyan/blue}] {percent:>3}% {msg} (ETA {eta})",
    )
    .unwrap_or_else(|_| ProgressStyle::default_bar())
    .progress_chars("=> ")
}

fn spinner_style() -> ProgressStyle {
    ProgressStyle::with_template("{prefix:.bold} {spinner} {msg}")
        .unwrap_or_else(|_| ProgressStyle::default_spinner())
}
