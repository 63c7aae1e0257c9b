//! Atomic file replacement: write to a temporary file in the target's directory, fsync it, then
//! rename it over the target. Readers see either the old file or the complete new one, never a
//! partial write; if anything fails the temporary file is removed and the old file is untouched.

use std::fs::{File, OpenOptions};
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

static COUNTER: AtomicU64 = AtomicU64::new(0);

/// The temporary name used while writing `path`: `.<name>.tmp-<pid>-<n>` in the same directory.
fn temp_path_for(path: &Path) -> io::Result<PathBuf> {
    let name = path.file_name().ok_or_else(|| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            "the path has no file name to write",
        )
    })?;
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let temp = format!(".{}.tmp-{}-{n}", name.to_string_lossy(), std::process::id());
    Ok(path.with_file_name(temp))
}

/// Replaces `path` atomically with what `write` produces.
///
/// `write` receives a buffered writer on a fresh temporary file in the same directory. After it
/// returns `Ok`, the data are flushed and fsynced, the temporary file is renamed over `path`, and
/// (on Unix) the directory is fsynced so the rename survives a crash. On any error the temporary
/// file is deleted and `path` keeps its previous content (or stays absent).
pub fn write_atomically<F>(path: &Path, write: F) -> io::Result<()>
where
    F: FnOnce(&mut BufWriter<File>) -> io::Result<()>,
{
    let temp = temp_path_for(path)?;
    let file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&temp)?;
    let result = (|| {
        let mut writer = BufWriter::with_capacity(1 << 20, file);
        write(&mut writer)?;
        writer.flush()?;
        let file = writer.into_inner().map_err(|e| e.into_error())?;
        file.sync_all()?;
        drop(file);
        std::fs::rename(&temp, path)
    })();
    if let Err(e) = result {
        let _ = std::fs::remove_file(&temp);
        return Err(e);
    }
    sync_parent_dir(path);
    Ok(())
}

/// Checks that `path` can be written with [`write_atomically`]: creates and removes a temporary
/// file beside it. A long job calls this before it starts, so an unwritable output (a read-only or
/// missing directory) is reported at once instead of at its first save.
pub fn check_writable(path: &Path) -> io::Result<()> {
    let temp = temp_path_for(path)?;
    OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&temp)?;
    std::fs::remove_file(&temp)
}

/// Removes the temporary files `.<name>.tmp-<pid>-<n>` that a process killed while writing `path`
/// left beside it, and returns how many it removed. Only temporaries of processes that no longer
/// run are removed (a process is looked up in `/proc`; where there is no `/proc`, nothing is
/// removed). The target itself is never touched. Errors reading the directory are ignored (the
/// clean-up is best effort).
pub fn remove_stale_temporaries(path: &Path) -> usize {
    let (Some(name), Some(dir)) = (path.file_name(), path.parent()) else {
        return 0;
    };
    let dir = if dir.as_os_str().is_empty() {
        Path::new(".")
    } else {
        dir
    };
    let proc_root = Path::new("/proc/self");
    if !proc_root.exists() {
        return 0;
    }
    let prefix = format!(".{}.tmp-", name.to_string_lossy());
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    let mut removed = 0;
    for entry in entries.flatten() {
        let file_name = entry.file_name().to_string_lossy().into_owned();
        let Some(rest) = file_name.strip_prefix(&prefix) else {
            continue;
        };
        let Some(pid) = rest.split('-').next().and_then(|p| p.parse::<u32>().ok()) else {
            continue;
        };
        let alive = pid == std::process::id() || Path::new(&format!("/proc/{pid}")).exists();
        if !alive && std::fs::remove_file(entry.path()).is_ok() {
            removed += 1;
        }
    }
    removed
}

/// Best-effort fsync of the directory holding `path` (makes the rename durable on Unix).
fn sync_parent_dir(path: &Path) {
    #[cfg(unix)]
    {
        let dir = match path.parent() {
            Some(p) if !p.as_os_str().is_empty() => p,
            _ => Path::new("."),
        };
        if let Ok(d) = File::open(dir) {
            let _ = d.sync_all();
        }
    }
    #[cfg(not(unix))]
    {
        let _ = path;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scratch_dir(tag: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!(
            "pfn-artifact-atomic-{tag}-{}-{}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    fn entries(dir: &Path) -> Vec<String> {
        let mut v: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        v.sort();
        v
    }

    #[test]
    fn replaces_the_file_and_leaves_no_temp() {
        let dir = scratch_dir("ok");
        let path = dir.join("out.bin");
        std::fs::write(&path, b"old").unwrap();
        write_atomically(&path, |w| w.write_all(b"new content")).unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"new content");
        assert_eq!(entries(&dir), vec!["out.bin".to_string()]);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn failed_write_keeps_the_old_file_and_removes_the_temp() {
        let dir = scratch_dir("fail");
        let path = dir.join("out.bin");
        std::fs::write(&path, b"old").unwrap();
        let err = write_atomically(&path, |w| {
            w.write_all(&[7u8; 10_000])?;
            Err(io::Error::other("injected failure"))
        })
        .unwrap_err();
        assert!(err.to_string().contains("injected failure"));
        assert_eq!(std::fs::read(&path).unwrap(), b"old");
        assert_eq!(entries(&dir), vec!["out.bin".to_string()]);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn failed_rename_removes_the_temp() {
        // The target is a non-empty directory: the data are written but the rename fails.
        let dir = scratch_dir("rename");
        let target = dir.join("taken");
        std::fs::create_dir_all(target.join("inner")).unwrap();
        assert!(write_atomically(&target, |w| w.write_all(b"data")).is_err());
        assert_eq!(entries(&dir), vec!["taken".to_string()]);
        assert!(target.join("inner").is_dir());
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn writability_probe_and_stale_temporaries() {
        let dir = scratch_dir("probe");
        let path = dir.join("model.pfn");
        check_writable(&path).unwrap();
        assert!(entries(&dir).is_empty(), "the probe leaves nothing behind");
        let err = check_writable(&dir.join("missing").join("m.pfn")).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::NotFound);
        // A temporary of a process that no longer runs (pid beyond the kernel's pid range), one
        // of this process, and unrelated files.
        let dead = ".model.pfn.tmp-4294967295-0";
        let ours = format!(".model.pfn.tmp-{}-99", std::process::id());
        for name in [
            dead,
            ours.as_str(),
            "model.pfn",
            ".other.pfn.tmp-4294967295-0",
            "notes",
        ] {
            std::fs::write(dir.join(name), b"x").unwrap();
        }
        let removed = remove_stale_temporaries(&path);
        if Path::new("/proc/self").exists() {
            assert_eq!(removed, 1);
            assert!(!dir.join(dead).exists());
        }
        for kept in [
            ours.as_str(),
            "model.pfn",
            ".other.pfn.tmp-4294967295-0",
            "notes",
        ] {
            assert!(dir.join(kept).exists(), "{kept}");
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn missing_directory_is_an_error() {
        let dir = scratch_dir("missing");
        let path = dir.join("no-such-dir").join("out.bin");
        let err = write_atomically(&path, |w| w.write_all(b"x")).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::NotFound);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
