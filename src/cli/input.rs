//! Input files: read only when they are regular files.
//!
//! Opening a FIFO for reading blocks until a writer appears, and a character device such as
//! /dev/zero never ends, so a config, data set or checkpoint named by mistake as one would
//! hang the command. Inputs are checked first (symbolic links followed) and refused with what
//! they are.

use std::io::{Error, ErrorKind};
use std::path::Path;

/// Ok when `path` (links followed) is a regular file; otherwise an `InvalidInput` error saying
/// what it is. A missing file gives the usual `NotFound` error.
pub fn check_regular(path: &Path) -> std::io::Result<()> {
    let t = std::fs::metadata(path)?.file_type();
    if t.is_file() {
        Ok(())
    } else {
        Err(Error::new(
            ErrorKind::InvalidInput,
            format!("it is a {}, not a regular file", super::output::kind_of(&t)),
        ))
    }
}

/// [`check_regular`] as a [`super::UsageError`] naming `field`: "no such file PATH", or PATH
/// and what it is instead of a regular file.
pub fn check_input(field: &str, path: &Path) -> Result<(), super::UsageError> {
    check_regular(path).map_err(|e| {
        let message = if e.kind() == ErrorKind::NotFound {
            format!("no such file {}", path.display())
        } else {
            format!("{}: {e}", path.display())
        };
        super::UsageError::new(field, message)
    })
}

/// [`std::fs::read`] of a regular file only (see [`check_regular`]).
pub fn read_input(path: &Path) -> std::io::Result<Vec<u8>> {
    check_regular(path)?;
    std::fs::read(path)
}

/// [`std::fs::read_to_string`] of a regular file only (see [`check_regular`]).
pub fn read_input_to_string(path: &Path) -> std::io::Result<String> {
    check_regular(path)?;
    std::fs::read_to_string(path)
}

/// [`std::fs::File::open`] of a regular file only (see [`check_regular`]).
pub fn open_input(path: &Path) -> std::io::Result<std::fs::File> {
    check_regular(path)?;
    std::fs::File::open(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_what_is_not_a_regular_file() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("f");
        std::fs::write(&f, "x").unwrap();
        assert_eq!(read_input_to_string(&f).unwrap(), "x");
        let e = read_input(dir.path()).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidInput);
        assert!(e.to_string().contains("folder"), "{e}");
        #[cfg(unix)]
        {
            let e = read_input(Path::new("/dev/zero")).unwrap_err();
            assert!(e.to_string().contains("character device"), "{e}");
        }
        let e = open_input(&dir.path().join("missing")).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::NotFound);
    }
}
