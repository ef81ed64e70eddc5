//! Atomic output: every artifact is written to a temporary name beside its destination and
//! renamed into place, so a crash never leaves a half-written file under the final name.

use anyhow::{Context, Result};
use std::fs::{self, File};
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

/// The temporary name used while `dest` is being written.
pub fn temp_path(dest: &Path) -> PathBuf {
    let name = dest.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    dest.with_file_name(format!(".{name}.tmp-{}", std::process::id()))
}

/// Writes `dest` through `write` into a temporary file, fsyncs it and renames it into place.
/// On error the temporary file is removed and `dest` is untouched.
pub fn write_atomic<T>(dest: &Path, write: impl FnOnce(&mut BufWriter<File>) -> Result<T>) -> Result<T> {
    if let Some(dir) = dest.parent().filter(|d| !d.as_os_str().is_empty()) {
        fs::create_dir_all(dir).with_context(|| format!("creating directory {}", dir.display()))?;
    }
    let tmp = temp_path(dest);
    let result = (|| {
        let file = File::create(&tmp).with_context(|| format!("creating {}", tmp.display()))?;
        let mut w = BufWriter::new(file);
        let value = write(&mut w).with_context(|| format!("writing {}", tmp.display()))?;
        w.flush().with_context(|| format!("writing {}", tmp.display()))?;
        w.get_ref().sync_all().with_context(|| format!("syncing {}", tmp.display()))?;
        fs::rename(&tmp, dest)
            .with_context(|| format!("renaming {} to {}", tmp.display(), dest.display()))?;
        Ok(value)
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}

/// `p` if absolute, else `base/p`, with `.` and `name/..` pairs removed lexically (so
/// `configs/../DATA` reads `DATA` in messages). Symbolic links are not followed.
pub fn resolve(base: &Path, p: &Path) -> PathBuf {
    use std::path::Component;
    let joined = if p.is_absolute() { p.to_path_buf() } else { base.join(p) };
    let mut out: Vec<Component<'_>> = Vec::new();
    for c in joined.components() {
        match c {
            Component::CurDir => {}
            Component::ParentDir if matches!(out.last(), Some(Component::Normal(_))) => {
                out.pop();
            }
            other => out.push(other),
        }
    }
    if out.is_empty() { PathBuf::from(".") } else { out.iter().collect() }
}

/// `target` as a path relative to directory `base` (both taken from the working directory when
/// relative), e.g. `../MODELS/x/1.0.0` from `REGISTRY`.
pub fn relative_to(base: &Path, target: &Path) -> Result<PathBuf> {
    let cwd = std::env::current_dir().context("reading the working directory")?;
    let (b, t) = (resolve(&cwd, base), resolve(&cwd, target));
    let (bc, tc): (Vec<_>, Vec<_>) = (b.components().collect(), t.components().collect());
    let common = bc.iter().zip(&tc).take_while(|(x, y)| x == y).count();
    let mut out = PathBuf::new();
    for _ in common..bc.len() {
        out.push("..");
    }
    for c in &tc[common..] {
        out.push(c);
    }
    Ok(if out.as_os_str().is_empty() { PathBuf::from(".") } else { out })
}

/// Lower-case hex sha256 of `bytes`.
pub fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(bytes))
}

/// Lower-case hex sha256 of a file's content, read in 64 KiB blocks (a recording can be
/// larger than the memory a stage may use).
pub fn sha256_file(p: &Path) -> Result<String> {
    use sha2::Digest;
    let mut f = File::open(p).with_context(|| format!("reading {}", p.display()))?;
    let mut h = sha2::Sha256::new();
    let mut buf = vec![0u8; 1 << 16];
    loop {
        let n = std::io::Read::read(&mut f, &mut buf).with_context(|| format!("reading {}", p.display()))?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
    }
    Ok(hex::encode(h.finalize()))
}

/// Writes bytes atomically.
pub fn write_bytes_atomic(dest: &Path, bytes: &[u8]) -> Result<()> {
    write_atomic(dest, |w| {
        w.write_all(bytes)?;
        Ok(())
    })
}

