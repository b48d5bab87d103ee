//! Helpers shared by the integration tests that run the `mpno` binary.

use std::path::Path;
use std::process::Command;

/// Run `mpno ARGS` in `cwd`: (exit code, stdout, stderr).
pub fn mpno(args: &[&str], cwd: &Path) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_mpno"))
        .args(args)
        .current_dir(cwd)
        .output()
        .expect("run mpno");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}
