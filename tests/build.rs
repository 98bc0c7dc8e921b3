//! Builds the C test programs with gcc into OUT_DIR: each statically linked (with
//! -pthread, for those that start threads), and hello_env also as a static PIE.

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
        ("reaper.c", "reaper", "-static"),
        ("segv_longjmp.c", "segv_longjmp", "-static"),
        ("alarm_read.c", "alarm_read", "-static"),
        ("altstack.c", "altstack", "-static"),
        ("threads1000.c", "threads1000", "-static"),
        ("futex_shared.c", "futex_shared", "-static"),
        ("scm_rights.c", "scm_rights", "-static"),
        ("shim.c", "shim", "-static"),
    ];
    for (src, name, link) in programs {
        let src = PathBuf::from("c").join(src);
        println!("cargo:rerun-if-changed={}", src.display());
        let status = Command::new("gcc")
            .args(["-O2", "-g", "-Wall", "-pthread", link, "-o"])
            .arg(out.join(name))
            .arg(&src)
            .status()
            .unwrap_or_else(|e| panic!("running gcc (apt-get install gcc libc6-dev): {e}"));
        assert!(status.success(), "gcc failed to build {}", src.display());
    }
}
