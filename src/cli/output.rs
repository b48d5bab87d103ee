//! Output files and folders: checked before any work, written atomically.
//!
//! Every file mpno writes appears in one rename of a finished partial file beside it, named for
//! what it is, `.NAME.mpno-partial-PID-XXXXXX` (PID: the writer's process id), so a failure
//! never leaves a half-written NAME. A writer killed before its rename (SIGKILL, power loss)
//! leaves its partial file; the next write of NAME removes partial files of NAME whose writer is
//! gone. Because the rename replaces whatever is at NAME, the checks refuse targets that are not
//! regular files (a device such as /dev/full, a FIFO, a socket, a folder) and symbolic links
//! (the rename would replace the link itself, not the file it points to).

use super::UsageError;
use std::io::ErrorKind;
use std::path::{Path, PathBuf};

/// Whether paths `a` and `b` name the same file (existing or not): their folders resolved
/// (symbolic links followed, `.` and `..` removed) and their file names equal. Two outputs of
/// one command, or an output and an input, must not be the same file: the later write would
/// replace the earlier one.
pub fn same_file(a: &Path, b: &Path) -> bool {
    let resolve = |p: &Path| {
        let folder = std::fs::canonicalize(folder_of(p)).ok()?;
        Some(folder.join(p.file_name()?))
    };
    match (resolve(a), resolve(b)) {
        (Some(x), Some(y)) => x == y,
        _ => a == b,
    }
}

/// Refuses an output that is one of the command's input files: the output is written after the
/// inputs are read, so it would replace them (an audit's `--out` folder holding its `--data`).
/// Inputs are resolved in full (a symbolic link to an output counts) and, on Unix, compared by
/// device and inode too (a hard link counts).
pub fn check_not_inputs<'a>(
    field: &str,
    outputs: impl IntoIterator<Item = &'a Path>,
    inputs: &[(&str, &Path)],
) -> Result<(), UsageError> {
    let identity = |p: &Path| -> Option<(u64, u64)> {
        #[cfg(unix)]
        {
            use std::os::unix::fs::MetadataExt;
            let m = std::fs::metadata(p).ok()?;
            Some((m.dev(), m.ino()))
        }
        #[cfg(not(unix))]
        {
            let _ = p;
            None
        }
    };
    for out in outputs {
        let out_id = identity(out);
        for (in_field, input) in inputs {
            let resolved = std::fs::canonicalize(input).unwrap_or_else(|_| input.to_path_buf());
            let same = same_file(out, input)
                || same_file(out, &resolved)
                || (out_id.is_some() && out_id == identity(input));
            if same {
                return Err(UsageError::new(
                    field,
                    format!(
                        "it would write {}, which is the {in_field} input {}; choose another \
                         output",
                        out.display(),
                        input.display()
                    ),
                ));
            }
        }
    }
    Ok(())
}

/// The folder a file is written in ("." for a bare file name).
pub fn folder_of(path: &Path) -> &Path {
    path.parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."))
}

pub(super) fn kind_of(t: &std::fs::FileType) -> &'static str {
    #[cfg(unix)]
    {
        use std::os::unix::fs::FileTypeExt;
        if t.is_fifo() {
            return "FIFO (named pipe)";
        }
        if t.is_socket() {
            return "socket";
        }
        if t.is_block_device() {
            return "block device";
        }
        if t.is_char_device() {
            return "character device";
        }
    }
    if t.is_dir() {
        "folder"
    } else if t.is_file() {
        "regular file"
    } else if t.is_symlink() {
        "symbolic link"
    } else {
        "special file"
    }
}

/// The OS error without the temporary file's name that `tempfile` attaches to it ("... at
/// path \"/dir/.tmpXXXX\""): messages name the user's path, not ours.
pub fn plain_io(e: &std::io::Error) -> String {
    let text = e.to_string();
    match text.split_once(" at path ") {
        Some((head, _)) => head.to_string(),
        None => text,
    }
}

/// Why `path` cannot be replaced by a rename, if it cannot: it must be a regular file or absent.
fn not_replaceable(path: &Path) -> Option<String> {
    let meta = match std::fs::symlink_metadata(path) {
        Ok(m) => m,
        // A missing path, or one under a file (the folder check says so).
        Err(e) if matches!(e.kind(), ErrorKind::NotFound | ErrorKind::NotADirectory) => {
            return None;
        }
        Err(e) => return Some(format!("cannot inspect {}: {e}", path.display())),
    };
    let t = meta.file_type();
    if t.is_file() {
        return None;
    }
    if t.is_symlink() {
        let target = std::fs::read_link(path)
            .map(|t| t.display().to_string())
            .unwrap_or_else(|_| "?".into());
        return Some(format!(
            "{} is a symbolic link (to {target}); mpno writes a new file and renames it into \
             place, which would replace the link rather than write where it points: give the \
             target's own path, or remove the link",
            path.display()
        ));
    }
    Some(format!(
        "{} exists and is a {}, not a regular file; give the path of a file to create or replace",
        path.display(),
        kind_of(&t)
    ))
}

