//! `avm._native`: avm for Python, as a PyO3 extension (abi3). Every number comes from the same
//! Rust code the `avm` CLI and the firmware run — avm-core's extractor and detector, the
//! trainer's recording reader/writer, preprocess's window rows and `avm score` — so a notebook,
//! a Spark task and the aircraft compute the same bits. The pure-Python package around it
//! (`python/avm/`) adds the numpy/pyarrow conveniences, a scikit-learn wrapper and the Spark job.
//!
//! Errors: every refusal is a `ValueError` whose text is avm's own message (the file, row or
//! field and the rule); nothing here panics on user input.

use anyhow::Context as _;
use avm_core::{Alerter, Detector, ExtractorConfig, FEATURE_SCHEMA_VERSION};
use avm_trainer::config::{Calibration, CalibrationMethod, PipelineConfig};
use avm_trainer::formats::recording::{self, ChannelData, Recording, RecordingMeta, Samples};
use avm_trainer::formats::{labels, windows};
use avm_trainer::stages::{extract, preprocess, score};
use numpy::{
    IntoPyArray, PyArray1, PyArrayMethods, PyReadonlyArray1, PyReadonlyArray2, PyUntypedArrayMethods,
};
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList};
use std::path::{Path, PathBuf};

fn err(e: impl std::fmt::Display) -> PyErr {
    PyValueError::new_err(e.to_string())
}

fn anyerr(e: anyhow::Error) -> PyErr {
    PyValueError::new_err(format!("{e:#}"))
}

fn config_from_json(json: &str) -> PyResult<ExtractorConfig> {
    let cfg: ExtractorConfig =
        serde_json::from_str(json).map_err(|e| err(format!("extractor config JSON: {e}")))?;
    cfg.validate().map_err(|e| err(format!("extractor config: {e}")))?;
    Ok(cfg)
}

fn config_json(cfg: &ExtractorConfig) -> String {
    serde_json::to_string(cfg).unwrap_or_default()
}

/// `(extractor config JSON, channels, feature names, units)`.
type FeatureSchema = (String, Vec<String>, Vec<String>, Vec<String>);

/// What a pipeline config implies for features: the extractor config (JSON), the contract's
/// vibration channels, and the feature names and units in the window table's order.
#[pyfunction]
fn config_from_file(path: PathBuf) -> PyResult<FeatureSchema> {
    let cfg = PipelineConfig::load(&path).map_err(anyerr)?;
    let contract = cfg.load_contract().map_err(anyerr)?;
    let xcfg = cfg.extractor_config(&contract).map_err(err)?;
    let channels: Vec<String> = contract.vibration_channels().map(|c| c.name.clone()).collect();
    let names = windows::feature_names(&channels, &xcfg.features).map_err(anyerr)?;
    let units = windows::feature_units(&channels, &xcfg.features);
    Ok((config_json(&xcfg), channels, names, units))
}

/// avm-core's default extractor config at `sample_rate_hz` (JSON).
#[pyfunction]
fn default_config(sample_rate_hz: u32) -> PyResult<String> {
    ExtractorConfig::default_at(sample_rate_hz).map(|c| config_json(&c)).map_err(err)
}

/// Feature names and units for `channels` under an extractor config (JSON).
#[pyfunction]
fn feature_schema(config_json: &str, channels: Vec<String>) -> PyResult<(Vec<String>, Vec<String>)> {
    let cfg = config_from_json(config_json)?;
    let names = windows::feature_names(&channels, &cfg.features).map_err(anyerr)?;
    Ok((names, windows::feature_units(&channels, &cfg.features)))
}

