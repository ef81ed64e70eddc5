//! MLflow runs, written from Rust in one of two ways:
//! - to a tracking server (`http://...`): the REST API `/api/2.0/mlflow/...` (experiments,
//!   runs/create, runs/log-batch, runs/update) and artifact uploads through the server's
//!   `/api/2.0/mlflow-artifacts/artifacts/...` proxy;
//! - without a server, to a local file store (`mlruns/` layout: `<experiment>/meta.yaml`,
//!   `<experiment>/<run>/{meta.yaml, params/, metrics/, tags/, artifacts/}`) that `mlflow ui`
//!   shows (MLflow >= 3.13 needs `MLFLOW_ALLOW_FILE_STORE=true` for it).
//!
//! Tracking is best effort by contract: no method fails the caller. Every call that could not
//! be delivered is recorded in [`Run::unsent`] and reported by the caller; after the first
//! network failure the run stops trying (a server that is down is not waited for once per
//! metric).

use anyhow::{Context, Result, anyhow, bail};
use serde_json::json;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Where runs go.
#[derive(Clone, Debug, PartialEq)]
pub enum Target {
    /// A tracking server's base URL (`http://127.0.0.1:5000`).
    Server(String),
    /// A local file store directory.
    Local(PathBuf),
}

impl Target {
    /// Parses a tracking URI: `http(s)://...` is a server, `file://<path>` or a plain path a
    /// local store.
    pub fn parse(uri: &str) -> Target {
        if uri.starts_with("http://") || uri.starts_with("https://") {
            Target::Server(uri.trim_end_matches('/').to_string())
        } else {
            Target::Local(PathBuf::from(uri.strip_prefix("file://").unwrap_or(uri)))
        }
    }
}

/// The experiment tag that tells MLflow's UI what an experiment is for; without it MLflow 3
/// opens avm's experiments on the GenAI (traces) pages.
pub const EXPERIMENT_KIND: &str = "mlflow.experimentKind";
/// Its value for model training.
pub const MODEL_TRAINING: &str = "custom_model_development";

/// Status codes of the file store (`mlflow.entities.RunStatus`).
const FINISHED: u8 = 3;
const RUNNING: u8 = 1;
const FAILED: u8 = 4;

/// One MLflow run.
pub struct Run {
    target: Target,
    agent: ureq::Agent,
    /// Experiment id.
    pub experiment_id: String,
    /// Run id.
    pub run_id: String,
    artifact_uri: String,
    failed: bool,
    /// What could not be sent, one line each.
    pub unsent: Vec<String>,
}

fn now_ms() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64)
}

fn new_id() -> String {
    let seed =
        format!("{:?}{}{:?}", std::time::SystemTime::now(), std::process::id(), std::thread::current().id());
    crate::io::sha256_hex(seed.as_bytes())[..32].to_string()
}

fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .timeout_connect(Some(Duration::from_secs(3)))
        .timeout_global(Some(Duration::from_secs(20)))
        .http_status_as_error(false)
        .build()
        .into()
}

fn yaml_str(s: &str) -> String {
    serde_json::to_string(s).unwrap_or_default()
}

impl Run {
    fn rest(&self, method: &str, path: &str, body: Option<serde_json::Value>) -> Result<serde_json::Value> {
        let Target::Server(base) = &self.target else { bail!("not a server") };
        let url = format!("{base}{path}");
        let resp = match (method, body) {
            ("GET", _) => self.agent.get(&url).call(),
            (_, Some(b)) => self
                .agent
                .post(&url)
                .header("Content-Type", "application/json")
                .send(serde_json::to_vec(&b)?.as_slice()),
            _ => bail!("bad request"),
        };
        let mut resp = resp.map_err(|e| anyhow!("{method} {url}: {e}"))?;
        let status = resp.status().as_u16();
        let text = resp.body_mut().read_to_string().unwrap_or_default();
        if status != 200 {
            bail!("{method} {url}: HTTP {status}: {}", text.chars().take(300).collect::<String>());
        }
        Ok(serde_json::from_str(&text).unwrap_or(serde_json::Value::Null))
    }

    fn blank(target: Target, experiment_id: &str, run_id: &str) -> Run {
        Run {
            target,
            agent: agent(),
            experiment_id: experiment_id.into(),
            run_id: run_id.into(),
            artifact_uri: String::new(),
            failed: false,
            unsent: Vec::new(),
        }
    }

