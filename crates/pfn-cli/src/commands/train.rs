//! `pfn train`: train a model from a TOML run configuration, with checkpoints next to the model
//! file and exact resume.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::Result;

use crate::distributed::Ranks;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use pfn_train::{
    train_to_files, RunConfig, RunFilesError, RunOptions, Start, StartInfo, StepReport,
    TrainObserver, TrainSummary, ValidationReport,
};

/// Arguments of `pfn train`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Run configuration (TOML; see configs/ for examples).
    #[arg(long)]
    pub config: PathBuf,
    /// Model file to write (default: the configuration's file name with `.pfn`, in the current
    /// directory). Checkpoints go to the same path with `.ckpt` appended.
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Continue from the checkpoint next to the model file (the configuration must match it,
    /// except for run.threads and the checkpoint, validation and time settings).
    #[arg(long)]
    pub resume: bool,
    /// With --resume: continue a finished or stopped run with a larger budget. budget.steps (which
    /// must exceed the checkpoint's step) and the learning-rate schedule keys (optimizer.lr,
    /// warmup_steps, schedule, min_lr) may then differ from the checkpoint's; the schedule is
    /// evaluated at the checkpoint's step, so a longer cosine schedule is a warm restart.
    #[arg(long, requires = "resume")]
    pub extend: bool,
    /// Print only the final summary.
    #[arg(long)]
    pub quiet: bool,
}

/// The checkpoint written next to a model file: `<model>.ckpt` (the rule lives in `pfn-train`).
pub use pfn_train::checkpoint_path;

/// Progress on stderr: a progress bar on a terminal, plain log lines otherwise.
struct Progress {
    bar: Option<ProgressBar>,
    quiet: bool,
    last_log: Instant,
    log_every_steps: u64,
    start_step: u64,
    /// Seconds of all steps' phases, and of their all-reduce part (data-parallel runs).
    step_seconds: f64,
    communication_seconds: f64,
}

impl Progress {
    fn new(quiet: bool) -> Self {
        Self {
            bar: None,
            quiet,
            last_log: Instant::now(),
            log_every_steps: 1,
            start_step: 0,
            step_seconds: 0.0,
            communication_seconds: 0.0,
        }
    }

    fn line(&self, text: &str) {
        if self.quiet {
            return;
        }
        match &self.bar {
            Some(bar) => bar.println(text),
            None => eprintln!("{text}"),
        }
    }
}

fn step_message(r: &StepReport) -> String {
    format!(
        "loss {:.4}  lr {:.2e}  {:.0} datasets/s  wait {:.1}%{}",
        r.loss,
        r.lr,
        r.datasets_per_second,
        100.0 * r.wait_share,
        if r.skipped { "  (step skipped)" } else { "" }
    )
}

impl TrainObserver for Progress {
    fn on_start(&mut self, info: &StartInfo) {
        self.start_step = info.start_step;
        if self.quiet {
            return;
        }
        let budget = match (info.total_steps, info.max_seconds) {
            (Some(s), Some(m)) => format!("{s} steps or {:.1} min", m / 60.0),
            (Some(s), None) => format!("{s} steps"),
            (None, Some(m)) => format!("{:.1} min", m / 60.0),
            (None, None) => "no limit".into(),
        };
        eprintln!(
            "training {} parameters on {} threads, {} datasets per step, budget {budget}{}; validation: {} datasets at context sizes {:?}",
            info.num_params,
            info.threads,
            info.datasets_per_step,
            if info.start_step > 0 {
                format!(", resuming at step {}", info.start_step)
            } else {
                String::new()
            },
            info.validation_datasets,
            info.validation_context_sizes
        );
        if std::io::stderr().is_terminal() {
            let bar = match info.total_steps {
                Some(total) => {
                    let bar = ProgressBar::new(total);
                    let style = ProgressStyle::with_template(
                        "{bar:30} {pos}/{len} steps [{elapsed_precise} < {eta_precise}] {msg}",
                    )
                    .unwrap_or_else(|_| ProgressStyle::default_bar());
                    bar.set_style(style);
                    bar
                }
                None => {
                    let bar = ProgressBar::new_spinner();
                    let style = ProgressStyle::with_template(
                        "{spinner} step {pos} [{elapsed_precise}] {msg}",
                    )
                    .unwrap_or_else(|_| ProgressStyle::default_spinner());
                    bar.set_style(style);
                    bar
                }
            };
            bar.set_draw_target(ProgressDrawTarget::stderr_with_hz(4));
            bar.set_position(info.start_step);
            self.bar = Some(bar);
        } else {
            self.log_every_steps = info
                .total_steps
                .map_or(100, |t| (t.saturating_sub(info.start_step) / 50).max(1));
        }
    }

    fn on_step(&mut self, r: &StepReport) {
        self.step_seconds += r.phases.total();
        self.communication_seconds += r.phases.communication;
        if self.quiet {
            return;
        }
        if let Some(bar) = &self.bar {
            bar.set_position(r.step);
            bar.set_message(step_message(r));
            return;
        }
        let due = (r.step - self.start_step).is_multiple_of(self.log_every_steps)
            || self.last_log.elapsed() >= Duration::from_secs(30)
            || r.total_steps == Some(r.step);
        if due {
            self.last_log = Instant::now();
            let total = r.total_steps.map_or(String::new(), |t| format!("/{t}"));
            eprintln!(
                "step {}{total}  {}  {:.0} s",
                r.step,
                step_message(r),
                r.seconds
            );
        }
    }

