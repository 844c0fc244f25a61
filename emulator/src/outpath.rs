//! Output paths named on the command line (`--trace`, `--screenshot`,
//! `--record-frames`, `--junit`, ...), checked before a run starts so that
//! a typo never costs the run. Nothing here creates a missing directory
//! tree: the directory an output goes into must exist.
use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum OutPathError {
    #[error("{flag} {path}: directory {dir} does not exist")]
    NoDir { flag: String, path: PathBuf, dir: PathBuf },
    #[error("{flag} {path}: {dir} is not a directory")]
    NotDir { flag: String, path: PathBuf, dir: PathBuf },
    #[error("{flag} {path}: is a directory, not a file")]
    IsDir { flag: String, path: PathBuf },
    #[error("{flag} {path}: exists and is not a directory")]
    NotADirectory { flag: String, path: PathBuf },
    #[error("{flag} {path}: cannot write there: {source}")]
    NotWritable { flag: String, path: PathBuf, source: std::io::Error },
    #[error("{flag} {path}: {source}")]
    Io { flag: String, path: PathBuf, source: std::io::Error },
}

/// The directory a file path lives in (`.` for a bare name).
fn parent_of(path: &Path) -> PathBuf {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

/// `access(path, W_OK)`.
fn writable(path: &Path) -> std::io::Result<()> {
    Ok(rustix::fs::access(path, rustix::fs::Access::WRITE_OK)?)
}

/// The directory `dir` exists, is a directory, and is writable.
fn check_existing_dir(flag: &str, path: &Path, dir: &Path) -> Result<(), OutPathError> {
    let e = |dir: &Path| (flag.to_string(), path.to_path_buf(), dir.to_path_buf());
    match std::fs::metadata(dir) {
        Err(_) => {
            let (flag, path, dir) = e(dir);
            Err(OutPathError::NoDir { flag, path, dir })
        }
        Ok(m) if !m.is_dir() => {
            let (flag, path, dir) = e(dir);
            Err(OutPathError::NotDir { flag, path, dir })
        }
        Ok(_) => writable(dir).map_err(|source| OutPathError::NotWritable { flag: flag.into(), path: path.into(), source }),
    }
}

/// A file the run will write at its end: its directory exists and is
/// writable, and the path itself is not a directory (nor a read-only file).
/// `-` (standard output) is always fine.
pub fn check_file(flag: &str, path: &Path) -> Result<(), OutPathError> {
    if path.as_os_str() == "-" {
        return Ok(());
    }
    check_existing_dir(flag, path, &parent_of(path))?;
    match std::fs::metadata(path) {
        Ok(m) if m.is_dir() => Err(OutPathError::IsDir { flag: flag.into(), path: path.into() }),
        Ok(_) => writable(path).map_err(|source| OutPathError::NotWritable { flag: flag.into(), path: path.into(), source }),
        Err(_) => Ok(()),
    }
}

/// A directory the run fills with files (`--record-frames DIR`): created
/// if missing (one level, like `mkdir DIR`) when its parent exists; a
/// missing parent is an error and no tree is created.
pub fn prepare_dir(flag: &str, path: &Path) -> Result<(), OutPathError> {
    match std::fs::metadata(path) {
        Ok(m) if m.is_dir() => return check_existing_dir(flag, path, path),
        Ok(_) => return Err(OutPathError::NotADirectory { flag: flag.into(), path: path.into() }),
        Err(_) => {}
    }
    check_existing_dir(flag, path, &parent_of(path))?;
    std::fs::create_dir(path).map_err(|source| OutPathError::Io { flag: flag.into(), path: path.into(), source })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scratch(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("cmaemu-outpath-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    #[test]
    fn files_need_an_existing_directory() {
        let d = scratch("files");
        assert!(check_file("--trace", &d.join("t.json")).is_ok());
        assert!(check_file("--trace", Path::new("-")).is_ok());
        let e = check_file("--trace", Path::new("/nonexistent/t.json")).unwrap_err().to_string();
        assert_eq!(e, "--trace /nonexistent/t.json: directory /nonexistent does not exist");
        assert!(!Path::new("/nonexistent").exists());
        assert!(matches!(check_file("--screenshot", &d), Err(OutPathError::IsDir { .. })));
        std::fs::write(d.join("f"), b"").unwrap();
        assert!(matches!(check_file("--junit", &d.join("f/x.xml")), Err(OutPathError::NotDir { .. })));
        std::fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn frame_directories_are_made_one_level_only() {
        let d = scratch("dirs");
        let deep = d.join("a/b/c");
        let e = prepare_dir("--record-frames", &deep).unwrap_err();
        assert!(matches!(e, OutPathError::NoDir { .. }), "{e}");
        assert!(!d.join("a").exists(), "no tree is created");
        prepare_dir("--record-frames", &d.join("a")).unwrap();
        assert!(d.join("a").is_dir());
        prepare_dir("--record-frames", &d.join("a")).unwrap();
        std::fs::write(d.join("f"), b"").unwrap();
        assert!(matches!(prepare_dir("--record-frames", &d.join("f")), Err(OutPathError::NotADirectory { .. })));
        std::fs::remove_dir_all(&d).unwrap();
    }
}
