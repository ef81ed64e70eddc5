//! Detector versions, `major.minor.patch`.

use crate::error::UsageError;
use serde::{Deserialize, Serialize};

/// A semantic version `major.minor.patch`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Version(pub [u16; 3]);

impl std::str::FromStr for Version {
    type Err = UsageError;
    fn from_str(s: &str) -> Result<Version, UsageError> {
        let parts: Vec<&str> = s.split('.').collect();
        let bad = || UsageError(format!("version {s:?} is not major.minor.patch (numbers up to 65535)"));
        if parts.len() != 3 {
            return Err(bad());
        }
        let mut v = [0u16; 3];
        for (o, p) in v.iter_mut().zip(parts) {
            if p.is_empty() || !p.bytes().all(|b| b.is_ascii_digit()) {
                return Err(bad());
            }
            *o = p.parse().map_err(|_| bad())?;
        }
        Ok(Version(v))
    }
}

impl std::fmt::Display for Version {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}.{}.{}", self.0[0], self.0[1], self.0[2])
    }
}
