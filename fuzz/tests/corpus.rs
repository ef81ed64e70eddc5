//! Every committed seed and crasher of every target runs without a panic; seeds named `ok-*`
//! are accepted and `bad-*` refused. A crasher found by `avm-fuzz` lands in
//! `fuzz/crashers/<target>/` and stays here as a regression case.

use avm_fuzz::{TARGETS, corpus, run_caught};
use std::path::Path;

#[test]
fn every_seed_and_crasher_is_handled_without_a_panic() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let scratch = tempfile::tempdir().unwrap();
    let mut problems = Vec::new();
    let mut n = 0;
    for t in TARGETS {
        let inputs = corpus(root, t.name);
        assert!(!inputs.is_empty(), "no seeds for {}", t.name);
        for (path, bytes) in inputs {
            n += 1;
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            match run_caught(t, &bytes, scratch.path()) {
                Err(panic) => problems.push(format!("{}: panics: {panic}", path.display())),
                Ok(Err(e)) if name.starts_with("ok-") => {
                    problems.push(format!("{}: a valid seed was refused: {e}", path.display()))
                }
                Ok(Ok(())) if name.starts_with("bad-") => {
                    problems.push(format!("{}: an invalid seed was accepted", path.display()))
                }
                _ => {}
            }
        }
    }
    assert!(problems.is_empty(), "{} of {n} inputs:\n{}", problems.len(), problems.join("\n"));
}