    /// Starts a run named `run_name` in `experiment` (created if missing). A failure leaves a
    /// run that records everything as unsent.
    pub fn start(target: Target, experiment: &str, run_name: &str) -> Run {
        let mut run = Run::blank(target, "", "");
        if let Err(e) = run.create(experiment, run_name) {
            run.fail(format!("starting run {run_name} in experiment {experiment}: {e:#}"));
        }
        run
    }

    /// Reopens an existing run (to add evaluation metrics and artifacts).
    pub fn resume(target: Target, experiment_id: &str, run_id: &str) -> Run {
        // The ids come from tracking.json, a file on disk: they become a path in the local
        // store and a URL query, so they must be plain ids.
        let bad = [("experiment id", experiment_id), ("run id", run_id)]
            .into_iter()
            .find_map(|(what, id)| crate::ids::check(what, id).err());
        let mut run = Run::blank(target, experiment_id, run_id);
        if let Some(e) = bad {
            run.fail(format!("reopening run {run_id:?}: {e}"));
            return run;
        }
        let r = match &run.target {
            Target::Server(_) => {
                run.rest("GET", &format!("/api/2.0/mlflow/runs/get?run_id={run_id}"), None).map(|v| {
                    run.artifact_uri = v["run"]["info"]["artifact_uri"].as_str().unwrap_or("").to_string()
                })
            }
            Target::Local(root) => {
                let dir = root.join(experiment_id).join(run_id);
                if dir.join("meta.yaml").exists() {
                    Ok(())
                } else {
                    Err(anyhow!("{} has no run {run_id}", root.display()))
                }
            }
        };
        if let Err(e) = r {
            run.fail(format!("reopening run {run_id}: {e:#}"));
        }
        run
    }

    fn fail(&mut self, what: String) {
        self.failed = true;
        self.unsent.push(what);
    }

    fn create(&mut self, experiment: &str, run_name: &str) -> Result<()> {
        match self.target.clone() {
            Target::Server(_) => {
                let got = self.rest(
                    "GET",
                    &format!(
                        "/api/2.0/mlflow/experiments/get-by-name?experiment_name={}",
                        urlencode(experiment)
                    ),
                    None,
                );
                self.experiment_id = match got {
                    Ok(v) => v["experiment"]["experiment_id"].as_str().unwrap_or("").to_string(),
                    Err(e) if e.to_string().contains("RESOURCE_DOES_NOT_EXIST") => {
                        let v = self.rest(
                            "POST",
                            "/api/2.0/mlflow/experiments/create",
                            Some(json!({"name": experiment, "tags": [{"key": EXPERIMENT_KIND, "value": MODEL_TRAINING}]})),
                        )?;
                        v["experiment_id"].as_str().unwrap_or("").to_string()
                    }
                    Err(e) => return Err(e),
                };
                // An experiment made before (or by someone else) opens in model-training mode too.
                self.rest(
                    "POST",
                    "/api/2.0/mlflow/experiments/set-experiment-tag",
                    Some(json!({"experiment_id": self.experiment_id, "key": EXPERIMENT_KIND, "value": MODEL_TRAINING})),
                )?;
                let v = self.rest(
                    "POST",
                    "/api/2.0/mlflow/runs/create",
                    Some(json!({
                        "experiment_id": self.experiment_id,
                        "run_name": run_name,
                        "start_time": now_ms(),
                        "tags": [{"key": "mlflow.runName", "value": run_name}, {"key": "mlflow.source.name", "value": "avm"}],
                    })),
                )?;
                self.run_id = v["run"]["info"]["run_id"].as_str().unwrap_or("").to_string();
                self.artifact_uri = v["run"]["info"]["artifact_uri"].as_str().unwrap_or("").to_string();
                if self.run_id.is_empty() {
                    bail!("the server returned no run id");
                }
            }
            Target::Local(root) => {
                self.experiment_id = local_experiment(&root, experiment)?;
                self.run_id = new_id();
                let dir = root.join(&self.experiment_id).join(&self.run_id);
                for sub in ["params", "metrics", "tags", "artifacts"] {
                    std::fs::create_dir_all(dir.join(sub))?;
                }
                std::fs::write(dir.join("tags").join("mlflow.runName"), run_name)?;
                std::fs::write(dir.join("tags").join("mlflow.source.name"), "avm")?;
                self.write_run_meta(&root, run_name, RUNNING, None)?;
            }
        }
        Ok(())
    }

