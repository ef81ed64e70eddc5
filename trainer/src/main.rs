//! `avm`: the command-line front of avm-trainer. Each subcommand is one pipeline stage.
//!
//! Exit codes: 0 success; 1 other failure; 2 usage or configuration error; 3 data-contract
//! violation; 4 failed quality gate.

use anyhow::{Context, Result};
use avm_trainer::config::PipelineConfig;
use avm_trainer::error::{self, ContractViolations, UsageError};
use avm_trainer::lock::DirLock;
use avm_trainer::stages::{import, preprocess, simulate, validate};

use clap::{Parser, Subcommand};
use std::path::PathBuf;
use std::process::ExitCode;

/// The exit codes, in every `--help` (the error module defines them; `error::Kind` picks one).
const EXIT_CODES: &str = "Exit codes: 0 success; 1 other failure (I/O, internal); 2 usage or configuration error \
(a bad command line, config, checkpoint or stale intermediate); 3 data-contract violation (a recording or \
label file breaks a rule; every broken rule is listed); 4 quality gate failed (nothing was exported or \
registered).";

#[derive(Parser)]
#[command(
    name = "avm",
    version,
    about = "Airborne vibration monitoring: data, features, detector",
    after_help = EXIT_CODES
)]
struct Cli {
    /// Errors only: no progress lines or human summaries (`--json` output is still printed).
    #[arg(short, long, global = true, conflicts_with = "verbose")]
    quiet: bool,
    /// More: also one line per training epoch (for logs, where no progress bar is drawn).
    #[arg(short, long, global = true)]
    verbose: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Generates the simulated fleet (the default data set) into DATA/raw.
    Simulate {
        /// Pipeline config (its `simulate:` section).
        #[arg(long)]
        config: PathBuf,
        /// Output directory (default: the config's raw data directory).
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Converts other recordings (CSV, Parquet, MATLAB v5/v7, WAV) into avm recordings and
    /// labels as an import mapping says (README, "Your own data"; configs/import/ has the CWRU
    /// and FEMTO mappings).
    Import {
        /// The import mapping (YAML).
        #[arg(long)]
        mapping: PathBuf,
        /// Output raw directory (recordings/, labels.csv, import.json), replaced atomically.
        #[arg(long)]
        out: PathBuf,
        /// The manifest table (overrides the mapping's manifest.path).
        #[arg(long)]
        manifest: Option<PathBuf>,
        /// Only manifest rows whose COLUMN holds one of the values (repeatable).
        #[arg(long = "where", value_name = "COLUMN=VALUE[,VALUE...]")]
        filters: Vec<String>,
        /// Cut each file into consecutive recordings of this many seconds (overrides split).
        #[arg(long)]
        split_s: Option<f64>,
        /// Replace a non-empty output directory (its recordings and labels are deleted).
        #[arg(long)]
        force: bool,
        /// Print the import summary as JSON.
        #[arg(long)]
        json: bool,
        /// Input files or globs (default: every file of the manifest that passes the filters).
        files: Vec<String>,
    },
    /// Writes a commented starter config and data contract for your recordings (already
    /// imported into <data>/raw), with the valid range of every field.
    Init {
        /// Project directory: config.yaml and contract.yaml go here.
        dir: PathBuf,
        /// Data directory holding raw/recordings/ and raw/labels.csv (default: DIR/DATA).
        #[arg(long)]
        data: Option<PathBuf>,
        /// Detector name (default: the directory's name).
        #[arg(long)]
        name: Option<String>,
        /// Replace an existing config.yaml / contract.yaml.
        #[arg(long)]
        force: bool,
    },
    /// Checks raw recordings and labels against the data contract.
    Validate {
        /// Pipeline config (names the contract and the raw data).
        #[arg(long)]
        config: PathBuf,
        /// Recordings to check (default: every raw recording and the label file).
        files: Vec<PathBuf>,
    },
    /// Validates and synchronises the raw recordings and computes every window's features
    /// (avm-core) into the window table, in one pass.
    Preprocess {
        /// Pipeline config.
        #[arg(long)]
        config: PathBuf,
        /// Also write the sanitised sample streams to DATA/interim (a debugging aid).
        #[arg(long)]
        interim: bool,
    },
    /// Computes the features (avm-core), splits by flight and fits the scaler.
    Featurize {
        /// Pipeline config.
        #[arg(long)]
        config: PathBuf,
    },
    /// Scores the validation and test splits, calibrates thresholds, reports metrics and plots.
    Evaluate {
        /// Pipeline config.
        #[arg(long)]
        config: PathBuf,
        /// Checkpoint to evaluate (default MODELS/<name>/training/best.json).
        #[arg(long)]
        checkpoint: Option<PathBuf>,
    },
    /// Trains the autoencoder (burn) on the normal training windows.
    Train {
        /// Pipeline config.
        #[arg(long)]
        config: PathBuf,
        /// Checkpoint to continue from (with --resume; default: last.json of the output
        /// directory).
        #[arg(long, requires = "resume")]
        checkpoint: Option<PathBuf>,
        /// Continue a run: the one saved in --checkpoint, or the output directory's last.json.
        #[arg(long)]
        resume: bool,
        /// Stop after this many epochs in total (as if interrupted); resume later.
        #[arg(long)]
        stop_after_epochs: Option<usize>,
        /// Output directory (default MODELS/<name>/training).
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Exports an evaluated checkpoint as a detector version (ONNX, bundle, scaler, thresholds,
    /// signature), validates it in ONNX Runtime, checks the gates and registers it.
    Export {
        /// Pipeline config.
        #[arg(long)]
        config: PathBuf,
        /// Checkpoint (default MODELS/<name>/training/best.json); `avm evaluate` must have
        /// evaluated it.
        #[arg(long)]
        checkpoint: Option<PathBuf>,
        /// Version, major.minor.patch.
        #[arg(long)]
        version: avm_trainer::stages::export::Version,
        /// Replace an existing version.
        #[arg(long)]
        force: bool,
    },
    /// The whole pipeline: data, preprocess, featurize, train, evaluate, export, gates, registry.
    Run {
        /// Pipeline config.
        #[arg(long)]
        config: PathBuf,
        /// Version to register (default: the latest registered + 1 patch, or 1.0.0).
        #[arg(long)]
        version: Option<avm_trainer::stages::export::Version>,
        /// Recompute every stage, and replace the version if it exists.
        #[arg(long)]
        force: bool,
        /// Print the outcome and the registry entry (metrics, gates, artifacts) as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Applies a detector version to recordings: validation against its contract, avm-core
    /// features, scores, verdicts by phase and the alert policy, as on board. Writes per-window
    /// scores, alerts, per-flight summaries and score-over-time plots.
    Score {
        /// The version: its directory (MODELS/<name>/<version>), or <name>@<version>,
        /// <name>@production or <name>@latest from the registry.
        #[arg(long)]
        model: String,
        /// Registry directory (for <name>@...).
        #[arg(long, default_value = "REGISTRY")]
        registry: PathBuf,
        /// Output directory (replaced).
        #[arg(long, default_value = "avm-scores")]
        out: PathBuf,
        /// Label file (labels.csv format): windows get labels, flights detection delays.
        #[arg(long)]
        labels: Option<PathBuf>,
        /// Print the summary as JSON instead of the table.
        #[arg(long)]
        json: bool,
        /// With --labels: the gross-fault alert deadline after onset the summary reports, s.
        #[arg(long, default_value_t = 60.0)]
        deadline_s: f64,
        /// Recordings (Parquet or CSV with their metadata).
        #[arg(required = true)]
        recordings: Vec<PathBuf>,
    },
    /// Inspects and promotes registered detector versions.
    Registry {
        /// Registry directory.
        #[arg(long, default_value = "REGISTRY")]
        registry: PathBuf,
        #[command(subcommand)]
        action: RegistryAction,
    },
}

#[derive(Subcommand)]
enum RegistryAction {
    /// One line per version.
    List,
    /// One version's entry (JSON).
    Show {
        /// Detector name.
        detector: String,
        /// Version.
        version: String,
    },
    /// Makes a version the production one (the previous production version is retired).
    Promote {
        /// Detector name.
        detector: String,
        /// Version.
        version: String,
    },
    /// Checks every version's files against the registered sha256s.
    Verify,
}

/// `println!` that ends the process quietly when stdout is a closed pipe (`avm ... | head`),
/// like every Unix tool, instead of panicking. Always printed: results asked for (`--json`).
macro_rules! jsonln {
    ($($t:tt)*) => {{
        use std::io::Write as _;
        if let Err(e) = writeln!(std::io::stdout().lock(), $($t)*) {
            stdout_failed(e);
        }
    }};
}

/// [`jsonln!`] for human summaries: silent with `-q`.
macro_rules! outln {
    ($($t:tt)*) => {{
        if !avm_trainer::ui::quiet() {
            jsonln!($($t)*);
        }
    }};
}

/// `print!` with the behaviour of [`outln!`].
macro_rules! out {
    ($($t:tt)*) => {{
        use std::io::Write as _;
        if !avm_trainer::ui::quiet() && let Err(e) = write!(std::io::stdout().lock(), $($t)*) {
            stdout_failed(e);
        }
    }};
}

/// A closed pipe ends the process with exit code 0 (its reader wanted no more); any other
/// stdout error is reported with exit code 1.
fn stdout_failed(e: std::io::Error) -> ! {
    if e.kind() == std::io::ErrorKind::BrokenPipe {
        std::process::exit(0);
    }
    eprintln!("error: writing to standard output: {e}");
    std::process::exit(i32::from(error::EXIT_OTHER));
}

fn load(config: &std::path::Path) -> Result<PipelineConfig> {
    PipelineConfig::load(config)
}

/// The trees a command writes, locked in this fixed order (no deadlock between commands).
struct Locks(#[allow(dead_code)] Vec<DirLock>);

fn lock(command: &str, dirs: &[&std::path::Path]) -> Result<Locks> {
    dirs.iter().map(|d| DirLock::acquire(d, command)).collect::<Result<Vec<_>>>().map(Locks)
}

fn model_dir(cfg: &PipelineConfig) -> PathBuf {
    cfg.paths.detector(&cfg.name)
}

fn run(cli: Cli) -> Result<()> {
    match cli.command {
        Command::Simulate { config, out } => {
            let cfg = load(&config)?;
            let sim = cfg
                .simulate
                .clone()
                .ok_or_else(|| UsageError(format!("config {}: no `simulate:` section", config.display())))?;
            if sim.stream {
                if out.is_some() {
                    return Err(UsageError(format!(
                        "config {}: simulate.stream writes the config's data directory (labels and the window table); --out is not supported with it",
                        config.display()
                    ))
                    .into());
                }
                let _l = lock("simulate", &[cfg.paths.data.as_path()])?;
                let (s, m) = preprocess::simulate_streamed(&cfg, &sim)?;
                outln!(
                    "{s}\nas a feature stream (no raw recordings written): {m}\n-> {} and {}",
                    cfg.paths.raw().display(),
                    cfg.paths.processed().display()
                );
                return Ok(());
            }
            let out = out.unwrap_or_else(|| cfg.paths.raw());
            let _l = lock("simulate", &[parent_of(&out)])?;
            let s = simulate::run(&sim, &out)?;
            outln!("{s}\n-> {}", out.display());
        }
        Command::Import { mapping, out, manifest, filters, split_s, force, json, files } => {
            let mapping = avm_trainer::formats::mapping::Mapping::load(&mapping)?;
            let _l = lock("import", &[parent_of(&out)])?;
            let opts = import::Options { manifest, filters, split_s, force };
            let s = import::run(&mapping, &files, &out, &opts)?;
            if json {
                jsonln!("{}", serde_json::to_string_pretty(&s)?);
            } else {
                outln!(
                    "imported {} recordings ({} label intervals) from {} files ({} skipped by their label state) into {}",
                    s.recordings,
                    s.labels,
                    s.files,
                    s.skipped,
                    out.display()
                );
            }
        }
        Command::Init { dir, data, name, force } => {
            let data = data.unwrap_or_else(|| dir.join("DATA"));
            let name = match name {
                Some(n) => n,
                None => std::fs::canonicalize(&dir)
                    .unwrap_or_else(|_| dir.clone())
                    .file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_else(|| "detector".into()),
            };
            outln!("{}", avm_trainer::stages::init::run(&dir, &data, &name, force)?);
        }
        Command::Validate { config, files } => {
            outln!("{}", validate::run(&load(&config)?, &files)?);
        }
        Command::Preprocess { config, interim } => {
            let cfg = load(&config)?;
            let _l = lock("preprocess", &[&cfg.paths.data])?;
            let m = preprocess::run_with(&cfg, preprocess::Options { interim })?;
            let interim =
                if interim { format!(" and {}", cfg.paths.interim().display()) } else { String::new() };
            outln!("{m} -> {}{interim}", cfg.paths.processed().display());
        }
        Command::Train { config, checkpoint, resume, stop_after_epochs, out } => {
            let cfg = load(&config)?;
            let _l = lock("train", &[&cfg.paths.data, &model_dir(&cfg)])?;
            let mut opts = avm_trainer::stages::train::TrainOptions {
                resume_from: None,
                stop_after_epochs,
                out_dir: out,
            };
            if resume {
                opts.resume_from =
                    Some(checkpoint.unwrap_or_else(|| opts.dir(&cfg).join(avm_trainer::stages::train::LAST)));
            }
            let ck = avm_trainer::stages::train::run(&cfg, &opts)?;
            let last = ck.history.last();
            outln!(
                "trained {} epochs: best validation loss {:.6} at epoch {} (last train loss {:.6}) -> {}",
                ck.epoch,
                ck.best_val_loss,
                ck.best_epoch,
                last.map_or(f64::NAN, |h| h.train_loss),
                opts.dir(&cfg).display()
            );
        }
        Command::Evaluate { config, checkpoint } => {
            let cfg = load(&config)?;
            let _l = lock("evaluate", &[&cfg.paths.data, &model_dir(&cfg)])?;
            let r = avm_trainer::stages::evaluate::run(&cfg, checkpoint.as_deref())?;
            outln!("{r}\n-> {}", avm_trainer::stages::evaluate::evaluation_dir(&cfg).display());
        }
        Command::Export { config, checkpoint, version, force } => {
            let cfg = load(&config)?;
            let _l = lock("export", &[&cfg.paths.data, &model_dir(&cfg), &cfg.paths.registry])?;
            let e = avm_trainer::stages::pipeline::export_version(
                &cfg,
                &config,
                checkpoint.as_deref(),
                version,
                force,
            )?;
            outln!("registered {} {} (candidate) -> {}", e.detector, e.version, e.path.display());
            out!("{e}");
        }
        Command::Score { model, registry, out, labels, json, deadline_s, recordings } => {
            use avm_trainer::stages::score;
            let dir = score::resolve(&model, &registry)?;
            let m = score::load(&dir)?;
            let labels = labels.map(|p| avm_trainer::formats::labels::read(&p)).transpose()?;
            let _l = lock("score", &[parent_of(&out)])?;
            if !(deadline_s.is_finite() && deadline_s > 0.0) {
                return Err(UsageError(format!(
                    "--deadline-s {deadline_s}: must be a positive number of seconds"
                ))
                .into());
            }
            let s = score::score(&m, &recordings, labels.as_deref(), deadline_s)?;
            score::write(&s, &out)?;
            if json {
                jsonln!("{}", serde_json::to_string_pretty(&s)?);
            } else {
                out!("{}", score::table(&s));
                outln!("-> {}", out.display());
            }
        }
        Command::Run { config, version, force, json } => {
            let cfg = load(&config)?;
            let _l = lock("run", &[&cfg.paths.data, &model_dir(&cfg), &cfg.paths.registry])?;
            let opts = avm_trainer::stages::pipeline::RunOptions { version, force };
            let outcome = avm_trainer::stages::pipeline::run(&cfg, &config, &opts)?;
            if json {
                let (status, e) = match &outcome {
                    avm_trainer::stages::pipeline::RunOutcome::Registered(e) => ("registered", e),
                    avm_trainer::stages::pipeline::RunOutcome::Unchanged(e) => ("unchanged", e),
                };
                jsonln!(
                    "{}",
                    serde_json::to_string_pretty(&serde_json::json!({"outcome": status, "entry": e}))?
                );
                return Ok(());
            }
            match outcome {
                avm_trainer::stages::pipeline::RunOutcome::Registered(e) => {
                    outln!("registered {} {} -> {}", e.detector, e.version, e.path.display());
                    out!("{e}");
                }
                avm_trainer::stages::pipeline::RunOutcome::Unchanged(e) => {
                    outln!(
                        "unchanged: {} {} is this model already -> {}",
                        e.detector,
                        e.version,
                        e.path.display()
                    );
                    out!("{e}");
                }
            }
        }
        Command::Registry { registry, action } => {
            let _l = lock("registry", &[&registry])?;
            let mut reg = avm_trainer::release::registry::Registry::open(&registry)?;
            match action {
                RegistryAction::List => outln!("{reg}"),
                RegistryAction::Show { detector, version } => {
                    let e = reg.get(&detector, &version).ok_or_else(|| {
                        UsageError(format!("no version {version} of {detector} in {}", registry.display()))
                    })?;
                    jsonln!("{}", serde_json::to_string_pretty(e)?);
                }
                RegistryAction::Promote { detector, version } => {
                    reg.promote(&detector, &version)?;
                    outln!("{detector} {version} is now in production");
                    // The MLflow Model Registry follows when a tracking server is configured
                    // (best effort: the registry above is the record).
                    if let Ok(uri) = std::env::var("MLFLOW_TRACKING_URI")
                        && uri.starts_with("http")
                    {
                        match avm_trainer::tracking::mlflow::promote_alias(&uri, &detector, &version) {
                            Ok(mv) => outln!("MLflow: {detector} model version {mv} has alias production"),
                            Err(e) => eprintln!("tracking: MLflow alias production not set: {e:#}"),
                        }
                    }
                }
                RegistryAction::Verify => {
                    let problems = reg.verify();
                    if !problems.is_empty() {
                        anyhow::bail!("registry {}:\n  {}", registry.display(), problems.join("\n  "));
                    }
                    outln!("{} version(s): every artifact matches its sha256", reg.entries.len());
                }
            }
        }
        Command::Featurize { config } => {
            let cfg = load(&config)?;
            let _l = lock("featurize", &[&cfg.paths.data])?;
            let m = avm_trainer::stages::featurize::run(&cfg)?;
            outln!("{m} -> {}", avm_trainer::stages::featurize::features_dir(&cfg).display());
        }
    }
    Ok(())
}

/// The directory an output directory lives in (its lock is there).
fn parent_of(p: &std::path::Path) -> &std::path::Path {
    p.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(std::path::Path::new("."))
}

/// Keeps freed memory in the process instead of returning it to the kernel. With glibc's
/// defaults every Parquet/Arrow buffer above 128 KiB is a fresh `mmap`, faulted in page by page
/// and unmapped again: preprocess spent 0.8 of its 4 CPU seconds in the kernel doing that
/// (perf, issue 16). Large blocks now come from the heap and stay for reuse: preprocess's wall
/// time on the default fleet fell from 2.0 s to 1.6 s, its peak RSS rose from 33 to 40 MB (and
/// still does not grow with a recording's length). No number depends on the allocator.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn keep_freed_memory() {
    const LIMIT_BYTES: libc::c_int = 256 << 20;
    // SAFETY: mallopt only sets allocator parameters; called first thing in main, before any
    // other thread exists. A refusal (return 0) leaves glibc's defaults, which are correct too.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, LIMIT_BYTES);
        libc::mallopt(libc::M_TRIM_THRESHOLD, LIMIT_BYTES);
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn keep_freed_memory() {}

fn main() -> ExitCode {
    keep_freed_memory();
    avm_trainer::guard::install_panic_hook();
    // The exit codes in every subcommand's --help too.
    let cmd = <Cli as clap::CommandFactory>::command().mut_subcommands(|s| s.after_help(EXIT_CODES));
    let cli = match <Cli as clap::FromArgMatches>::from_arg_matches(&cmd.get_matches()) {
        Ok(c) => c,
        Err(e) => e.exit(),
    };
    avm_trainer::ui::set_level(if cli.quiet { -1 } else { i8::from(cli.verbose) });
    match run(cli).context("avm failed") {
        Ok(()) => {
            use std::io::Write as _;
            if let Err(e) = std::io::stdout().flush() {
                stdout_failed(e);
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            let code = error::exit_code(&e);
            if let Some(v) = e.downcast_ref::<ContractViolations>() {
                eprintln!("error: {v}");
            } else {
                eprintln!("error: {e:#}");
            }
            ExitCode::from(code)
        }
    }
}
