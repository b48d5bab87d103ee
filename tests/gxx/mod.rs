//! g++ for the tests that check the CUDA kernels without a GPU (tests/kernels_host.rs,
//! tests/launch_sites.rs): whether it is there, and the preprocessed text NVRTC compiles.

use std::path::Path;
use std::process::Command;
use std::sync::OnceLock;

/// Whether g++ runs here; says "skipped: g++ not found" when it does not.
pub fn have_gxx() -> bool {
    static FOUND: OnceLock<bool> = OnceLock::new();
    let found = *FOUND.get_or_init(|| {
        Command::new("g++")
            .arg("--version")
            .output()
            .is_ok_and(|o| o.status.success())
    });
    if !found {
        eprintln!("skipped: g++ not found");
    }
    found
}

/// `kernels/FILE.cu` after the preprocessor, with kernels/common.cuh prepended as NVRTC gets it
/// (`g++ -E -P -x c++ -D__CUDACC_RTC__ -include kernels/common.cuh kernels/FILE.cu`).
pub fn preprocess(kernels: &Path, file: &str) -> String {
    let out = Command::new("g++")
        .args(["-E", "-P", "-x", "c++", "-D__CUDACC_RTC__", "-include"])
        .arg(kernels.join("common.cuh"))
        .arg(kernels.join(format!("{file}.cu")))
        .output()
        .expect("run g++ -E");
    assert!(
        out.status.success(),
        "g++ -E {file}.cu failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}
