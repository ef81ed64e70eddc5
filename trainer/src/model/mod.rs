//! The learned part: the autoencoder, its avm-core bundle, ONNX Runtime and the metrics it is
//! judged by.

pub mod autoencoder;
pub mod calibration;
pub mod checkpoint;
pub mod detector;
pub mod flights;
pub mod metrics;
pub mod onnx;
pub mod runtime;
