//! The one rule for every identifier that becomes part of a path, and the only way such an
//! identifier is turned into a path.
//!
//! Aircraft, engine and flight ids, channel and phase names, the detector name and version all
//! come from files avm does not control (recording metadata, label files, configs, manifests).
//! Each of them ends up in a file or directory name somewhere (`DATA/interim/<flight>.parquet`,
//! `MODELS/<detector>/<version>/`, Parquet column names, MLflow run names). A value such as
//! `../../../X`, `AC99/F001` or `""` would otherwise write outside the output tree, create
//! directories or hidden files.
//!
//! The rule ([`ID_RULE`]): 1 to 64 characters, ASCII letters and digits, `.`, `_` and `-`,
//! starting with a letter or digit. So an id is always exactly one ordinary path component:
//! never empty, never `.` or `..`, never hidden, never containing a separator.
//!
//! [`file_in`] is the constructor every writer uses for an id-derived name: it checks the rule
//! again, so a path built from an id stays under its root by construction.

use std::path::{Path, PathBuf};

/// The identifier rule, as stated in messages and README.
pub const ID_RULE: &str = "1-64 characters from A-Z a-z 0-9 . _ -, starting with a letter or digit";

/// Longest identifier, characters.
pub const MAX_ID_LEN: usize = 64;

/// Checks `value` against [`ID_RULE`]; the error names `what` (e.g. `flight_id`) and quotes the
/// value as written.
pub fn check(what: &str, value: &str) -> Result<(), String> {
    let ok_first = value.chars().next().is_some_and(|c| c.is_ascii_alphanumeric());
    let ok_rest = value.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'));
    if ok_first && ok_rest && value.len() <= MAX_ID_LEN {
        Ok(())
    } else {
        Err(format!("{what} {value:?} is not a valid identifier ({ID_RULE})"))
    }
}

/// `root/<id><suffix>`: the one way an id becomes a file or directory name. Refuses an id that
/// breaks [`ID_RULE`] (so the result is a direct child of `root`) and a suffix that is not a
/// plain extension (`""`, `.parquet`, ...).
pub fn file_in(root: &Path, what: &str, id: &str, suffix: &str) -> Result<PathBuf, String> {
    check(what, id)?;
    let plain_suffix = suffix.is_empty()
        || (suffix.starts_with('.') && suffix[1..].chars().all(|c| c.is_ascii_alphanumeric() || c == '.'));
    if !plain_suffix {
        return Err(format!("internal: {suffix:?} is not a file extension"));
    }
    Ok(root.join(format!("{id}{suffix}")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Component;

    #[test]
    fn accepts_ordinary_ids() {
        for id in ["AC01", "AC01-F0001-E1", "CWRU-097-b00", "vib_fan", "1.0.0", "a", &"x".repeat(64)] {
            assert!(check("id", id).is_ok(), "{id}");
        }
    }

    #[test]
    fn refuses_everything_that_is_not_one_plain_component() {
        for id in [
            "",
            ".",
            "..",
            "../../../X",
            "AC99/F001",
            "a\\b",
            ".hidden",
            "-x",
            "_x",
            "a b",
            "é",
            "a\0b",
            "C:x",
            &"x".repeat(65),
        ] {
            let e = check("flight_id", id).unwrap_err();
            assert!(e.contains("flight_id") && e.contains("1-64 characters"), "{e}");
        }
    }

    #[test]
    fn file_in_stays_under_its_root() {
        let root = Path::new("DATA/interim");
        let p = file_in(root, "flight_id", "AC01-F1", ".parquet").unwrap();
        assert_eq!(p, Path::new("DATA/interim/AC01-F1.parquet"));
        assert_eq!(p.parent(), Some(root));
        assert!(p.strip_prefix(root).unwrap().components().all(|c| matches!(c, Component::Normal(_))));
        assert!(file_in(root, "flight_id", "../x", ".parquet").is_err());
        assert!(file_in(root, "flight_id", "x", "/../../y").is_err());
    }
}