/// Replaces directory `dest` with the directory `build` fills, atomically as far as the file
/// system allows: `build` writes into a fresh staging directory beside `dest`; on success the old
/// `dest` (if any) is moved aside, the staging directory renamed to `dest`, and the old one
/// removed. On error the staging directory is removed and `dest` is untouched.
pub fn replace_dir_atomic<T>(dest: &Path, build: impl FnOnce(&Path) -> Result<T>) -> Result<T> {
    let parent = dest.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new("."));
    fs::create_dir_all(parent).with_context(|| format!("creating directory {}", parent.display()))?;
    // A fixed name: a staging directory left by a killed run is found and removed here.
    let staging = dest.with_file_name(format!(
        ".{}.staging",
        dest.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default()
    ));
    if staging.exists() {
        fs::remove_dir_all(&staging).with_context(|| format!("removing stale {}", staging.display()))?;
    }
    fs::create_dir_all(&staging).with_context(|| format!("creating {}", staging.display()))?;
    let value = match build(&staging) {
        Ok(v) => v,
        Err(e) => {
            let _ = fs::remove_dir_all(&staging);
            return Err(e);
        }
    };
    let old = dest.with_file_name(format!(
        ".{}.old-{}",
        dest.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default(),
        std::process::id()
    ));
    if dest.exists() {
        fs::rename(dest, &old).with_context(|| format!("moving aside {}", dest.display()))?;
    }
    fs::rename(&staging, dest)
        .with_context(|| format!("renaming {} to {}", staging.display(), dest.display()))?;
    if old.exists() {
        fs::remove_dir_all(&old).with_context(|| format!("removing {}", old.display()))?;
    }
    Ok(value)
}

/// UTC time as RFC 3339, seconds.
pub fn now_rfc3339() -> String {
    let secs =
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs()) as i64;
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!("{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z", rem / 3600, rem % 3600 / 60, rem % 60)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolve_is_relative_to_base() {
        assert_eq!(resolve(Path::new("configs"), Path::new("../DATA")), Path::new("DATA"));
        assert_eq!(resolve(Path::new(""), Path::new("DATA")), Path::new("DATA"));
        assert_eq!(resolve(Path::new("/a/b"), Path::new("c/./d")), Path::new("/a/b/c/d"));
        assert_eq!(resolve(Path::new("a"), Path::new("/abs")), Path::new("/abs"));
        assert_eq!(resolve(Path::new("a"), Path::new("..")), Path::new("."));
        assert_eq!(resolve(Path::new(""), Path::new("../x")), Path::new("../x"));
    }

    #[test]
    fn relative_to_walks_up_and_down() {
        assert_eq!(
            relative_to(Path::new("/r/REGISTRY"), Path::new("/r/MODELS/x/1.0.0")).unwrap(),
            Path::new("../MODELS/x/1.0.0")
        );
        assert_eq!(relative_to(Path::new("/r"), Path::new("/r/a")).unwrap(), Path::new("a"));
        let cwd = std::env::current_dir().unwrap();
        let rel = relative_to(Path::new("REG"), Path::new("M/v")).unwrap();
        assert_eq!(resolve(&cwd.join("REG"), &rel), cwd.join("M/v"));
    }

    #[test]
    fn failed_write_leaves_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let dest = dir.path().join("out.bin");
        let r: Result<()> = write_atomic(&dest, |w| {
            w.write_all(b"partial")?;
            anyhow::bail!("boom")
        });
        assert!(r.is_err());
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 0);
        write_bytes_atomic(&dest, b"ok").unwrap();
        assert_eq!(fs::read(&dest).unwrap(), b"ok");
    }

    #[test]
    fn an_io_error_names_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let dest = dir.path().join("best.json");
        let e = write_atomic(&dest, |_| -> Result<()> {
            Err(std::io::Error::new(std::io::ErrorKind::StorageFull, "No space left on device").into())
        })
        .unwrap_err();
        let msg = format!("{e:#}");
        assert!(msg.contains("best.json") && msg.contains("No space left"), "{msg}");
        // A directory that cannot be created (a file is in the way) is named too.
        std::fs::write(dir.path().join("file"), b"x").unwrap();
        let e = write_bytes_atomic(&dir.path().join("file/sub/x.json"), b"1").unwrap_err();
        assert!(format!("{e:#}").contains("file/sub"), "{e:#}");
    }

    #[test]
    fn failed_dir_build_keeps_old_dir() {
        let dir = tempfile::tempdir().unwrap();
        let dest = dir.path().join("set");
        replace_dir_atomic(&dest, |d| write_bytes_atomic(&d.join("a"), b"1")).unwrap();
        let r: Result<()> = replace_dir_atomic(&dest, |d| {
            write_bytes_atomic(&d.join("b"), b"2")?;
            anyhow::bail!("boom")
        });
        assert!(r.is_err());
        let names: Vec<_> = fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().file_name()).collect();
        assert_eq!(names, vec![std::ffi::OsString::from("set")]);
        assert!(dest.join("a").exists() && !dest.join("b").exists());
    }
}