/// Check that `dir` is, or can be created as, a folder mpno can write in: the nearest existing
/// ancestor must be a folder (through symbolic links) and must accept a new file (tried with a
/// probe file that is removed at once, which also catches read-only file systems).
fn check_writable_folder(field: &str, dir: &Path) -> Result<(), UsageError> {
    let mut at = dir.to_path_buf();
    loop {
        match std::fs::metadata(&at) {
            Ok(m) if m.is_dir() => break,
            Ok(m) => {
                return Err(UsageError::new(
                    field,
                    format!(
                        "{} is a {}, not a folder, so {} cannot be created in it",
                        at.display(),
                        kind_of(&m.file_type()),
                        dir.display()
                    ),
                ));
            }
            Err(e) if matches!(e.kind(), ErrorKind::NotFound | ErrorKind::NotADirectory) => {
                let up = match at.parent() {
                    Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
                    _ => PathBuf::from("."),
                };
                if up == at {
                    return Err(UsageError::new(
                        field,
                        format!("{}: the working folder is gone", dir.display()),
                    ));
                }
                at = up;
            }
            Err(e) => {
                return Err(UsageError::new(
                    field,
                    format!("cannot inspect {}: {e}", at.display()),
                ));
            }
        }
    }
    tempfile::Builder::new()
        .prefix(".mpno-probe-")
        .tempfile_in(&at)
        .map(drop)
        .map_err(|e| {
            // The folder exists (checked above), so "not found" here means its file system
            // takes no new files: a virtual one such as /proc or /sys.
            let why = if e.kind() == ErrorKind::NotFound {
                " (the folder exists but its file system takes no new files, as /proc and /sys \
                 do not)"
            } else {
                ""
            };
            UsageError::new(
                field,
                format!(
                    "cannot write in the folder {}: {}{why}",
                    at.display(),
                    plain_io(&e)
                ),
            )
        })
}

/// Check, before any work, that the file `path` given as `field` can be written: it is absent or
/// a regular file (not a device, FIFO, socket, folder or symbolic link) and its folder exists or
/// can be created and is writable.
pub fn check_output_file(field: &str, path: &Path) -> Result<(), UsageError> {
    if path.as_os_str().is_empty() {
        return Err(UsageError::new(field, "empty path; give a file to write"));
    }
    if let Some(why) = not_replaceable(path) {
        return Err(UsageError::new(field, why));
    }
    check_writable_folder(field, folder_of(path))
}

/// Check, before any work, that `dir` given as `field` is a folder mpno can write files in, or
/// can be created as one.
pub fn check_output_dir(field: &str, dir: &Path) -> Result<(), UsageError> {
    if dir.as_os_str().is_empty() {
        return Err(UsageError::new(field, "empty path; give a folder"));
    }
    check_writable_folder(field, dir)
}

/// Check a folder and the files of it that a command will write.
pub fn check_output_files<'a>(
    field: &str,
    dir: &Path,
    files: impl IntoIterator<Item = &'a Path>,
) -> Result<(), UsageError> {
    check_output_dir(field, dir)?;
    for f in files {
        if let Some(why) = not_replaceable(f) {
            return Err(UsageError::new(field, why));
        }
    }
    Ok(())
}

fn partial_prefix(name: &str) -> String {
    format!(".{name}.mpno-partial-")
}

/// Whether process `pid` is running (Linux: /proc; elsewhere unknown, taken as running).
fn process_alive(pid: u32) -> bool {
    if !Path::new("/proc/self").exists() {
        return true;
    }
    Path::new(&format!("/proc/{pid}")).exists()
}

/// The writer's pid in a name `PREFIX` PID `-` ..., if it has that form.
fn writer_pid(name: &str, prefix: &str) -> Option<u32> {
    let rest = name.strip_prefix(prefix)?;
    rest.split('-').next()?.parse().ok()
}

/// Remove, from `dir`, the entries named `prefix` PID `-...` whose writer (PID) is gone: what a
/// killed earlier run of ours left. Entries of running processes and anything else stay.
pub fn remove_stale(dir: &Path, prefix: &str) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    let me = std::process::id();
    for e in entries.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        let Some(pid) = writer_pid(&name, prefix) else {
            continue;
        };
        if pid == me || process_alive(pid) {
            continue;
        }
        let p = e.path();
        // Errors are ignored: a leftover we cannot remove does not stop this run.
        let _ = match e.file_type() {
            Ok(t) if t.is_dir() => std::fs::remove_dir_all(&p),
            _ => std::fs::remove_file(&p),
        };
    }
}

