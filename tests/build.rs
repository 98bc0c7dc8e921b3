//! Builds the C test programs with gcc into OUT_DIR: each statically linked, and
//! hello_env also as a static PIE.

use std::path::PathBuf;
use std::process::Command;

fn main() {
    let out = PathBuf::from(std::env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
    let programs = [
        ("hello_env.c", "hello_static", "-static"),
        ("hello_env.c", "hello_pie", "-static-pie"),
        ("probe.c", "probe", "-static"),
        ("forkread.c", "forkread", "-static"),
        ("pagecache.c", "pagecache", "-static"),
        ("nullwrite.c", "nullwrite", "-static"),
    ];
    for (src, name, link) in programs {
        let src = PathBuf::from("c").join(src);
        println!("cargo:rerun-if-changed={}", src.display());
        let status = Command::new("gcc")
            .args(["-O2", "-g", "-Wall", link, "-o"])
            .arg(out.join(name))
            .arg(&src)
            .status()
            .unwrap_or_else(|e| panic!("running gcc (apt-get install gcc libc6-dev): {e}"));
        assert!(status.success(), "gcc failed to build {}", src.display());
    }
}