/// Frames as numpy arrays (one entry per window).
fn frames_dict<'py>(
    py: Python<'py>,
    frames: Vec<extract::Frame>,
    channels: usize,
) -> PyResult<Bound<'py, PyDict>> {
    let k = frames.len();
    let width = frames.first().map_or(0, |f| f.features.len());
    let d = PyDict::new(py);
    d.set_item("window_index", frames.iter().map(|f| f.window_index).collect::<Vec<_>>().into_pyarray(py))?;
    d.set_item("start_sample", frames.iter().map(|f| f.start_sample).collect::<Vec<_>>().into_pyarray(py))?;
    d.set_item("valid", frames.iter().map(|f| f.valid).collect::<Vec<_>>().into_pyarray(py))?;
    d.set_item("roc_valid", frames.iter().map(|f| f.roc_valid).collect::<Vec<_>>().into_pyarray(py))?;
    let feats: Vec<f32> = frames.iter().flat_map(|f| f.features.iter().copied()).collect();
    d.set_item("features", feats.into_pyarray(py).reshape([k, width])?)?;
    let q: Vec<u32> = frames
        .iter()
        .flat_map(|f| f.quality.iter().flat_map(|q| [q.gap_filled, q.clipped, q.unrepaired, q.speed_held]))
        .collect();
    d.set_item("quality", q.into_pyarray(py).reshape([k, channels, 4])?)?;
    Ok(d)
}

/// avm-core's streaming feature extractor for 1 to 4 vibration channels (the trainer's
/// capacity: FFTs up to 32768 points, the envelope up to 4096). Feed blocks of samples in time order; each
/// call returns the windows it completed. How a stream is cut into blocks never changes a bit.
#[pyclass(module = "avm._native")]
struct Extractor {
    channels: usize,
    cfg: ExtractorConfig,
    inner: Option<extract::Extractor>,
}

#[pymethods]
impl Extractor {
    #[new]
    fn new(channels: usize, config_json: &str) -> PyResult<Self> {
        let cfg = config_from_json(config_json)?;
        let inner = extract::Extractor::new(channels, cfg, false).map_err(err)?;
        Ok(Extractor { channels, cfg, inner: Some(inner) })
    }

    /// Pushes `vib_g` (float32, shape (n, channels)) with the shaft speed each channel is
    /// referenced to (`rpm`, float32, shape (n, channels)); returns the completed windows.
    fn push<'py>(
        &mut self,
        py: Python<'py>,
        vib_g: PyReadonlyArray2<'py, f32>,
        rpm: PyReadonlyArray2<'py, f32>,
    ) -> PyResult<Bound<'py, PyDict>> {
        let (n, ch) = (vib_g.shape()[0], vib_g.shape()[1]);
        if ch != self.channels {
            return Err(err(format!(
                "vib_g has {ch} columns; this extractor has {} channels",
                self.channels
            )));
        }
        if rpm.shape() != vib_g.shape() {
            return Err(err(format!("rpm has shape {:?}; it must be vib_g's, ({n}, {ch})", rpm.shape())));
        }
        let (v, r) = (vib_g.as_array(), rpm.as_array());
        let vib: Vec<Vec<f32>> = (0..ch).map(|c| v.column(c).to_vec()).collect();
        let speed: Vec<Vec<f32>> = (0..ch).map(|c| r.column(c).to_vec()).collect();
        let inner = self.inner.as_mut().ok_or_else(|| err("extractor was finished"))?;
        let vib_refs: Vec<&[f32]> = vib.iter().map(Vec::as_slice).collect();
        let speed_refs: Vec<&[f32]> = speed.iter().map(Vec::as_slice).collect();
        let refs: Vec<usize> = (0..ch).collect();
        py.detach(|| inner.push(&vib_refs, &speed_refs, &refs)).map_err(err)?;
        let frames = inner.take_frames();
        frames_dict(py, frames, self.channels)
    }

    /// Ends the stream (releases the samples the sanitiser holds back) and returns the windows
    /// they complete; the extractor is then ready for a new stream.
    fn finish<'py>(&mut self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let inner = self.inner.take().ok_or_else(|| err("extractor was finished"))?;
        let (frames, _) = inner.finish();
        self.inner = Some(extract::Extractor::new(self.channels, self.cfg, false).map_err(err)?);
        frames_dict(py, frames, self.channels)
    }

    /// The extractor config (JSON).
    #[getter]
    fn config_json(&self) -> String {
        config_json(&self.cfg)
    }

    /// Vibration channels.
    #[getter]
    fn channels(&self) -> usize {
        self.channels
    }
}

type Det<'a> = Detector<'a>;

self_cell::self_cell!(
    struct DetCell {
        owner: Vec<u8>,
        #[covariant]
        dependent: Det,
    }
);

