//! Builds the benchmark programs (bench/c/*.c) statically with gcc into OUT_DIR.

use std::path::PathBuf;
use std::process::Command;

fn main() {
    let out = PathBuf::from(std::env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
    println!("cargo:rerun-if-changed=c");
    let sources = std::fs::read_dir("c")
        .expect("bench/c")
        .flatten()
        .map(|e| e.path());
    for src in sources.filter(|p| p.extension().is_some_and(|e| e == "c")) {
        let name = src.file_stem().expect("file name").to_owned();
        println!("cargo:rerun-if-changed={}", src.display());
        let status = Command::new("gcc")
            .args(["-O2", "-static", "-o"])
            .arg(out.join(name))
            .arg(&src)
            .status()
            .unwrap_or_else(|e| panic!("running gcc (apt-get install gcc libc6-dev): {e}"));
        assert!(status.success(), "gcc failed to build {}", src.display());
    }
}