/// A new partial file for `path` (`.NAME.mpno-partial-PID-XXXXXX` + `suffix` beside it), after
/// creating the folder and removing partial files of NAME left by writers that are gone.
/// Refuses (as a [`UsageError`] in the error chain) a target that is not a regular file.
pub fn partial_file(path: &Path, suffix: &str) -> anyhow::Result<tempfile::NamedTempFile> {
    if let Some(why) = not_replaceable(path) {
        return Err(UsageError::new("output", why).into());
    }
    let dir = folder_of(path);
    std::fs::create_dir_all(dir)
        .map_err(|e| anyhow::anyhow!("cannot create the folder {}: {e}", dir.display()))?;
    let name = path
        .file_name()
        .map_or("output".into(), |n| n.to_string_lossy().into_owned());
    let prefix = partial_prefix(&name);
    remove_stale(dir, &prefix);
    tempfile::Builder::new()
        .prefix(&format!("{prefix}{}-", std::process::id()))
        .suffix(suffix)
        .tempfile_in(dir)
        .map_err(|e| anyhow::anyhow!("cannot write {}: {}", path.display(), plain_io(&e)))
}

/// Write through a partial file (see [`partial_file`]) renamed into place only when complete,
/// so a failure never leaves a partial `path`.
pub fn write_atomically(
    path: &Path,
    write: impl FnOnce(&mut std::fs::File) -> anyhow::Result<()>,
) -> anyhow::Result<()> {
    let mut tmp = partial_file(path, "")?;
    write(tmp.as_file_mut()).map_err(|e| e.context(format!("cannot write {}", path.display())))?;
    persist(tmp, path)
}

/// Rename a finished partial file into place, readable by everyone like any other output
/// (temporary files are created private, 0600).
pub fn persist(tmp: tempfile::NamedTempFile, path: &Path) -> anyhow::Result<()> {
    // The target may have changed since the checks (another process): never replace a device,
    // FIFO, folder or link.
    if let Some(why) = not_replaceable(path) {
        return Err(UsageError::new("output", why).into());
    }
    tmp.persist(path)
        .map_err(|e| anyhow::anyhow!("cannot write {}: {}", path.display(), e.error))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o644))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_what_is_not_a_regular_file() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("a.csv");
        assert!(check_output_file("--out", &file).is_ok());
        std::fs::write(&file, "x").unwrap();
        assert!(check_output_file("--out", &file).is_ok());
        let e = check_output_file("--out", dir.path()).unwrap_err();
        assert!(e.field == "--out" && e.message.contains("folder"), "{e}");
        #[cfg(unix)]
        {
            let link = dir.path().join("link.csv");
            std::os::unix::fs::symlink(&file, &link).unwrap();
            let e = check_output_file("--out", &link).unwrap_err();
            assert!(e.message.contains("symbolic link"), "{e}");
            let e = check_output_file("--out", Path::new("/dev/null")).unwrap_err();
            assert!(e.message.contains("character device"), "{e}");
        }
        let e = std::io::Error::other("Permission denied (os error 13) at path \"/d/.tmpAb\"");
        assert_eq!(plain_io(&e), "Permission denied (os error 13)");
        // A file where a folder is needed.
        let e = check_output_file("--out", &file.join("x.csv")).unwrap_err();
        assert!(e.message.contains("not a folder"), "{e}");
        assert!(check_output_dir("--figures", &dir.path().join("new/sub")).is_ok());
        assert!(check_output_dir("--figures", &file).is_err());
        // The probe files are gone.
        let left: Vec<_> = std::fs::read_dir(dir.path()).unwrap().flatten().collect();
        assert_eq!(left.len(), 2, "{left:?}");
    }

    #[test]
    fn partial_files_say_what_they_are_and_stale_ones_are_removed() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("data.safetensors");
        // A partial file of a writer that is gone (pid 0 is never a user process on Linux),
        // one of this process (in use), and an unrelated hidden file.
        let stale = dir.path().join(".data.safetensors.mpno-partial-0-abc");
        let mine = dir.path().join(format!(
            ".data.safetensors.mpno-partial-{}-x",
            std::process::id()
        ));
        let other = dir.path().join(".other");
        for p in [&stale, &mine, &other] {
            std::fs::write(p, "x").unwrap();
        }
        let tmp = partial_file(&target, ".png").unwrap();
        let name = tmp
            .path()
            .file_name()
            .unwrap()
            .to_string_lossy()
            .into_owned();
        assert!(
            name.starts_with(&format!(
                ".data.safetensors.mpno-partial-{}-",
                std::process::id()
            )) && name.ends_with(".png"),
            "{name}"
        );
        if Path::new("/proc/self").exists() {
            assert!(!stale.exists(), "stale partial file kept");
        }
        assert!(mine.exists() && other.exists());
        persist(tmp, &target).unwrap();
        assert!(target.is_file());
        write_atomically(&target, |f| {
            use std::io::Write;
            Ok(f.write_all(b"done")?)
        })
        .unwrap();
        assert_eq!(std::fs::read_to_string(&target).unwrap(), "done");
    }
}