/// A detector bundle (`detector.avmb`), checked and parsed (CRC-32, schema, scaler, network,
/// phases, alert policy).
#[pyclass(module = "avm._native", name = "Detector", frozen)]
struct PyDetector {
    cell: DetCell,
}

impl PyDetector {
    fn det(&self) -> &Detector<'_> {
        self.cell.borrow_dependent()
    }

    fn matrix<'py>(&self, x: &PyReadonlyArray2<'py, f32>) -> PyResult<(usize, usize)> {
        let (n, k) = (x.shape()[0], x.shape()[1]);
        if k != self.det().features() {
            return Err(err(format!(
                "features have {k} columns; the detector takes {}",
                self.det().features()
            )));
        }
        Ok((n, k))
    }
}

#[pymethods]
impl PyDetector {
    #[new]
    fn new(bundle: Vec<u8>) -> PyResult<Self> {
        let cell = DetCell::try_new(bundle, |b| Detector::parse(b)).map_err(err)?;
        Ok(PyDetector { cell })
    }

    /// Vibration channels, in feature order.
    #[getter]
    fn channel_names(&self) -> Vec<String> {
        (0..self.det().channels()).filter_map(|i| self.det().channel_name(i)).map(str::to_owned).collect()
    }

    /// Features per window.
    #[getter]
    fn features(&self) -> usize {
        self.det().features()
    }

    /// The global threshold (unknown phase).
    #[getter]
    fn threshold(&self) -> f32 {
        self.det().threshold()
    }

    /// The model version.
    #[getter]
    fn version(&self) -> (u16, u16, u16) {
        let [a, b, c] = self.det().version();
        (a, b, c)
    }

    /// The bundle's CRC-32.
    #[getter]
    fn checksum(&self) -> u32 {
        self.det().checksum()
    }

    /// The phase table: `(name, threshold, no_verdict)` per phase code.
    #[getter]
    fn phases(&self) -> Vec<(String, f32, bool)> {
        (0..self.det().phase_count())
            .filter_map(|i| self.det().phase(i))
            .map(|p| (p.name.to_owned(), p.threshold, p.no_verdict))
            .collect()
    }

    /// The alert policy.
    #[getter]
    fn alert_policy<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let p = self.det().alert_policy();
        let d = PyDict::new(py);
        d.set_item("raise_count", p.raise_count)?;
        d.set_item("raise_window", p.raise_window)?;
        d.set_item("clear_count", p.clear_count)?;
        d.set_item("clear_fraction", p.clear_fraction)?;
        d.set_item("latch", p.latch)?;
        Ok(d)
    }

    /// The extractor config the model was trained with (JSON).
    #[getter]
    fn config_json(&self) -> String {
        config_json(&self.det().config())
    }

    /// The code of phase `name`, or None.
    fn phase_code(&self, name: &str) -> Option<u8> {
        self.det().phase_code(name)
    }

    /// z-scores raw features (float32, shape (n, features)).
    fn scale<'py>(
        &self,
        py: Python<'py>,
        x: PyReadonlyArray2<'py, f32>,
    ) -> PyResult<Bound<'py, numpy::PyArray2<f32>>> {
        let (n, k) = self.matrix(&x)?;
        let a = x.as_array();
        let mut out = vec![0f32; n * k];
        for (i, row) in a.rows().into_iter().enumerate() {
            let row: Vec<f32> = row.to_vec();
            self.det().scale(&row, &mut out[i * k..(i + 1) * k]).map_err(err)?;
        }
        out.into_pyarray(py).reshape([n, k])
    }

    /// The anomaly score of every row of raw features (float32, shape (n, features)).
    fn score<'py>(
        &self,
        py: Python<'py>,
        x: PyReadonlyArray2<'py, f32>,
    ) -> PyResult<Bound<'py, PyArray1<f32>>> {
        self.matrix(&x)?;
        let a = x.as_array();
        let mut out = Vec::with_capacity(a.nrows());
        for row in a.rows() {
            let row: Vec<f32> = row.to_vec();
            out.push(self.det().score(&row).map_err(err)?);
        }
        Ok(out.into_pyarray(py))
    }

    /// The verdicts on scored windows: per window its phase code (255 unknown) decides the
    /// threshold and whether it gets a verdict (avm-core's `Detector::judge`).
    fn judge<'py>(
        &self,
        py: Python<'py>,
        window_index: PyReadonlyArray1<'py, u32>,
        score: PyReadonlyArray1<'py, f32>,
        valid: PyReadonlyArray1<'py, bool>,
        phase: PyReadonlyArray1<'py, u8>,
    ) -> PyResult<Bound<'py, PyDict>> {
        let (w, s, v, p) = (window_index.as_array(), score.as_array(), valid.as_array(), phase.as_array());
        let n = w.len();
        if s.len() != n || v.len() != n || p.len() != n {
            return Err(err("window_index, score, valid and phase must have the same length"));
        }
        let (mut thr, mut judged, mut alarm, mut ph) = (vec![], vec![], vec![], vec![]);
        for i in 0..n {
            let verdict = self.det().judge(w[i], s[i], v[i], p[i]).map_err(err)?;
            thr.push(verdict.threshold);
            judged.push(verdict.judged);
            alarm.push(verdict.alarm);
            ph.push(verdict.phase);
        }
        let d = PyDict::new(py);
        d.set_item("threshold", thr.into_pyarray(py))?;
        d.set_item("judged", judged.into_pyarray(py))?;
        d.set_item("alarm", alarm.into_pyarray(py))?;
        d.set_item("phase", ph.into_pyarray(py))?;
        Ok(d)
    }
}