    fn on_validation(&mut self, r: &ValidationReport) {
        self.line(&format!(
            "step {}: validation loss {:.4} (best {:.4}, {:.1} s)",
            r.step, r.loss, r.best, r.seconds
        ));
    }

    fn on_checkpoint(&mut self, step: u64, path: &Path) {
        self.line(&format!("step {step}: checkpoint {}", path.display()));
    }

    fn on_finish(&mut self, _summary: &TrainSummary) {
        if let Some(bar) = self.bar.take() {
            bar.finish_and_clear();
        }
    }
}

fn default_out(config: &Path) -> PathBuf {
    let stem = config
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| "model".into());
    PathBuf::from(format!("{stem}.pfn"))
}

/// Runs the subcommand: in this process alone, or, when built with the `mpi` feature and started
/// by `mpiexec -n R`, data-parallel on R ranks (rank 0 reports and writes the files). Under MPI an
/// error on any rank ends every rank (printed with its rank) instead of leaving them waiting.
pub fn run(args: &Args) -> Result<()> {
    let ranks = Ranks::start()?;
    if ranks.size() == 1 {
        return run_on(args, &ranks);
    }
    if let Err(e) = run_on(args, &ranks) {
        eprintln!("error: rank {} of {}: {e:#}", ranks.rank(), ranks.size());
        ranks.abort(1);
    }
    Ok(())
}

fn run_on(args: &Args, ranks: &Ranks) -> Result<()> {
    let mut config = RunConfig::load(&args.config)?;
    match config.run.world_size {
        Some(w) if w != ranks.size() => anyhow::bail!(
            "{}: run.world_size = {w}, but the run was started with {} rank(s){}",
            args.config.display(),
            ranks.size(),
            if cfg!(feature = "mpi") {
                format!(" (start it with mpiexec -n {w})")
            } else {
                " (this pfn was built without the mpi feature)".into()
            }
        ),
        _ if ranks.size() > 1 => config.run.world_size = Some(ranks.size()),
        _ => {}
    }
    let leader = ranks.rank() == 0;
    let quiet = args.quiet || !leader;
    let out = args
        .out
        .clone()
        .unwrap_or_else(|| default_out(&args.config));
    if let Some(threads) = config.run.threads {
        // The prior's sampling runs on rayon's global pool; keep it to the configured threads.
        // (An error only means the pool already exists.)
        let _ = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build_global();
    }
    let start = match (args.resume, args.extend) {
        (false, _) => Start::Fresh,
        (true, false) => Start::Resume,
        (true, true) => Start::Extend,
    };
    if start == Start::Fresh && !quiet && std::io::stderr().is_terminal() {
        eprintln!(
            "preparing: {} prior samples for the bucket borders, validation set",
            config.borders.samples
        );
    }
    if leader && ranks.size() > 1 && !args.quiet {
        eprintln!(
            "data-parallel on {} MPI ranks: {} datasets per rank per micro-batch, {} per step in all",
            ranks.size(),
            config.budget.batch_size,
            config.datasets_per_step()
        );
    }
    let mut progress = Progress::new(quiet);
    let options = RunOptions {
        collective: Some(ranks.collective()),
        ..RunOptions::default()
    };
    let run =
        train_to_files(config, None, &out, start, options, &mut progress).map_err(|e| match e {
            RunFilesError::NoCheckpoint { path } => anyhow::anyhow!(
                "--resume: no checkpoint at {} (train without --resume to start a new run)",
                path.display()
            ),
            RunFilesError::Train { context, source } if context == "starting the run" => {
                anyhow::Error::new(*source).context(args.config.display().to_string())
            }
            other => other.into(),
        })?;
    if !leader {
        return Ok(());
    }
    let (trainer, summary, ckpt) = (&run.trainer, &run.summary, &run.checkpoint);
    println!(
        "trained {} steps ({} datasets) in {:.1} s this session ({:.1} s in all): {:.2} steps/s, {:.1} datasets/s; loader: waited {:.2}% of the training time after the first batch ({:.3} s), sampling took {:.1} s in the background",
        summary.end_step - summary.start_step,
        (summary.end_step - summary.start_step) * trainer.config().datasets_per_step(),
        summary.session_seconds,
        summary.total_seconds,
        summary.steps_per_second,
        summary.datasets_per_second,
        100.0 * summary.wait_share,
        summary.loader.first_wait.as_secs_f64(),
        summary.loader.total_sampling.as_secs_f64()
    );
    if let Some(v) = summary.final_validation_loss {
        println!(
            "final validation loss {v:.4} (last training loss {:.4})",
            summary.last_loss
        );
    }
    if ranks.size() > 1 && progress.step_seconds > 0.0 {
        println!(
            "all-reduce of gradients and losses over {} ranks (waiting for the slowest rank included): {:.1}% of the step time",
            ranks.size(),
            100.0 * progress.communication_seconds / progress.step_seconds
        );
    }
    if summary.skipped_steps > 0 {
        println!(
            "{} steps were skipped (non-finite loss or gradient)",
            summary.skipped_steps
        );
    }
    if summary.stop.is_complete() {
        println!("model: {} (checkpoint: {})", out.display(), ckpt.display());
    } else {
        println!(
            "stopped before the budget; continue with --resume (checkpoint: {})",
            ckpt.display()
        );
    }
    Ok(())
}