    fn write_run_meta(&self, root: &Path, run_name: &str, status: u8, end: Option<u64>) -> Result<()> {
        let dir = root.join(&self.experiment_id).join(&self.run_id);
        let abs = std::fs::canonicalize(&dir).unwrap_or(dir.clone());
        let start = std::fs::read_to_string(dir.join("meta.yaml"))
            .ok()
            .and_then(|m| m.lines().find_map(|l| l.strip_prefix("start_time: ").map(str::to_string)))
            .unwrap_or_else(|| now_ms().to_string());
        let user = std::env::var("USER").unwrap_or_else(|_| "avm".into());
        let meta = format!(
            "artifact_uri: {}\nend_time: {}\nentry_point_name: ''\nexperiment_id: '{}'\nlifecycle_stage: active\nrun_id: {}\nrun_name: {}\nrun_uuid: {}\nsource_name: ''\nsource_type: 4\nsource_version: ''\nstart_time: {start}\nstatus: {status}\ntags: []\nuser_id: {}\n",
            yaml_str(&format!("file://{}", abs.join("artifacts").display())),
            end.map_or("null".to_string(), |e| e.to_string()),
            self.experiment_id,
            self.run_id,
            yaml_str(run_name),
            self.run_id,
            yaml_str(&user),
        );
        crate::io::write_bytes_atomic(&dir.join("meta.yaml"), meta.as_bytes())
    }

    /// True when the run goes to a tracking server.
    pub fn is_server(&self) -> bool {
        matches!(self.target, Target::Server(_))
    }

    /// Sets run tags (`mlflow.user`, `mlflow.source.git.commit`, ...).
    pub fn set_tags(&mut self, tags: &[(String, String)]) {
        if self.failed {
            self.unsent.push(format!("{} tags", tags.len()));
            return;
        }
        let r = match self.target.clone() {
            Target::Server(_) => {
                let ts: Vec<_> = tags.iter().map(|(k, v)| json!({"key": k, "value": cut(v)})).collect();
                self.rest(
                    "POST",
                    "/api/2.0/mlflow/runs/log-batch",
                    Some(json!({"run_id": self.run_id, "tags": ts})),
                )
                .map(|_| ())
            }
            Target::Local(root) => tags.iter().try_for_each(|(k, v)| {
                let p = root.join(&self.experiment_id).join(&self.run_id).join("tags").join(k);
                crate::io::write_bytes_atomic(&p, cut(v).as_bytes())
            }),
        };
        if let Err(e) = r {
            self.fail(format!("{} tags: {e:#}", tags.len()));
        }
    }

    /// Records a dataset the run used (name, sha256 digest, source path, context such as
    /// `training`) as an MLflow dataset input. Tracking servers only: with the local file store
    /// nothing is written here.
    pub fn log_dataset(&mut self, name: &str, sha256: &str, source: &str, context: &str) {
        if self.failed {
            self.unsent.push(format!("dataset {name}"));
            return;
        }
        let r = match self.target.clone() {
            Target::Server(_) => self
                .rest(
                    "POST",
                    "/api/2.0/mlflow/runs/log-inputs",
                    Some(json!({
                        "run_id": self.run_id,
                        "datasets": [{
                            "tags": [{"key": "mlflow.data.context", "value": context}],
                            "dataset": {
                                "name": name,
                                "digest": &sha256[..sha256.len().min(36)],
                                "source_type": "local",
                                "source": json!({"uri": source}).to_string(),
                                "profile": json!({"sha256": sha256}).to_string(),
                            }
                        }]
                    })),
                )
                .map(|_| ()),
            // The file store's dataset layout is not written; the caller tags the run with the
            // digest instead.
            Target::Local(_) => Ok(()),
        };
        if let Err(e) = r {
            self.unsent.push(format!("dataset {name}: {e:#}"));
        }
    }

