//! ONNX Runtime, loaded at run time (`ort` with `load-dynamic`): the library comes from PyPI's
//! `onnxruntime` wheel, which `scripts/setup.sh` installs.
//!
//! The library is looked up in `ORT_DYLIB_PATH`, else in the `onnxruntime` Python package
//! (`<site-packages>/onnxruntime/capi/libonnxruntime.so*`). When neither has it, the error says
//! how to install it; ort is never called without a library (it would panic).

use anyhow::{Context, Result, anyhow, ensure};
use ort::session::Session;
use ort::session::builder::GraphOptimizationLevel;
use ort::value::Tensor;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

/// The ONNX Runtime version this build is made for.
pub const ORT_VERSION: &str = "1.31.1";

/// What to tell a user without the library.
pub fn install_hint() -> String {
    format!(
        "install it with `python3 -m pip install onnxruntime=={ORT_VERSION}` (scripts/setup.sh does this), \
         or point ORT_DYLIB_PATH at libonnxruntime.so"
    )
}

/// Finds the ONNX Runtime shared library.
pub fn library_path() -> Result<PathBuf> {
    if let Some(p) = std::env::var_os("ORT_DYLIB_PATH") {
        let p = PathBuf::from(p);
        ensure!(
            p.is_file(),
            "ORT_DYLIB_PATH = {} is not a file: the ONNX Runtime library was not found; {}",
            p.display(),
            install_hint()
        );
        return Ok(p);
    }
    let out = std::process::Command::new("python3")
        .args(["-c", "import onnxruntime, os; print(os.path.dirname(onnxruntime.__file__))"])
        .output();
    let dir = match out {
        Ok(o) if o.status.success() => PathBuf::from(String::from_utf8_lossy(&o.stdout).trim()).join("capi"),
        _ => {
            return Err(anyhow!(
                "the ONNX Runtime library was not found (no ORT_DYLIB_PATH, and python3 cannot import onnxruntime); {}",
                install_hint()
            ));
        }
    };
    let mut libs: Vec<PathBuf> = std::fs::read_dir(&dir)
        .with_context(|| format!("listing {}", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.file_name().and_then(|n| n.to_str()).is_some_and(|n| n.starts_with("libonnxruntime.so"))
        })
        .collect();
    libs.sort();
    libs.pop().ok_or_else(|| {
        anyhow!(
            "no libonnxruntime.so* in {}: the onnxruntime package is incomplete; {}",
            dir.display(),
            install_hint()
        )
    })
}

static ENV: OnceLock<std::result::Result<ort::environment::Environment, String>> = OnceLock::new();

fn environment() -> Result<&'static ort::environment::Environment> {
    ENV.get_or_init(|| {
        let lib = library_path().map_err(|e| format!("{e:#}"))?;
        ort::init_from(&lib)
            .map_err(|e| format!("loading ONNX Runtime from {}: {e}; {}", lib.display(), install_hint()))?
            .with_name("avm")
            .build()
            .map_err(|e| format!("starting ONNX Runtime: {e}"))
    })
    .as_ref()
    .map_err(|e| anyhow!("{e}"))
}

/// An ONNX Runtime session over one model (single-threaded, so results and timings are
/// reproducible).
pub struct OrtModel {
    session: Session,
    n_features: usize,
}

/// Outputs for a batch.
#[derive(Clone, Debug, PartialEq)]
pub struct OrtOutputs {
    /// `[rows * F]`, row-major.
    pub reconstruction: Vec<f32>,
    /// `[rows]`.
    pub score: Vec<f32>,
}

impl OrtModel {
    /// Loads `model.onnx` bytes taking `n_features` inputs.
    pub fn load(bytes: &[u8], n_features: usize, origin: &Path) -> Result<OrtModel> {
        let env = environment()?;
        let session = Session::builder(env)
            .map_err(|e| anyhow!("ONNX Runtime session: {e}"))?
            .with_optimization_level(GraphOptimizationLevel::Level1)
            .map_err(|e| anyhow!("ONNX Runtime session: {e}"))?
            .with_intra_threads(1)
            .map_err(|e| anyhow!("ONNX Runtime session: {e}"))?
            .commit_from_memory(bytes)
            .map_err(|e| anyhow!("ONNX Runtime refused {}: {e}", origin.display()))?;
        Ok(OrtModel { session, n_features })
    }

    /// Runs `rows` feature vectors (row-major `[rows * F]`).
    pub fn run(&mut self, x: &[f32], rows: usize) -> Result<OrtOutputs> {
        ensure!(x.len() == rows * self.n_features, "input is not rows x {} values", self.n_features);
        let input = Tensor::from_array(([rows, self.n_features], x.to_vec()))
            .map_err(|e| anyhow!("ONNX Runtime input: {e}"))?;
        let out = self
            .session
            .run(ort::inputs![crate::model::onnx::INPUT => input])
            .map_err(|e| anyhow!("ONNX Runtime run: {e}"))?;
        let get = |name: &str| -> Result<Vec<f32>> {
            let v = out.get(name).ok_or_else(|| anyhow!("ONNX Runtime gave no output `{name}`"))?;
            let (_, data) = v.try_extract_tensor::<f32>().map_err(|e| anyhow!("output `{name}`: {e}"))?;
            Ok(data.to_vec())
        };
        let reconstruction = get(crate::model::onnx::OUTPUT_RECONSTRUCTION)?;
        let score = get(crate::model::onnx::OUTPUT_SCORE)?;
        ensure!(
            reconstruction.len() == rows * self.n_features && score.len() == rows,
            "ONNX Runtime outputs have the wrong shapes"
        );
        Ok(OrtOutputs { reconstruction, score })
    }
}
