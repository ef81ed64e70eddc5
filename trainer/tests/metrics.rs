//! Metrics against scikit-learn (golden cases from `tests/golden/metrics_golden.py`) and
//! property tests of the ROC AUC.

use avm_trainer::model::metrics::{Confusion, calibrate_threshold, roc_auc, roc_curve};
use proptest::prelude::*;
use serde_json::Value;

fn golden() -> Vec<Value> {
    let p = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden/metrics.json");
    let v: Value = serde_json::from_str(&std::fs::read_to_string(p).unwrap()).unwrap();
    v["cases"].as_array().unwrap().clone()
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() <= 1e-12 * b.abs().max(1.0)
}

#[test]
fn matches_scikit_learn() {
    let cases = golden();
    assert!(cases.len() >= 7);
    for c in cases {
        let name = c["name"].as_str().unwrap();
        let s: Vec<f64> = c["scores"].as_array().unwrap().iter().map(|v| v.as_f64().unwrap()).collect();
        let l: Vec<u8> = c["labels"].as_array().unwrap().iter().map(|v| v.as_u64().unwrap() as u8).collect();
        if c.get("auc_undefined").is_some() {
            let e = roc_auc(&s, &l).unwrap_err();
            assert!(e.to_string().contains("need both normal and faulty"), "{name}: {e}");
            assert!(roc_curve(&s, &l).is_err());
        } else {
            let auc = roc_auc(&s, &l).unwrap();
            assert!(close(auc, c["auc"].as_f64().unwrap()), "{name}: auc {auc} vs {}", c["auc"]);
            let curve = roc_curve(&s, &l).unwrap();
            let want = c["roc"].as_array().unwrap();
            assert_eq!(curve.len(), want.len(), "{name}: roc points");
            for ((f, t, th), w) in curve.iter().zip(want) {
                assert!(close(*f, w[0].as_f64().unwrap()) && close(*t, w[1].as_f64().unwrap()), "{name}");
                match w[2].as_f64() {
                    Some(x) => assert_eq!(*th, x, "{name}"),
                    None => assert!(th.is_infinite(), "{name}"),
                }
            }
        }
        for at in c["at"].as_array().unwrap() {
            let t = at["threshold"].as_f64().unwrap();
            let m = Confusion::at(&s, &l, t).unwrap();
            let n = |k: &str| at[k].as_u64().unwrap() as usize;
            assert_eq!((m.tp, m.fp, m.tn, m.fn_), (n("tp"), n("fp"), n("tn"), n("fn")), "{name} @ {t}");
            for (got, k) in [
                (m.precision(), "precision"),
                (m.recall(), "recall"),
                (m.f1(), "f1"),
                (m.false_alarm_rate(), "far"),
            ] {
                assert!(close(got, at[k].as_f64().unwrap()), "{name} @ {t}: {k} {got} vs {}", at[k]);
            }
        }
    }
}

fn scored() -> impl Strategy<Value = (Vec<f64>, Vec<u8>)> {
    (2usize..200).prop_flat_map(|n| {
        (proptest::collection::vec(-5.0f64..5.0, n), proptest::collection::vec(0u8..2, n))
            .prop_filter("both classes", |(_, l)| l.contains(&0) && l.contains(&1))
    })
}

proptest! {
    #[test]
    fn auc_is_a_probability((s, l) in scored()) {
        let a = roc_auc(&s, &l).unwrap();
        prop_assert!((0.0..=1.0).contains(&a));
    }

    #[test]
    fn auc_of_negated_scores_is_the_complement((s, l) in scored()) {
        let neg: Vec<f64> = s.iter().map(|x| -x).collect();
        let (a, b) = (roc_auc(&s, &l).unwrap(), roc_auc(&neg, &l).unwrap());
        prop_assert!((a + b - 1.0).abs() < 1e-12, "{} + {}", a, b);
    }

    #[test]
    fn auc_ignores_monotone_transforms((s, l) in scored()) {
        let t: Vec<f64> = s.iter().map(|x| (0.7 * x).exp() * 3.0 + 1.0).collect();
        prop_assert_eq!(roc_auc(&s, &l).unwrap(), roc_auc(&t, &l).unwrap());
    }

    #[test]
    fn calibrated_threshold_meets_its_target((s, l) in scored(), far in 0.0f64..0.3) {
        let t = calibrate_threshold(&s, &l, far).unwrap();
        let c = Confusion::at(&s, &l, t).unwrap();
        prop_assert!(c.false_alarm_rate() <= far + 1e-12);
    }
}