    /// Registers the run's MLflow Model (`<artifact root>/model`) as a version of registered
    /// model `name` in the server's Model Registry, tagged with avm's version, with the
    /// aliases given (e.g. `candidate`, `v1_0_0`). Tracking servers only. Returns the MLflow
    /// model version.
    pub fn register_model(&mut self, name: &str, avm_version: &str, aliases: &[String]) -> Option<String> {
        if self.failed || !matches!(self.target, Target::Server(_)) {
            self.unsent.push(format!("model registry entry {name} {avm_version}"));
            return None;
        }
        let r = (|| -> Result<String> {
            match self.rest("POST", "/api/2.0/mlflow/registered-models/create", Some(json!({"name": name}))) {
                Ok(_) => {}
                Err(e) if e.to_string().contains("RESOURCE_ALREADY_EXISTS") => {}
                Err(e) => return Err(e),
            }
            let v = self.rest(
                "POST",
                "/api/2.0/mlflow/model-versions/create",
                Some(json!({
                    "name": name,
                    "source": format!("{}/model", self.artifact_uri),
                    "run_id": self.run_id,
                    "tags": [{"key": "avm.version", "value": avm_version}],
                    "description": format!("avm detector {name} {avm_version}"),
                })),
            )?;
            let version = v["model_version"]["version"].as_str().unwrap_or("").to_string();
            if version.is_empty() {
                bail!("the server returned no model version");
            }
            for a in aliases {
                self.rest(
                    "POST",
                    "/api/2.0/mlflow/registered-models/alias",
                    Some(json!({"name": name, "alias": a, "version": version})),
                )?;
            }
            Ok(version)
        })();
        match r {
            Ok(v) => Some(v),
            Err(e) => {
                self.unsent.push(format!("model registry entry {name} {avm_version}: {e:#}"));
                None
            }
        }
    }

    /// Logs parameters (values cut to MLflow's 6000 characters).
    pub fn log_params(&mut self, params: &[(String, String)]) {
        if self.failed {
            self.unsent.push(format!("{} params", params.len()));
            return;
        }
        let r = match self.target.clone() {
            Target::Server(_) => params.chunks(100).try_for_each(|c| {
                let ps: Vec<_> = c.iter().map(|(k, v)| json!({"key": k, "value": cut(v)})).collect();
                self.rest(
                    "POST",
                    "/api/2.0/mlflow/runs/log-batch",
                    Some(json!({"run_id": self.run_id, "params": ps})),
                )
                .map(|_| ())
            }),
            Target::Local(root) => params.iter().try_for_each(|(k, v)| {
                let p = root.join(&self.experiment_id).join(&self.run_id).join("params").join(k);
                if let Some(d) = p.parent() {
                    std::fs::create_dir_all(d)?;
                }
                std::fs::write(&p, cut(v)).with_context(|| format!("writing {}", p.display()))
            }),
        };
        if let Err(e) = r {
            self.fail(format!("{} params: {e:#}", params.len()));
        }
    }

    /// Logs metric values `(key, value, step)`; non-finite values are not sent (and listed).
    pub fn log_metrics(&mut self, metrics: &[(String, f64, i64)]) {
        let (ok, bad): (Vec<_>, Vec<_>) = metrics.iter().partition(|m| m.1.is_finite());
        for (k, v, s) in bad {
            self.unsent.push(format!("metric {k} = {v} at step {s} (not finite)"));
        }
        if ok.is_empty() {
            return;
        }
        if self.failed {
            self.unsent.push(format!("{} metric values", ok.len()));
            return;
        }
        let ts = now_ms();
        let r = match self.target.clone() {
            Target::Server(_) => ok.chunks(1000).try_for_each(|c| {
                let ms: Vec<_> = c
                    .iter()
                    .map(|(k, v, s)| json!({"key": k, "value": v, "timestamp": ts, "step": s}))
                    .collect();
                self.rest(
                    "POST",
                    "/api/2.0/mlflow/runs/log-batch",
                    Some(json!({"run_id": self.run_id, "metrics": ms})),
                )
                .map(|_| ())
            }),
            Target::Local(root) => {
                let mut by_key: std::collections::BTreeMap<&str, String> = Default::default();
                for (k, v, s) in &ok {
                    by_key.entry(k.as_str()).or_default().push_str(&format!("{ts} {v} {s}\n"));
                }
                by_key.iter().try_for_each(|(k, lines)| {
                    let p = root.join(&self.experiment_id).join(&self.run_id).join("metrics").join(k);
                    if let Some(d) = p.parent() {
                        std::fs::create_dir_all(d)?;
                    }
                    let mut f = std::fs::OpenOptions::new().create(true).append(true).open(&p)?;
                    std::io::Write::write_all(&mut f, lines.as_bytes())?;
                    Ok(())
                })
            }
        };
        if let Err(e) = r {
            self.fail(format!("{} metric values: {e:#}", ok.len()));
        }
    }

