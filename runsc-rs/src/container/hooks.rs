//! OCI hooks: programs config.json names, run on the host at points of the life cycle with
//! the container's state as JSON on their standard input, as runc runs them.

use std::io::Write;
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use oci_spec::runtime::Hook;

use super::Error;

/// Runs `hooks` in order, each with `state` on its stdin; the first that fails (non-zero
/// exit, killed, or over its timeout) is the error, named by `point`.
pub fn run(point: &str, hooks: &[Hook], state: &serde_json::Value) -> Result<(), Error> {
    let input = state.to_string();
    for (i, hook) in hooks.iter().enumerate() {
        run_one(hook, &input).map_err(|why| {
            Error::Hook(format!(
                "{point} hook #{i} ({}): {why}",
                hook.path().display()
            ))
        })?;
    }
    Ok(())
}

/// Like [`run`], but a failure is only logged and the rest still run: the spec's rule for
/// poststart and poststop hooks.
pub fn run_warning(point: &str, hooks: &[Hook], state: &serde_json::Value) {
    for (i, hook) in hooks.iter().enumerate() {
        if let Err(e) = run(point, std::slice::from_ref(hook), state) {
            log::warn!("{e} (hook #{i}, going on)");
        }
    }
}

fn run_one(hook: &Hook, input: &str) -> Result<(), String> {
    let mut command = Command::new(hook.path());
    // args[0] is the program's name as it sees it, as execve's argv.
    if let Some(args) = hook.args() {
        if let Some((first, rest)) = args.split_first() {
            command.arg0(first).args(rest);
        }
    }
    command.env_clear();
    for kv in hook.env().iter().flatten() {
        if let Some((k, v)) = kv.split_once('=') {
            command.env(k, v);
        }
    }
    command
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    let mut child = command.spawn().map_err(|e| e.to_string())?;
    if let Some(mut stdin) = child.stdin.take() {
        // A hook that does not read its input is not an error (EPIPE).
        let _ = stdin.write_all(input.as_bytes());
    }
    let limit = hook
        .timeout()
        .filter(|&t| t > 0)
        .map(|t| Duration::from_secs(t as u64));
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().map_err(|e| e.to_string())? {
            break status;
        }
        if limit.is_some_and(|limit| started.elapsed() > limit) {
            let _ = child.kill();
            let _ = child.wait();
            return Err(format!(
                "timed out after {}s",
                limit.unwrap_or_default().as_secs()
            ));
        }
        std::thread::sleep(Duration::from_millis(2));
    };
    if status.success() {
        return Ok(());
    }
    let mut stderr = String::new();
    if let Some(mut err) = child.stderr.take() {
        use std::io::Read;
        let _ = err.read_to_string(&mut stderr);
    }
    let stderr = stderr.trim();
    Err(if stderr.is_empty() {
        status.to_string()
    } else {
        format!("{status}: {stderr}")
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hook(json: serde_json::Value) -> Hook {
        serde_json::from_value(json).expect("hook")
    }

    #[test]
    fn a_hook_gets_the_state_on_stdin_and_its_argv_and_env() {
        let out = std::env::temp_dir().join(format!("runsc-rs-hook-{}", std::process::id()));
        let script = format!(
            "read -r line; echo \"$0 $1 $HOOKVAR $line\" > {}",
            out.display()
        );
        let h = hook(serde_json::json!({
            "path": "/bin/sh",
            "args": ["myhook", "-c", script, "zero", "one"],
            "env": ["HOOKVAR=set"]
        }));
        run("createRuntime", &[h], &serde_json::json!({"id": "c"})).expect("runs");
        let got = std::fs::read_to_string(&out).expect("output");
        let _ = std::fs::remove_file(&out);
        assert_eq!(got.trim(), r#"zero one set {"id":"c"}"#);
    }

    #[test]
    fn a_failing_or_slow_hook_is_an_error_naming_it() {
        let fail = hook(serde_json::json!({
            "path": "/bin/sh", "args": ["sh", "-c", "echo broken >&2; exit 3"]
        }));
        let e = run("prestart", &[fail], &serde_json::json!({})).unwrap_err();
        assert!(e.to_string().contains("prestart hook #0 (/bin/sh)"), "{e}");
        assert!(e.to_string().contains("broken"), "{e}");
        let slow = hook(serde_json::json!({
            "path": "/bin/sh", "args": ["sh", "-c", "sleep 5"], "timeout": 1
        }));
        let e = run("poststart", &[slow], &serde_json::json!({})).unwrap_err();
        assert!(e.to_string().contains("timed out"), "{e}");
    }
}