/// The alert state machine of one flight (the bundle's policy: M of N, hysteresis, latch).
#[pyclass(module = "avm._native", name = "Alerter")]
struct PyAlerter {
    inner: Alerter,
}

#[pymethods]
impl PyAlerter {
    #[new]
    fn new(detector: PyRef<'_, PyDetector>) -> PyResult<Self> {
        Ok(PyAlerter { inner: Alerter::new(detector.det().alert_policy()).map_err(err)? })
    }

    /// Feeds one window's verdict; returns the alert event it causes, or None.
    #[allow(clippy::too_many_arguments)]
    fn step<'py>(
        &mut self,
        py: Python<'py>,
        window_index: u32,
        score: f32,
        threshold: f32,
        valid: bool,
        judged: bool,
        alarm: bool,
        phase: u8,
    ) -> PyResult<Option<Bound<'py, PyDict>>> {
        let v = avm_core::Verdict { window_index, score, threshold, valid, judged, phase, alarm };
        let Some(e) = self.inner.step(&v) else { return Ok(None) };
        let d = PyDict::new(py);
        d.set_item(
            "kind",
            match e.kind {
                avm_core::AlertKind::Raised => "raised",
                avm_core::AlertKind::Cleared => "cleared",
            },
        )?;
        d.set_item("window_index", e.window_index)?;
        d.set_item("score", e.score)?;
        d.set_item("threshold", e.threshold)?;
        d.set_item("count", e.count)?;
        d.set_item("of", e.of)?;
        d.set_item("raised_window", e.raised_window)?;
        d.set_item("peak_score", e.peak_score)?;
        Ok(Some(d))
    }

    /// A new flight: no alert up, no history.
    fn reset(&mut self) {
        self.inner.reset();
    }
}

/// Reads a recording (Parquet or CSV, avm's format; CRC and metadata checked): the metadata
/// (JSON) and per channel `(name, times_s float64, values)` with values float32 or a list of str.
#[pyfunction]
fn read_recording(py: Python<'_>, path: PathBuf) -> PyResult<(String, Py<PyList>)> {
    let rec = py.detach(|| recording::read(&path)).map_err(err)?;
    let meta = serde_json::to_string(&rec.meta).map_err(err)?;
    let list = PyList::empty(py);
    for (m, d) in rec.meta.channels.iter().zip(rec.data) {
        let times = d.times_s.into_pyarray(py);
        let values: Py<PyAny> = match d.samples {
            Samples::Numeric(v) => v.into_pyarray(py).into_any().unbind(),
            Samples::Text(v) => PyList::new(py, v)?.into_any().unbind(),
        };
        list.append((m.name.clone(), times, values))?;
    }
    Ok((meta, list.unbind()))
}