    /// Uploads the file `local` as artifact `artifact_path` (e.g. `model/model.onnx`).
    pub fn log_artifact(&mut self, local: &Path, artifact_path: &str) {
        if self.failed {
            self.unsent.push(format!("artifact {artifact_path}"));
            return;
        }
        let r = (|| -> Result<()> {
            let bytes = std::fs::read(local).with_context(|| format!("reading {}", local.display()))?;
            match &self.target {
                Target::Server(base) => {
                    // mlflow-artifacts:/<exp>/<run>/artifacts (or mlflow-artifacts://host/...)
                    let rest = self.artifact_uri.strip_prefix("mlflow-artifacts:").ok_or_else(|| {
                        anyhow!("the server's artifact store ({}) is not proxied", self.artifact_uri)
                    })?;
                    let rest = rest.trim_start_matches('/');
                    let rest = if self.artifact_uri.starts_with("mlflow-artifacts://") {
                        rest.split_once('/').map_or("", |(_, p)| p)
                    } else {
                        rest
                    };
                    let url = format!("{base}/api/2.0/mlflow-artifacts/artifacts/{rest}/{artifact_path}");
                    let mut resp = self
                        .agent
                        .put(&url)
                        .header("Content-Type", "application/octet-stream")
                        .send(bytes.as_slice())
                        .map_err(|e| anyhow!("PUT {url}: {e}"))?;
                    let status = resp.status().as_u16();
                    if status != 200 {
                        let t = resp.body_mut().read_to_string().unwrap_or_default();
                        bail!("PUT {url}: HTTP {status}: {t}");
                    }
                }
                Target::Local(root) => {
                    let p = root
                        .join(&self.experiment_id)
                        .join(&self.run_id)
                        .join("artifacts")
                        .join(artifact_path);
                    if let Some(d) = p.parent() {
                        std::fs::create_dir_all(d)?;
                    }
                    std::fs::write(&p, &bytes)?;
                }
            }
            Ok(())
        })();
        if let Err(e) = r {
            self.fail(format!("artifact {artifact_path}: {e:#}"));
        }
    }

    /// Marks the run finished.
    pub fn finish(&mut self, run_name: &str) {
        self.end(run_name, false);
    }

    /// Ends the run as FINISHED, or as FAILED (`failed`: the training it follows did not complete).
    pub fn end(&mut self, run_name: &str, failed: bool) {
        let (status, code) = if failed { ("FAILED", FAILED) } else { ("FINISHED", FINISHED) };
        if self.failed {
            self.unsent.push(format!("run status {status}"));
            return;
        }
        let r = match self.target.clone() {
            Target::Server(_) => self
                .rest(
                    "POST",
                    "/api/2.0/mlflow/runs/update",
                    Some(json!({"run_id": self.run_id, "status": status, "end_time": now_ms()})),
                )
                .map(|_| ()),
            Target::Local(root) => self.write_run_meta(&root, run_name, code, Some(now_ms())),
        };
        if let Err(e) = r {
            self.fail(format!("run status {status}: {e:#}"));
        }
    }
}

fn cut(v: &str) -> String {
    v.chars().take(6000).collect()
}

fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// Moves registered model `detector`'s `production` alias to the MLflow model version that
/// `avm export` registered for avm version `version` (its alias `v<major>_<minor>_<patch>`) on
/// the tracking server at `uri`. Best effort: the caller reports an error, never fails on it.
pub fn promote_alias(uri: &str, detector: &str, version: &str) -> Result<String> {
    let Target::Server(_) = Target::parse(uri) else { bail!("{uri} is not a tracking server") };
    let run = Run::blank(Target::parse(uri), "", "");
    let alias = format!("v{}", version.replace('.', "_"));
    let v = run.rest(
        "GET",
        &format!(
            "/api/2.0/mlflow/registered-models/alias?name={}&alias={}",
            urlencode(detector),
            urlencode(&alias)
        ),
        None,
    )?;
    let mv = v["model_version"]["version"].as_str().unwrap_or("").to_string();
    if mv.is_empty() {
        bail!("no MLflow model version of {detector} has alias {alias}");
    }
    run.rest(
        "POST",
        "/api/2.0/mlflow/registered-models/alias",
        Some(json!({"name": detector, "alias": "production", "version": mv})),
    )?;
    Ok(mv)
}

