//! The one place a run's metrics are recorded. Stages call [`MetricLog::record`]; the log is
//! written as JSON lines (`{"name": .., "step": .., "value": ..}`) beside the run's outputs,
//! and is what the TensorBoard and MLflow writers read.

pub mod mlflow;
pub mod mlmodel;
pub mod plots;
pub mod tensorboard;

pub use crate::config::TrackingConfig;
use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// One scalar at one step.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct Record {
    /// Metric name (`train/loss`, `val/loss`, `test/auc`, ...).
    pub name: String,
    /// Step (the epoch for training curves, 0 for final metrics).
    pub step: usize,
    /// Value.
    pub value: f64,
}

/// An append-only metric log backed by a JSON-lines file. With a [`Live`] attached, every record
/// also goes to TensorBoard and MLflow at the end of its epoch ([`MetricLog::epoch_end`]).
pub struct MetricLog {
    path: PathBuf,
    records: Vec<Record>,
    live: Option<std::sync::Arc<std::sync::Mutex<Live>>>,
}

impl std::fmt::Debug for MetricLog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MetricLog").field("path", &self.path).field("records", &self.records.len()).finish()
    }
}

impl MetricLog {
    /// Opens `path`. With `keep_up_to = Some(step)` the records of earlier steps are kept (a
    /// resumed run continues the log); with `None` the log starts empty.
    pub fn open(path: &Path, keep_up_to: Option<usize>) -> Result<MetricLog> {
        let mut records = Vec::new();
        if let (Some(max), true) = (keep_up_to, path.exists()) {
            let text =
                std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
            for line in text.lines().filter(|l| !l.trim().is_empty()) {
                let r: Record =
                    serde_json::from_str(line).with_context(|| format!("parsing {}", path.display()))?;
                if r.step <= max {
                    records.push(r);
                }
            }
        }
        Ok(MetricLog { path: path.to_path_buf(), records, live: None })
    }

    /// Sends the records made from now on to `live` too.
    pub fn attach(&mut self, live: std::sync::Arc<std::sync::Mutex<Live>>) {
        self.live = Some(live);
    }

    /// Records one value.
    pub fn record(&mut self, name: &str, step: usize, value: f64) {
        let r = Record { name: name.to_string(), step, value };
        if let Some(l) = &self.live {
            l.lock().unwrap_or_else(|e| e.into_inner()).pending.push(r.clone());
        }
        self.records.push(r);
    }

    /// An epoch's records are complete: the attached [`Live`] sends them now.
    pub fn epoch_end(&mut self) {
        if let Some(l) = &self.live {
            l.lock().unwrap_or_else(|e| e.into_inner()).send();
        }
    }

    /// All records so far.
    pub fn records(&self) -> &[Record] {
        &self.records
    }

    /// Writes the log (atomically).
    pub fn flush(&self) -> Result<()> {
        let mut s = String::new();
        for r in &self.records {
            s.push_str(&serde_json::to_string(r)?);
            s.push('\n');
        }
        crate::io::write_bytes_atomic(&self.path, s.as_bytes())
    }
}

/// Where a training run was logged (`<training dir>/tracking.json`), so evaluation and export
/// add to the same runs.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
pub struct RunLink {
    /// Run name (`<config name>-<UTC time>`).
    pub run_name: String,
    /// TensorBoard run directory.
    pub tensorboard_run_dir: Option<PathBuf>,
    /// MLflow tracking URI used.
    pub mlflow_uri: Option<String>,
    /// MLflow experiment id.
    pub mlflow_experiment_id: Option<String>,
    /// MLflow run id.
    pub mlflow_run_id: Option<String>,
    /// What could not be sent.
    pub unsent: Vec<String>,
}

fn mlflow_target(cfg: &crate::config::PipelineConfig) -> (String, crate::tracking::mlflow::Target) {
    let uri = std::env::var("MLFLOW_TRACKING_URI")
        .ok()
        .filter(|u| !u.is_empty())
        .or_else(|| cfg.tracking.mlflow_tracking_uri.clone())
        .unwrap_or_else(|| "mlruns".into());
    (uri.clone(), crate::tracking::mlflow::Target::parse(&uri))
}

fn report_unsent(what: &str, unsent: &[String]) {
    if !unsent.is_empty() {
        eprintln!(
            "tracking: MLflow did not receive {} item(s) of the {what} (the results are saved locally):",
            unsent.len()
        );
        for u in unsent.iter().take(10) {
            eprintln!("  not sent: {u}");
        }
        if unsent.len() > 10 {
            eprintln!("  ... and {} more", unsent.len() - 10);
        }
    }
}