/// Writes a recording in avm's Parquet format (content CRC-32 computed here): `meta_json` is the
/// metadata (`channels` in column order), `channels` per channel `(name, times_s, values)`.
/// The file is written to a temporary path, read back with avm's reader (every rule checked),
/// then renamed: a recording avm would refuse is never left at `path`.
#[pyfunction]
fn write_recording(
    py: Python<'_>,
    path: PathBuf,
    meta_json: &str,
    channels: Vec<(String, Py<PyAny>, Py<PyAny>)>,
) -> PyResult<()> {
    let mut meta: RecordingMeta =
        serde_json::from_str(meta_json).map_err(|e| err(format!("recording metadata: {e}")))?;
    meta.content_crc32 = None;
    if meta.channels.len() != channels.len() {
        return Err(err(format!(
            "the metadata lists {} channels but {} were given",
            meta.channels.len(),
            channels.len()
        )));
    }
    let mut data = Vec::new();
    for (m, (name, times, values)) in meta.channels.iter().zip(channels) {
        if m.name != name {
            return Err(err(format!("channel {name:?} is given where the metadata has {:?}", m.name)));
        }
        let times: Vec<f64> = times
            .bind(py)
            .extract::<PyReadonlyArray1<'_, f64>>()
            .map_err(|_| err(format!("channel {name}: times_s must be a float64 numpy array")))?
            .as_array()
            .to_vec();
        let values = values.bind(py);
        let samples = if let Ok(v) = values.extract::<PyReadonlyArray1<'_, f32>>() {
            Samples::Numeric(v.as_array().to_vec())
        } else if let Ok(v) = values.extract::<Vec<String>>() {
            Samples::Text(v)
        } else {
            return Err(err(format!(
                "channel {name}: values must be a float32 numpy array or a list of str"
            )));
        };
        if samples.len() != times.len() {
            return Err(err(format!("channel {name}: {} times but {} values", times.len(), samples.len())));
        }
        if let Some(i) =
            times.windows(2).position(|w| w[0].partial_cmp(&w[1]) != Some(std::cmp::Ordering::Less))
        {
            return Err(err(format!(
                "channel {name}: times_s must be finite and strictly increasing (sample {})",
                i + 1
            )));
        }
        if times.iter().any(|t| !t.is_finite()) {
            return Err(err(format!("channel {name}: times_s must be finite")));
        }
        let rows = (0..times.len() as u32).collect();
        data.push(ChannelData { times_s: times, samples, rows });
    }
    let rec = Recording { meta, data, path: PathBuf::new() };
    py.detach(|| -> anyhow::Result<()> {
        let dir = path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
        let tmp = tempfile::Builder::new()
            .prefix(".avm-recording-")
            .suffix(".parquet")
            .tempfile_in(dir)
            .with_context(|| format!("creating a temporary file in {}", dir.display()))?;
        recording::write_parquet(&rec, tmp.path())?;
        recording::read(tmp.path()).map_err(|e| anyhow::anyhow!("{e}"))?;
        tmp.persist(&path).with_context(|| format!("renaming into {}", path.display()))?;
        Ok(())
    })
    .map_err(anyerr)
}

/// The window rows `avm preprocess` computes for one recording under a pipeline config
/// (validation, synchronisation, avm-core, labels), written with avm's window-table writer to
/// `out` (Parquet). Returns the number of windows.
#[pyfunction]
#[pyo3(signature = (recording, config, out, labels=None, chunk_rows=65536))]
fn write_windows(
    py: Python<'_>,
    recording: PathBuf,
    config: PathBuf,
    out: PathBuf,
    labels: Option<PathBuf>,
    chunk_rows: usize,
) -> PyResult<usize> {
    py.detach(|| -> anyhow::Result<usize> {
        let cfg = PipelineConfig::load(&config)?;
        let contract = cfg.load_contract()?;
        let xcfg = cfg.extractor_config(&contract)?;
        let intervals = match &labels {
            Some(p) => labels::read(p).map_err(|e| anyhow::anyhow!("{e}"))?,
            None => Vec::new(),
        };
        let (_, rows) =
            preprocess::recording_windows(&recording, &contract, xcfg, &intervals, chunk_rows.max(1))?;
        let channels: Vec<String> = contract.vibration_channels().map(|c| c.name.clone()).collect();
        let names = windows::feature_names(&channels, &xcfg.features)?;
        let refs: Vec<&windows::Window> = rows.iter().collect();
        windows::write_table(&out, &refs, &channels, &names, &[])?;
        Ok(rows.len())
    })
    .map_err(anyerr)
}

