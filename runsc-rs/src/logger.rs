//! A minimal `log` back-end: one line per record on stderr or in the `--log` file.

use std::fs::File;
use std::io::Write;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;

/// Set while stderr is a terminal runsc-rs has made raw (no output processing): lines then
/// end in CR LF themselves.
static RAW_STDERR: AtomicBool = AtomicBool::new(false);

/// Says whether stderr is a raw terminal now.
pub fn set_raw_stderr(raw: bool) {
    RAW_STDERR.store(raw, Ordering::Relaxed);
}

struct Logger {
    level: log::LevelFilter,
    file: Option<Mutex<File>>,
    /// Lines are JSON objects as runc writes them (`--log-format json`): clients read the
    /// last error from them.
    json: bool,
}

impl log::Log for Logger {
    fn enabled(&self, metadata: &log::Metadata<'_>) -> bool {
        metadata.level() <= self.level
    }

    fn log(&self, record: &log::Record<'_>) {
        if !self.enabled(record.metadata()) {
            return;
        }
        let level = record.level().as_str().to_lowercase();
        let line = if self.json {
            let object = serde_json::json!({
                "level": level,
                "msg": record.args().to_string(),
                "time": humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string(),
            });
            format!("{object}\n")
        } else {
            format!("runsc-rs: {level}: {}\n", record.args())
        };
        match &self.file {
            Some(file) => {
                let mut file = file.lock().unwrap_or_else(|e| e.into_inner());
                let _ = file.write_all(line.as_bytes());
            }
            None => {
                let line = if RAW_STDERR.load(Ordering::Relaxed) {
                    line.replace('\n', "\r\n")
                } else {
                    line
                };
                let _ = std::io::stderr().write_all(line.as_bytes());
            }
        }
    }

    fn flush(&self) {}
}

/// Installs the logger: warnings by default, everything with `debug`.
pub fn init(path: Option<&std::path::Path>, debug: bool, json: bool) -> Result<(), String> {
    let file = match path {
        Some(path) => Some(Mutex::new(
            File::options()
                .create(true)
                .append(true)
                .open(path)
                .map_err(|e| format!("opening log file {}: {e}", path.display()))?,
        )),
        None => None,
    };
    let level = if debug {
        log::LevelFilter::Debug
    } else {
        log::LevelFilter::Warn
    };
    log::set_max_level(level);
    log::set_boxed_logger(Box::new(Logger { level, file, json })).map_err(|e| e.to_string())
}
