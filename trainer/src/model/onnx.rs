//! `model.onnx`: the autoencoder as an ONNX graph, written with prost messages carrying
//! onnx.proto's field numbers (only the messages and fields used here).
//!
//! Graph (IR version [`IR_VERSION`], default-domain opset [`OPSET`]):
//! input `features` `float32 [batch, F]` (z-scored) → per layer `Gemm(h, W, B)` (`transB = 0`,
//! `W` `[d_in, d_out]`) and `Relu` / `Sigmoid` → output `reconstruction` `[batch, F]`;
//! `Sub(features, reconstruction)`, `Mul(d, d)`, `ReduceMean(axes = [1], keepdims = 0)` → output
//! `score` `[batch]`, the per-row reconstruction MSE (the anomaly score avm-core computes).
//! Weights are `raw_data` little-endian `f32`. Encoding is deterministic: same model, same bytes.

use crate::config::Activation;
use crate::model::autoencoder::Autoencoder;
use prost::Message;

/// ONNX IR version written.
pub const IR_VERSION: i64 = 8;
/// Default-domain opset written (`ReduceMean` still takes `axes` as an attribute at 17).
pub const OPSET: i64 = 17;
/// Input name.
pub const INPUT: &str = "features";
/// Reconstruction output name.
pub const OUTPUT_RECONSTRUCTION: &str = "reconstruction";
/// Score output name.
pub const OUTPUT_SCORE: &str = "score";
/// The symbolic batch dimension.
pub const BATCH_DIM: &str = "batch";

const FLOAT: i32 = 1;
const ATTR_INT: i32 = 2;
const ATTR_INTS: i32 = 7;

#[derive(Clone, PartialEq, Message)]
struct ModelProto {
    #[prost(int64, tag = "1")]
    ir_version: i64,
    #[prost(string, tag = "2")]
    producer_name: String,
    #[prost(string, tag = "3")]
    producer_version: String,
    #[prost(string, tag = "4")]
    domain: String,
    #[prost(int64, tag = "5")]
    model_version: i64,
    #[prost(string, tag = "6")]
    doc_string: String,
    #[prost(message, optional, tag = "7")]
    graph: Option<GraphProto>,
    #[prost(message, repeated, tag = "8")]
    opset_import: Vec<OperatorSetIdProto>,
    #[prost(message, repeated, tag = "14")]
    metadata_props: Vec<StringStringEntryProto>,
}

#[derive(Clone, PartialEq, Message)]
struct OperatorSetIdProto {
    #[prost(string, tag = "1")]
    domain: String,
    #[prost(int64, tag = "2")]
    version: i64,
}

#[derive(Clone, PartialEq, Message)]
struct StringStringEntryProto {
    #[prost(string, tag = "1")]
    key: String,
    #[prost(string, tag = "2")]
    value: String,
}

#[derive(Clone, PartialEq, Message)]
struct GraphProto {
    #[prost(message, repeated, tag = "1")]
    node: Vec<NodeProto>,
    #[prost(string, tag = "2")]
    name: String,
    #[prost(message, repeated, tag = "5")]
    initializer: Vec<TensorProto>,
    #[prost(string, tag = "10")]
    doc_string: String,
    #[prost(message, repeated, tag = "11")]
    input: Vec<ValueInfoProto>,
    #[prost(message, repeated, tag = "12")]
    output: Vec<ValueInfoProto>,
}

#[derive(Clone, PartialEq, Message)]
struct NodeProto {
    #[prost(string, repeated, tag = "1")]
    input: Vec<String>,
    #[prost(string, repeated, tag = "2")]
    output: Vec<String>,
    #[prost(string, tag = "3")]
    name: String,
    #[prost(string, tag = "4")]
    op_type: String,
    #[prost(message, repeated, tag = "5")]
    attribute: Vec<AttributeProto>,
}

#[derive(Clone, PartialEq, Message)]
struct AttributeProto {
    #[prost(string, tag = "1")]
    name: String,
    #[prost(int64, optional, tag = "3")]
    i: Option<i64>,
    #[prost(int64, repeated, tag = "8")]
    ints: Vec<i64>,
    #[prost(int32, tag = "20")]
    r#type: i32,
}

#[derive(Clone, PartialEq, Message)]
struct TensorProto {
    #[prost(int64, repeated, tag = "1")]
    dims: Vec<i64>,
    #[prost(int32, tag = "2")]
    data_type: i32,
    #[prost(string, tag = "8")]
    name: String,
    #[prost(bytes = "vec", tag = "9")]
    raw_data: Vec<u8>,
}

#[derive(Clone, PartialEq, Message)]
struct ValueInfoProto {
    #[prost(string, tag = "1")]
    name: String,
    #[prost(message, optional, tag = "2")]
    r#type: Option<TypeProto>,
}

#[derive(Clone, PartialEq, Message)]
struct TypeProto {
    #[prost(message, optional, tag = "1")]
    tensor_type: Option<TensorTypeProto>,
}

