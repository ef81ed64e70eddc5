//! One module per `avm` subcommand, in pipeline order; each returns a report (Display).
//!
//! Each stage's `run` takes the loaded [`crate::config::PipelineConfig`], resolves what it needs
//! (the contract, the extractor config at the contract's rate) and calls the stage proper,
//! which takes only that: [`preprocess::preprocess`], [`featurize::featurize`],
//! [`validate::validate`], [`simulate::run`], [`import::run`]. Train, evaluate and export take
//! the whole config because it is what they log to TensorBoard and MLflow with each run.

pub mod evaluate;
pub mod export;
pub mod extract;
pub mod featurize;
pub mod import;
pub mod init;
pub mod pipeline;
pub mod preprocess;
pub mod score;
pub mod simulate;
pub mod sync;
pub mod train;
pub mod validate;

use indicatif::{ProgressBar, ProgressStyle};

/// A progress bar on stderr (hidden when stderr is not a terminal).
pub fn progress(len: usize, what: &str) -> ProgressBar {
    if crate::ui::quiet() {
        return ProgressBar::hidden();
    }
    let pb = ProgressBar::new(len as u64);
    pb.set_style(
        ProgressStyle::with_template("{msg:>12} [{bar:30}] {pos}/{len} {elapsed_precise} (eta {eta})")
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> "),
    );
    pb.set_message(what.to_string());
    pb
}