/// Flattens a JSON value into `prefix.key` = value strings (MLflow params).
pub fn flatten(prefix: &str, v: &serde_json::Value, out: &mut Vec<(String, String)>) {
    match v {
        serde_json::Value::Object(m) => {
            for (k, x) in m {
                flatten(&if prefix.is_empty() { k.clone() } else { format!("{prefix}.{k}") }, x, out);
            }
        }
        serde_json::Value::Null => {}
        serde_json::Value::String(s) => out.push((prefix.to_string(), s.clone())),
        other => out.push((prefix.to_string(), other.to_string())),
    }
}

/// A training run's tracking while it trains: the TensorBoard event file and the MLflow run are
/// opened before the first epoch, and every epoch's scalars are sent when the epoch ends (with
/// that moment's wall time), so TensorBoard and the MLflow UI follow the training live.
/// [`after_training`] completes the same run. Best effort like everything here: a writer that
/// fails stops, and what was not sent is listed.
pub struct Live {
    link: RunLink,
    uri: String,
    tb: Option<crate::tracking::tensorboard::EventWriter>,
    run: Option<crate::tracking::mlflow::Run>,
    pending: Vec<Record>,
    sent: usize,
}

impl Live {
    /// Opens the writers `cfg.tracking` asks for (none: a `Live` that does nothing).
    pub fn start(cfg: &crate::config::PipelineConfig) -> Live {
        let t = &cfg.tracking;
        let stamp: String = crate::io::now_rfc3339().chars().filter(|c| c.is_ascii_alphanumeric()).collect();
        let mut link = RunLink { run_name: format!("{}-{stamp}", cfg.name), ..RunLink::default() };
        let mut tb = None;
        if t.tensorboard {
            let dir = t.tensorboard_dir.join(&link.run_name);
            match crate::tracking::tensorboard::EventWriter::create(&dir) {
                Ok(w) => {
                    tb = Some(w);
                    link.tensorboard_run_dir = Some(dir);
                }
                Err(e) => eprintln!("tracking: TensorBoard events not written: {e:#}"),
            }
        }
        let (uri, target) = mlflow_target(cfg);
        let run = t.mlflow.then(|| {
            let experiment = t.experiment.clone().unwrap_or_else(|| cfg.name.clone());
            let mut run = crate::tracking::mlflow::Run::start(target, &experiment, &link.run_name);
            run.set_tags(&run_tags(cfg));
            let mut params = Vec::new();
            flatten("train", &serde_json::to_value(&cfg.train).unwrap_or_default(), &mut params);
            flatten("features", &serde_json::to_value(&cfg.features).unwrap_or_default(), &mut params);
            flatten("split", &serde_json::to_value(&cfg.split).unwrap_or_default(), &mut params);
            params.push(("contract".into(), cfg.contract.display().to_string()));
            params.push(("feature_schema_version".into(), avm_core::FEATURE_SCHEMA_VERSION.to_string()));
            run.log_params(&params);
            run
        });
        Live { link, uri, tb, run, pending: Vec::new(), sent: 0 }
    }

    /// The training failed: what was recorded goes out, the run is tagged with the error and
    /// ends FAILED (not left RUNNING), and the TensorBoard file keeps the epochs it has.
    pub fn abandon(mut self, error: &str) {
        self.send();
        if let Some(mut run) = self.run {
            run.set_tags(&[("avm.training_error".into(), error.to_string())]);
            run.end(&self.link.run_name, true);
            report_unsent("failed training run", &run.unsent);
        }
    }

    /// Sends the pending records (one epoch's).
    fn send(&mut self) {
        if self.pending.is_empty() {
            return;
        }
        if let Some(w) = &mut self.tb {
            for r in &self.pending {
                w.scalar(&r.name, r.step as i64, r.value as f32);
            }
            if let Err(e) = w.flush() {
                eprintln!("tracking: TensorBoard events stop here: {e:#}");
                self.tb = None;
            }
        }
        if let Some(run) = &mut self.run {
            let m: Vec<(String, f64, i64)> =
                self.pending.iter().map(|r| (r.name.clone(), r.value, r.step as i64)).collect();
            run.log_metrics(&m);
        }
        self.sent += self.pending.len();
        self.pending.clear();
    }
}

