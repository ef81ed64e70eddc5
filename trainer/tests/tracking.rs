//! Experiment tracking read back by the real tools: TensorBoard's event accumulator and MLflow's
//! Python client, against the local file store and against a live `mlflow server` (SQLite
//! backend, artifacts proxied), and a tracking server that refuses connections.

use std::path::Path;
use std::process::{Child, Command, Output, Stdio};

mod common;

fn avm(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut c = Command::new(env!("CARGO_BIN_EXE_avm"));
    c.args(args).current_dir(dir).env_remove("MLFLOW_TRACKING_URI");
    for (k, v) in env {
        c.env(k, v);
    }
    let out = c.output().unwrap();
    assert!(out.status.success(), "avm {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    out
}

fn python(args: &[&str]) {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/python/check_tracking.py");
    let out = Command::new("python3")
        .arg(script)
        .args(args)
        .env("MLFLOW_ALLOW_FILE_STORE", "true")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "check_tracking.py {args:?}:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    eprint!("{}", String::from_utf8_lossy(&out.stdout));
}

fn link(dir: &Path) -> serde_json::Value {
    serde_json::from_slice(&std::fs::read(dir.join("MODELS/small/training/tracking.json")).unwrap()).unwrap()
}

struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        // mlflow server runs uvicorn as a child: stop it first, then the server (positive pids
        // only, never a process group).
        let _ = Command::new("pkill").args(["-TERM", "-P", &self.0.id().to_string()]).status();
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn start_server(dir: &Path) -> (Server, String) {
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let child = Command::new("python3")
        .args([
            "-m",
            "mlflow",
            "server",
            "--host",
            "127.0.0.1",
            "--port",
            &port.to_string(),
            "--workers",
            "1",
        ])
        .arg("--backend-store-uri")
        .arg(format!("sqlite:///{}", dir.join("mlflow.db").display()))
        .arg("--artifacts-destination")
        .arg(dir.join("mlartifacts"))
        // No job runner: its shutdown watcher signals more than the server's own processes.
        .env("MLFLOW_SERVER_ENABLE_JOB_EXECUTION", "false")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(dir.join("server.log")).unwrap())
        .spawn()
        .expect("python3 -m mlflow server (pip install mlflow==3.17.2)");
    let server = Server(child);
    let url = format!("http://127.0.0.1:{port}");
    let t0 = std::time::Instant::now();
    loop {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
            && Command::new("python3")
                .args([
                    "-c",
                    &format!(
                        "import urllib.request as u; assert u.urlopen('{url}/health').read().strip() == b'OK'"
                    ),
                ])
                .output()
                .is_ok_and(|o| o.status.success())
        {
            break;
        }
        assert!(
            t0.elapsed().as_secs() < 120,
            "mlflow server did not start: {}",
            std::fs::read_to_string(dir.join("server.log")).unwrap_or_default()
        );
        std::thread::sleep(std::time::Duration::from_millis(500));
    }
    (server, url)
}

#[test]
fn tensorboard_and_mlflow_read_what_avm_logged() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    common::write_small_config(d, |_| {});
    let c = ["--config", "c.yaml"];
    for stage in ["simulate", "preprocess", "featurize"] {
        avm(d, &[&[stage][..], &c].concat(), &[]);
    }
    let tdir = d.join("MODELS/small/training");
    let jsonl = tdir.join("metrics.jsonl");

    // No server: TensorBoard files under logs/tensorboard and the local MLflow store mlruns/.
    avm(d, &[&["train"][..], &c].concat(), &[]);
    avm(d, &[&["evaluate"][..], &c].concat(), &[]);
    let l = link(d);
    assert!(l["unsent"].as_array().unwrap().is_empty(), "{l}");
    let run_dir = d.join(l["tensorboard_run_dir"].as_str().unwrap());
    assert!(run_dir.starts_with(d.join("logs/tensorboard")));
    python(&["tensorboard", run_dir.to_str().unwrap(), jsonl.to_str().unwrap()]);
    let store = format!("file://{}", d.join("mlruns").display());
    python(&[
        "mlflow",
        &store,
        l["mlflow_run_id"].as_str().unwrap(),
        jsonl.to_str().unwrap(),
        tdir.to_str().unwrap(),
    ]);

    // A live tracking server (SQLite, artifacts through the server).
    let (server, url) = start_server(d);
    avm(d, &[&["train"][..], &c].concat(), &[("MLFLOW_TRACKING_URI", &url)]);
    avm(d, &[&["evaluate"][..], &c].concat(), &[("MLFLOW_TRACKING_URI", &url)]);
    let l = link(d);
    assert!(l["unsent"].as_array().unwrap().is_empty(), "{l}");
    assert_eq!(l["mlflow_uri"], url.as_str());
    python(&[
        "mlflow",
        &url,
        l["mlflow_run_id"].as_str().unwrap(),
        jsonl.to_str().unwrap(),
        tdir.to_str().unwrap(),
    ]);
    // Export: the MLflow Model (scaler inside the graph) loads with mlflow.pyfunc and gives
    // avm's scores; the Model Registry holds the version, and `avm registry promote` moves the
    // production alias.
    avm(d, &["export", "--config", "c.yaml", "--version", "1.0.0"], &[("MLFLOW_TRACKING_URI", &url)]);
    let cfg = avm_trainer::config::PipelineConfig::load(&d.join("c.yaml")).unwrap();
    let test = avm_trainer::stages::featurize::load_split(&cfg, "test").unwrap();
    let bundle = std::fs::read(d.join("MODELS/small/1.0.0/detector.avmb")).unwrap();
    let det = avm_core::Detector::parse(&bundle).unwrap();
    let (mut x, mut want) = (Vec::new(), Vec::new());
    for r in test.rows.iter().take(64) {
        x.extend(r.features.iter().flat_map(|v| v.to_le_bytes()));
        want.extend(det.score(&r.features).unwrap().to_le_bytes());
    }
    std::fs::write(d.join("x.f32"), &x).unwrap();
    std::fs::write(d.join("score.f32"), &want).unwrap();
    python(&[
        "mlflow_model",
        &url,
        l["mlflow_run_id"].as_str().unwrap(),
        d.join("x.f32").to_str().unwrap(),
        d.join("score.f32").to_str().unwrap(),
        &det.features().to_string(),
        "small",
    ]);
    avm(d, &["registry", "promote", "small", "1.0.0"], &[("MLFLOW_TRACKING_URI", &url)]);
    python(&["mlflow_production", &url, "small"]);
    drop(server);

    // No server at the URI (connection refused): training still completes, the checkpoints
    // are written, and the log says what was not sent.
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let down = format!("http://127.0.0.1:{port}");
    let out = avm(d, &[&["train"][..], &c].concat(), &[("MLFLOW_TRACKING_URI", &down)]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("did not receive") && err.contains("not sent"), "{err}");
    assert!(tdir.join("best.json").exists());
    assert!(!link(d)["unsent"].as_array().unwrap().is_empty());
}