/// `avm score`: scores recordings with a detector version (a directory, or
/// `<name>@<version|production|latest>` in `registry`) and writes avm score's outputs to `out`.
/// Returns the flight summaries (JSON).
#[pyfunction]
#[pyo3(signature = (model, recordings, out, labels=None, registry=None, deadline_s=60.0))]
fn score_recordings(
    py: Python<'_>,
    model: String,
    recordings: Vec<PathBuf>,
    out: PathBuf,
    labels: Option<PathBuf>,
    registry: Option<PathBuf>,
    deadline_s: f64,
) -> PyResult<String> {
    py.detach(|| -> anyhow::Result<String> {
        let dir = score::resolve(&model, registry.as_deref().unwrap_or(Path::new("REGISTRY")))?;
        let m = score::load(&dir)?;
        let intervals = match &labels {
            Some(p) => Some(labels::read(p).map_err(|e| anyhow::anyhow!("{e}"))?),
            None => None,
        };
        let s = score::score(&m, &recordings, intervals.as_deref(), deadline_s)?;
        score::write(&s, &out)?;
        Ok(serde_json::to_string(&s)?)
    })
    .map_err(anyerr)
}

/// A threshold from normal calibration scores by avm's rule (`empirical`, `conformal` or
/// `tolerance` at `confidence`): `(threshold, n, above, guarantee)`.
#[pyfunction]
#[pyo3(signature = (normal_scores, target_far, method="conformal", confidence=0.9))]
fn calibrate(
    normal_scores: Vec<f64>,
    target_far: f64,
    method: &str,
    confidence: f64,
) -> PyResult<(f64, usize, usize, String)> {
    let method = match method {
        "empirical" => CalibrationMethod::Empirical,
        "conformal" => CalibrationMethod::Conformal,
        "tolerance" => CalibrationMethod::Tolerance,
        other => {
            return Err(err(format!("calibration method {other:?}: use empirical, conformal or tolerance")));
        }
    };
    if !(target_far > 0.0 && target_far < 1.0) {
        return Err(err(format!("target_far {target_far}: must be in (0, 1)")));
    }
    if !(confidence > 0.0 && confidence < 1.0) {
        return Err(err(format!("confidence {confidence}: must be in (0, 1)")));
    }
    if let Some(i) = normal_scores.iter().position(|s| !s.is_finite()) {
        return Err(err(format!("normal score {i} is not finite")));
    }
    let c = avm_trainer::model::calibration::threshold(
        Calibration { method, confidence },
        &normal_scores,
        target_far,
        "calibration",
    )
    .map_err(anyerr)?;
    Ok((c.threshold, c.n, c.above, c.guarantee))
}

#[pymodule]
#[pyo3(name = "_native")]
fn avm_native(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("FEATURE_SCHEMA_VERSION", FEATURE_SCHEMA_VERSION)?;
    m.add("PHASE_UNKNOWN", avm_core::PHASE_UNKNOWN)?;
    m.add("AVM_VERSION", env!("CARGO_PKG_VERSION"))?;
    m.add_class::<Extractor>()?;
    m.add_class::<PyDetector>()?;
    m.add_class::<PyAlerter>()?;
    m.add_function(wrap_pyfunction!(config_from_file, m)?)?;
    m.add_function(wrap_pyfunction!(default_config, m)?)?;
    m.add_function(wrap_pyfunction!(feature_schema, m)?)?;
    m.add_function(wrap_pyfunction!(read_recording, m)?)?;
    m.add_function(wrap_pyfunction!(write_recording, m)?)?;
    m.add_function(wrap_pyfunction!(write_windows, m)?)?;
    m.add_function(wrap_pyfunction!(score_recordings, m)?)?;
    m.add_function(wrap_pyfunction!(calibrate, m)?)?;
    Ok(())
}