/// Logs a finished training run: TensorBoard scalars (every record of `log`) and an MLflow run
/// (hyperparameters, the metric histories, the config and the checkpoints). With `live` (the
/// run opened before training), only the records it did not send yet go out, and the same run
/// is completed. Never fails the training: problems are printed and recorded in
/// `tracking.json`.
pub fn after_training(
    cfg: &crate::config::PipelineConfig,
    train_dir: &Path,
    log: &MetricLog,
    live: Option<Live>,
) {
    let mut live = live.unwrap_or_else(|| Live::start(cfg));
    live.send();
    // The records a resumed run kept from before, and anything not sent live.
    let all = log.records();
    let rest = &all[..all.len().saturating_sub(live.sent)];
    let mut link = live.link;
    if let Some(mut w) = live.tb {
        for r in rest {
            w.scalar(&r.name, r.step as i64, r.value as f32);
        }
        if let Err(e) = w.flush() {
            eprintln!("tracking: TensorBoard events not written: {e:#}");
        }
    }
    if let Some(mut run) = live.run {
        let metrics: Vec<(String, f64, i64)> =
            rest.iter().map(|r| (r.name.clone(), r.value, r.step as i64)).collect();
        run.log_metrics(&metrics);
        let cfg_file = train_dir.join(crate::layout::PIPELINE_CONFIG_COPY);
        if serde_saphyr::to_string(cfg)
            .ok()
            .is_some_and(|y| crate::io::write_bytes_atomic(&cfg_file, y.as_bytes()).is_ok())
        {
            run.log_artifact(&cfg_file, "config/pipeline_config.yaml");
        }
        for f in [crate::layout::BEST, crate::layout::LAST, crate::layout::METRICS_LOG] {
            if train_dir.join(f).exists() {
                run.log_artifact(&train_dir.join(f), &format!("training/{f}"));
            }
        }
        run.finish(&link.run_name);
        report_unsent("training run", &run.unsent);
        link.mlflow_uri = Some(live.uri);
        link.mlflow_experiment_id = Some(run.experiment_id.clone()).filter(|s| !s.is_empty());
        link.mlflow_run_id = Some(run.run_id.clone()).filter(|s| !s.is_empty());
        link.unsent = run.unsent;
    }
    if let Ok(j) = serde_json::to_string_pretty(&link) {
        let _ = crate::io::write_bytes_atomic(&train_dir.join(crate::layout::TRACKING_LINK), j.as_bytes());
    }
}

/// Where the training in `train_dir` was logged (its `tracking.json`), if anywhere.
pub fn run_link(train_dir: &Path) -> Option<RunLink> {
    load_link(train_dir)
}

fn load_link(train_dir: &Path) -> Option<RunLink> {
    serde_json::from_slice(&std::fs::read(train_dir.join(crate::layout::TRACKING_LINK)).ok()?).ok()
}

fn resume_run(cfg: &crate::config::PipelineConfig, link: &RunLink) -> Option<crate::tracking::mlflow::Run> {
    let (uri, _) = mlflow_target(cfg);
    let (Some(luri), Some(exp), Some(id)) =
        (&link.mlflow_uri, &link.mlflow_experiment_id, &link.mlflow_run_id)
    else {
        return None;
    };
    if *luri != uri {
        eprintln!(
            "tracking: the training run was logged to {luri}, now the tracking URI is {uri}: using {luri}"
        );
    }
    Some(crate::tracking::mlflow::Run::resume(crate::tracking::mlflow::Target::parse(luri), exp, id))
}

/// Adds the evaluation to the training's runs: final metrics (test, per phase, CV) as scalars
/// and MLflow metrics at the evaluated epoch, the ROC curve and confusion matrix as TensorBoard
/// images and MLflow artifacts.
pub fn after_evaluation(
    cfg: &crate::config::PipelineConfig,
    train_dir: &Path,
    eval_dir: &Path,
    metrics: &[(String, f64)],
    step: usize,
) {
    let Some(link) = load_link(train_dir) else {
        eprintln!(
            "tracking: {} has no tracking.json (trained before tracking existed?): evaluation not logged",
            train_dir.display()
        );
        return;
    };
    // tracking.json is a file on disk: its run directory is used only if it is the one this
    // config's TensorBoard directory and a valid run name give.
    let expected = crate::ids::check("run name", &link.run_name)
        .ok()
        .map(|()| cfg.tracking.tensorboard_dir.join(&link.run_name));
    let tb_dir = link.tensorboard_run_dir.as_ref().filter(|d| expected.as_ref() == Some(*d));
    if link.tensorboard_run_dir.is_some() && tb_dir.is_none() {
        eprintln!(
            "tracking: {} names TensorBoard run directory {:?}, not one under {}: evaluation not logged there",
            train_dir.join(crate::layout::TRACKING_LINK).display(),
            link.tensorboard_run_dir,
            cfg.tracking.tensorboard_dir.display()
        );
    }
    if let Some(dir) = tb_dir.filter(|_| cfg.tracking.tensorboard) {
        let r = (|| -> Result<()> {
            let mut w = crate::tracking::tensorboard::EventWriter::create(dir)?;
            for (k, v) in metrics {
                w.scalar(k, step as i64, *v as f32);
            }
            for img in ["roc", "confusion"] {
                let png = std::fs::read(eval_dir.join(format!("{img}.png")))?;
                let (width, height) = crate::tracking::tensorboard::png_size(&png).unwrap_or((0, 0));
                w.image_png(&format!("evaluation/{img}"), step as i64, png, width, height);
            }
            w.flush()
        })();
        if let Err(e) = r {
            eprintln!("tracking: TensorBoard evaluation events not written: {e:#}");
        }
    }
    if cfg.tracking.mlflow
        && let Some(mut run) = resume_run(cfg, &link)
    {
        let m: Vec<(String, f64, i64)> = metrics.iter().map(|(k, v)| (k.clone(), *v, step as i64)).collect();
        run.log_metrics(&m);
        for f in ["metrics.json", "roc.png", "roc.svg", "confusion.png", "confusion.svg"] {
            run.log_artifact(&eval_dir.join(f), &format!("evaluation/{f}"));
        }
        run.finish(&link.run_name);
        report_unsent("evaluation", &run.unsent);
    }
}