#[derive(Clone, PartialEq, Message)]
struct TensorTypeProto {
    #[prost(int32, tag = "1")]
    elem_type: i32,
    #[prost(message, optional, tag = "2")]
    shape: Option<TensorShapeProto>,
}

#[derive(Clone, PartialEq, Message)]
struct TensorShapeProto {
    #[prost(message, repeated, tag = "1")]
    dim: Vec<Dimension>,
}

#[derive(Clone, PartialEq, Message)]
struct Dimension {
    #[prost(int64, optional, tag = "1")]
    dim_value: Option<i64>,
    #[prost(string, optional, tag = "2")]
    dim_param: Option<String>,
}

fn dim_batch() -> Dimension {
    Dimension { dim_value: None, dim_param: Some(BATCH_DIM.into()) }
}

fn dim(n: usize) -> Dimension {
    Dimension { dim_value: Some(n as i64), dim_param: None }
}

fn value(name: &str, dims: Vec<Dimension>) -> ValueInfoProto {
    ValueInfoProto {
        name: name.into(),
        r#type: Some(TypeProto {
            tensor_type: Some(TensorTypeProto {
                elem_type: FLOAT,
                shape: Some(TensorShapeProto { dim: dims }),
            }),
        }),
    }
}

fn tensor(name: &str, dims: &[usize], data: &[f32]) -> TensorProto {
    TensorProto {
        dims: dims.iter().map(|&d| d as i64).collect(),
        data_type: FLOAT,
        name: name.into(),
        raw_data: data.iter().flat_map(|v| v.to_le_bytes()).collect(),
    }
}

fn node(op: &str, name: &str, inputs: &[&str], output: &str, attribute: Vec<AttributeProto>) -> NodeProto {
    NodeProto {
        input: inputs.iter().map(|s| s.to_string()).collect(),
        output: vec![output.into()],
        name: name.into(),
        op_type: op.into(),
        attribute,
    }
}