/// The id of experiment `name` in the file store at `root`, created (with the default
/// experiment 0, as MLflow does) when missing.
fn local_experiment(root: &Path, name: &str) -> Result<String> {
    std::fs::create_dir_all(root).with_context(|| format!("creating {}", root.display()))?;
    let abs = std::fs::canonicalize(root)?;
    let write_meta = |id: &str, name: &str| -> Result<()> {
        let dir = root.join(id);
        std::fs::create_dir_all(&dir)?;
        let t = now_ms();
        let meta = format!(
            "artifact_location: {}\ncreation_time: {t}\nexperiment_id: '{id}'\nlast_update_time: {t}\nlifecycle_stage: active\nname: {}\n",
            yaml_str(&format!("file://{}", abs.join(id).display())),
            yaml_str(name)
        );
        crate::io::write_bytes_atomic(&dir.join("meta.yaml"), meta.as_bytes())
    };
    let tag_kind = |id: &str| -> Result<()> {
        let tags = root.join(id).join("tags");
        std::fs::create_dir_all(&tags)?;
        crate::io::write_bytes_atomic(&tags.join(EXPERIMENT_KIND), MODEL_TRAINING.as_bytes())
    };
    let mut max_id = 0u64;
    let mut found = None;
    for e in std::fs::read_dir(root)?.filter_map(|e| e.ok()) {
        let id = e.file_name().to_string_lossy().into_owned();
        let Ok(n) = id.parse::<u64>() else { continue };
        max_id = max_id.max(n);
        let meta = std::fs::read_to_string(e.path().join("meta.yaml")).unwrap_or_default();
        if meta.lines().any(|l| l == format!("name: {}", yaml_str(name))) {
            found = Some(id);
        }
    }
    if !root.join("0").join("meta.yaml").exists() {
        write_meta("0", "Default")?;
    }
    if let Some(id) = found {
        tag_kind(&id)?;
        return Ok(id);
    }
    let id = (max_id + 1).to_string();
    write_meta(&id, name)?;
    tag_kind(&id)?;
    Ok(id)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets() {
        assert_eq!(Target::parse("http://127.0.0.1:5000/"), Target::Server("http://127.0.0.1:5000".into()));
        assert_eq!(Target::parse("file:///tmp/mlruns"), Target::Local("/tmp/mlruns".into()));
        assert_eq!(Target::parse("mlruns"), Target::Local("mlruns".into()));
        assert_eq!(urlencode("a b/c"), "a%20b%2Fc");
    }

    #[test]
    fn refused_server_is_recorded_not_fatal() {
        let mut r = Run::start(Target::Server("http://127.0.0.1:9".into()), "e", "r");
        r.log_params(&[("a".into(), "1".into())]);
        r.log_metrics(&[("m".into(), 1.0, 1), ("n".into(), f64::NAN, 1)]);
        r.finish("r");
        assert!(r.unsent.len() >= 4, "{:?}", r.unsent);
        assert!(r.unsent[0].contains("starting run"), "{:?}", r.unsent);
    }

    #[test]
    fn local_store_layout() {
        let d = tempfile::tempdir().unwrap();
        let root = d.path().join("mlruns");
        let mut r = Run::start(Target::Local(root.clone()), "exp", "run1");
        assert!(r.unsent.is_empty(), "{:?}", r.unsent);
        r.log_params(&[("train.lr".into(), "0.001".into())]);
        r.log_metrics(&[("train/loss".into(), 0.5, 1), ("train/loss".into(), 0.25, 2)]);
        r.finish("run1");
        let dir = root.join(&r.experiment_id).join(&r.run_id);
        assert_eq!(std::fs::read_to_string(dir.join("params/train.lr")).unwrap(), "0.001");
        let m = std::fs::read_to_string(dir.join("metrics/train/loss")).unwrap();
        assert_eq!(m.lines().count(), 2);
        assert!(std::fs::read_to_string(dir.join("meta.yaml")).unwrap().contains("status: 3"));
        let mut again = Run::start(Target::Local(root.clone()), "exp", "run2");
        assert_eq!(again.experiment_id, r.experiment_id);
        assert_eq!(r.experiment_id, "1");
        again.end("run2", true);
        let meta = root.join(&again.experiment_id).join(&again.run_id).join("meta.yaml");
        assert!(std::fs::read_to_string(meta).unwrap().contains("status: 4"), "FAILED");
    }
}