/// Tags of a training run: who, from which commit, with which avm.
fn run_tags(cfg: &crate::config::PipelineConfig) -> Vec<(String, String)> {
    let mut tags = vec![
        ("mlflow.source.type".to_string(), "LOCAL".to_string()),
        ("mlflow.user".to_string(), std::env::var("USER").unwrap_or_else(|_| "avm".into())),
        ("avm.version".to_string(), env!("CARGO_PKG_VERSION").to_string()),
        ("avm.feature_schema_version".to_string(), avm_core::FEATURE_SCHEMA_VERSION.to_string()),
    ];
    // The commit of the repository holding the config, if it is one (no git: no tag).
    let dir = cfg.source.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    if let Ok(out) = std::process::Command::new("git").args(["rev-parse", "HEAD"]).current_dir(dir).output()
        && out.status.success()
    {
        let commit = String::from_utf8_lossy(&out.stdout).trim().to_string();
        if commit.len() == 40 && commit.bytes().all(|b| b.is_ascii_hexdigit()) {
            tags.push(("mlflow.source.git.commit".into(), commit));
        }
    }
    tags
}

/// Adds an exported detector version to the training's MLflow run: avm's artifacts under
/// `avm/<version>/`, the MLflow Model under `model/` ([`mlmodel`]), the training data as a
/// dataset input, and — with a tracking server — a version of registered model `<detector>` in
/// the Model Registry (tag `avm.version`, aliases `candidate` and `v<major>_<minor>_<patch>`;
/// `avm registry promote` moves the `production` alias).
pub fn after_export(
    cfg: &crate::config::PipelineConfig,
    train_dir: &Path,
    entry: &crate::release::registry::Entry,
) {
    if !cfg.tracking.mlflow {
        return;
    }
    let (version_dir, version) = (&entry.path, &entry.version);
    let Some(mut run) = load_link(train_dir).and_then(|l| resume_run(cfg, &l)) else { return };
    run.log_params(&[("registry.version".into(), version.clone())]);
    let mut names: Vec<_> = std::fs::read_dir(version_dir)
        .map(|rd| {
            rd.filter_map(|e| e.ok())
                .filter(|e| e.file_type().is_ok_and(|t| t.is_file()))
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    // Artifacts in subdirectories (per-unit bundles, `units/...`), as the signature names them.
    names.extend(
        entry
            .artifacts
            .keys()
            .filter(|n| n.contains('/') && crate::layout::artifact_path(version_dir, n).is_ok())
            .cloned(),
    );
    names.sort();
    names.dedup();
    for n in names.iter().filter(|n| !n.starts_with('.')) {
        run.log_artifact(&version_dir.join(n), &format!("avm/{version}/{n}"));
    }
    run.set_tags(&[("avm.training_data_sha256".into(), entry.training_data_sha256.clone())]);
    run.log_dataset(
        &format!("{}-training-features", entry.detector),
        &entry.training_data_sha256,
        &cfg.paths.features().display().to_string(),
        "training",
    );
    match mlmodel::build(version_dir, &entry.detector, version, &run.run_id) {
        Ok(files) => {
            // Staged beside the training run, removed once logged.
            let dir = train_dir.join(format!(".mlflow-model-{version}"));
            let staged = (|| -> Result<()> {
                let _ = std::fs::remove_dir_all(&dir);
                std::fs::create_dir_all(&dir)?;
                for (name, bytes) in &files {
                    crate::io::write_bytes_atomic(&dir.join(name), bytes)?;
                }
                Ok(())
            })();
            match staged {
                Ok(()) => {
                    for (name, _) in &files {
                        run.log_artifact(&dir.join(name), &format!("model/{name}"));
                    }
                    let alias = format!("v{}", version.replace('.', "_"));
                    if run.is_server() {
                        run.register_model(&entry.detector, version, &["candidate".into(), alias]);
                    }
                }
                Err(e) => run.unsent.push(format!("MLflow model: {e:#}")),
            }
            let _ = std::fs::remove_dir_all(&dir);
        }
        Err(e) => run.unsent.push(format!("MLflow model: {e:#}")),
    }
    report_unsent("export", &run.unsent);
}