fn int_attr(name: &str, v: i64) -> AttributeProto {
    AttributeProto { name: name.into(), i: Some(v), ints: Vec::new(), r#type: ATTR_INT }
}

/// Encodes `model` as an ONNX model. `metadata` goes into `metadata_props` (sorted by key by the
/// caller for determinism).
pub fn encode(model: &Autoencoder, doc: &str, metadata: &[(String, String)]) -> Vec<u8> {
    let f = model.n_features();
    let mut nodes = Vec::new();
    let mut init = Vec::new();
    let mut h = INPUT.to_string();
    let last = model.layers.len() - 1;
    for (i, l) in model.layers.iter().enumerate() {
        let (w, b) = (format!("layer{i}.weight"), format!("layer{i}.bias"));
        init.push(tensor(&w, &[l.d_in, l.d_out], &l.w));
        init.push(tensor(&b, &[l.d_out], &l.b));
        let act = match l.activation {
            Activation::Relu => Some("Relu"),
            Activation::Sigmoid => Some("Sigmoid"),
            Activation::Linear => None,
        };
        let gemm_out = match (i == last, act) {
            (true, None) => OUTPUT_RECONSTRUCTION.to_string(),
            _ => format!("layer{i}.gemm"),
        };
        nodes.push(node(
            "Gemm",
            &format!("layer{i}.Gemm"),
            &[&h, &w, &b],
            &gemm_out,
            vec![int_attr("transA", 0), int_attr("transB", 0)],
        ));
        h = gemm_out;
        if let Some(op) = act {
            let out = if i == last { OUTPUT_RECONSTRUCTION.to_string() } else { format!("layer{i}.{op}") };
            nodes.push(node(op, &format!("layer{i}.{op}"), &[&h], &out, Vec::new()));
            h = out;
        }
    }
    nodes.push(node("Sub", "score.Sub", &[INPUT, OUTPUT_RECONSTRUCTION], "score.diff", Vec::new()));
    nodes.push(node("Mul", "score.Mul", &["score.diff", "score.diff"], "score.sq", Vec::new()));
    nodes.push(node(
        "ReduceMean",
        "score.ReduceMean",
        &["score.sq"],
        OUTPUT_SCORE,
        vec![
            AttributeProto { name: "axes".into(), i: None, ints: vec![1], r#type: ATTR_INTS },
            int_attr("keepdims", 0),
        ],
    ));
    let graph = GraphProto {
        node: nodes,
        name: "avm_autoencoder".into(),
        initializer: init,
        doc_string: doc.into(),
        input: vec![value(INPUT, vec![dim_batch(), dim(f)])],
        output: vec![
            value(OUTPUT_RECONSTRUCTION, vec![dim_batch(), dim(f)]),
            value(OUTPUT_SCORE, vec![dim_batch()]),
        ],
    };
    ModelProto {
        ir_version: IR_VERSION,
        producer_name: "avm".into(),
        producer_version: env!("CARGO_PKG_VERSION").into(),
        domain: "avm".into(),
        model_version: 1,
        doc_string: doc.into(),
        graph: Some(graph),
        opset_import: vec![OperatorSetIdProto { domain: String::new(), version: OPSET }],
        metadata_props: metadata
            .iter()
            .map(|(k, v)| StringStringEntryProto { key: k.clone(), value: v.clone() })
            .collect(),
    }
    .encode_to_vec()
}

/// The scaled features inside [`with_scaler`]'s graph.
pub const SCALED: &str = "scaled_features";

/// `model.onnx` with avm's z-scoring inside, for consumers that hold raw features (the MLflow
/// model): input `features` takes the raw features, `Sub` the scaler's means and `Div` by its
/// standard deviations (a zero deviation divides by 1, as avm-core's `scale_value`) give
/// `scaled_features`, which feed the autoencoder and the score as before. Elementwise `f32`
/// subtraction and division are avm-core's own operations, so the scaled values are avm's bit
/// for bit; the rest is ONNX Runtime's arithmetic (summation order), as for `model.onnx`.
pub fn with_scaler(onnx: &[u8], mean: &[f32], std: &[f32]) -> anyhow::Result<Vec<u8>> {
    let mut m = ModelProto::decode(onnx).map_err(|e| anyhow::anyhow!("model.onnx does not decode: {e}"))?;
    let g = m.graph.as_mut().ok_or_else(|| anyhow::anyhow!("model.onnx has no graph"))?;
    let f = mean.len();
    anyhow::ensure!(std.len() == f, "scaler: {f} means but {} standard deviations", std.len());
    let width = g
        .input
        .iter()
        .find(|v| v.name == INPUT)
        .and_then(|v| v.r#type.as_ref()?.tensor_type.as_ref()?.shape.as_ref()?.dim.get(1)?.dim_value);
    anyhow::ensure!(width == Some(f as i64), "model.onnx takes {width:?} features; the scaler has {f}");
    for n in &mut g.node {
        for i in &mut n.input {
            if i == INPUT {
                *i = SCALED.into();
            }
        }
    }
    let safe: Vec<f32> = std.iter().map(|&s| if s == 0.0 { 1.0 } else { s }).collect();
    g.initializer.push(tensor("scaler.mean", &[f], mean));
    g.initializer.push(tensor("scaler.std", &[f], &safe));
    let mut nodes = vec![
        node("Sub", "scaler.Sub", &[INPUT, "scaler.mean"], "scaler.centred", Vec::new()),
        node("Div", "scaler.Div", &["scaler.centred", "scaler.std"], SCALED, Vec::new()),
    ];
    nodes.append(&mut g.node);
    g.node = nodes;
    g.doc_string.push_str(" Input: raw (unscaled) features; the scaler is applied inside the graph.");
    Ok(m.encode_to_vec())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{Activation, TrainConfig};
    use crate::model::autoencoder::Dense;

    #[test]
    fn decodes_back_with_the_right_shape() {
        let cfg = TrainConfig {
            hidden: vec![3],
            activation: Activation::Sigmoid,
            learning_rate: 0.001,
            batch_size: 8,
            max_epochs: 1,
            patience: 1,
            seed: 1,
            keep_epochs: 3,
            lr_schedule: None,
        };
        let m = Autoencoder::init(4, &cfg);
        let bytes = encode(&m, "test", &[("k".into(), "v".into())]);
        assert_eq!(bytes, encode(&m, "test", &[("k".into(), "v".into())]), "deterministic");
        let back = ModelProto::decode(bytes.as_slice()).unwrap();
        let g = back.graph.unwrap();
        let ops: Vec<&str> = g.node.iter().map(|n| n.op_type.as_str()).collect();
        assert_eq!(ops, ["Gemm", "Sigmoid", "Gemm", "Sub", "Mul", "ReduceMean"]);
        assert_eq!(g.node[2].output, [OUTPUT_RECONSTRUCTION]);
        assert_eq!(g.initializer[0].dims, [4, 3]);
        assert_eq!(g.initializer[0].raw_data.len(), 4 * 12);
        let Dense { w, .. } = &m.layers[0];
        assert_eq!(&g.initializer[0].raw_data[..4], &w[0].to_le_bytes());
        assert_eq!(back.opset_import[0].version, OPSET);
        let scaled = with_scaler(&bytes, &[1.0, 2.0, 3.0, 4.0], &[0.5, 0.0, 2.0, 1.0]).unwrap();
        let g = ModelProto::decode(scaled.as_slice()).unwrap().graph.unwrap();
        let ops: Vec<&str> = g.node.iter().map(|n| n.op_type.as_str()).collect();
        assert_eq!(ops, ["Sub", "Div", "Gemm", "Sigmoid", "Gemm", "Sub", "Mul", "ReduceMean"]);
        assert_eq!(g.node[2].input[0], SCALED);
        assert_eq!(g.node[5].input, [SCALED, OUTPUT_RECONSTRUCTION]);
        let std = g.initializer.iter().find(|t| t.name == "scaler.std").unwrap();
        assert_eq!(&std.raw_data[4..8], &1f32.to_le_bytes(), "a zero std divides by 1");
        assert!(with_scaler(&bytes, &[0.0; 3], &[1.0; 3]).is_err(), "width checked");
    }
}
