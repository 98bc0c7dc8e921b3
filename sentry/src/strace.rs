//! strace-style tracing of system calls, fed by the system call table's argument kinds.

use std::fmt::Write;

use platform::SignalInfo;

use crate::abi::SysResult;
use crate::kernel::Task;
use crate::syscalls::{Arg, Ret, Syscall};

/// Bytes of a buffer shown before `...`, as strace's default `-s 32`.
const STRING_LIMIT: usize = 32;

/// One line for a finished call: `write(1, "hello\n", 6) = 6`.
pub fn format_call(
    t: &Task,
    nr: u64,
    entry: Option<&Syscall>,
    args: &[u64; 6],
    result: &SysResult,
) -> String {
    let mut line = String::new();
    // As `strace -f`: lines of every process but the first name their pid.
    if t.tid != 1 {
        let _ = write!(line, "[pid {:>5}] ", t.tid);
    }
    let kinds = entry.map_or(crate::syscalls::table::UNKNOWN_ARGS, |e| e.args);
    line.push_str(&crate::syscalls::name(nr));
    line.push('(');
    for (i, kind) in kinds.iter().enumerate() {
        if i > 0 {
            line.push_str(", ");
        }
        format_arg(&mut line, t, *kind, args, i, result);
    }
    line.push(')');
    if t.exit.is_some() {
        line.push_str(" = ?");
        return line;
    }
    match result {
        Ok(v) if entry.is_some_and(|e| e.ret == Ret::Hex) => {
            let _ = write!(line, " = {v:#x}");
        }
        Ok(v) => {
            let _ = write!(line, " = {}", *v as i64);
        }
        Err(e) => {
            let _ = write!(line, " = -1 {e:?} ({})", e.desc());
        }
    }
    line
}

fn format_arg(
    out: &mut String,
    t: &Task,
    kind: Arg,
    args: &[u64; 6],
    i: usize,
    result: &SysResult,
) {
    let v = args[i];
    match kind {
        Arg::Dec => {
            let _ = write!(out, "{}", v as i64);
        }
        Arg::Int => {
            let _ = write!(out, "{}", v as i32);
        }
        Arg::Hex => {
            let _ = write!(out, "{v:#x}");
        }
        Arg::Oct => {
            let _ = write!(out, "{v:#o}");
        }
        Arg::Fd if v as i32 == -100 => out.push_str("AT_FDCWD"),
        Arg::Fd => {
            let _ = write!(out, "{}", v as i32);
        }
        Arg::Str => match t.mm.read_cstring(v, 4096) {
            Ok(s) => quote(out, &s, usize::MAX),
            Err(_) => {
                let _ = write!(out, "{v:#x}");
            }
        },
        Arg::InBuf(len_arg) => buffer(out, t, v, args.get(len_arg).copied().unwrap_or(0)),
        Arg::OutBuf => match result {
            Ok(n) => buffer(out, t, v, *n),
            Err(_) => {
                let _ = write!(out, "{v:#x}");
            }
        },
        Arg::Ptr if v == 0 => out.push_str("NULL"),
        Arg::Ptr => {
            let _ = write!(out, "{v:#x}");
        }
        Arg::Enum(names) => match names.iter().find(|(n, _)| *n == v) {
            Some((_, name)) => out.push_str(name),
            None => {
                let _ = write!(out, "{v:#x}");
            }
        },
        Arg::Flags(names) => flags(out, names, v),
        Arg::Signal => out.push_str(&signal_name(v as i32)),
    }
}

/// A guest buffer, quoted and cut at STRING_LIMIT bytes.
fn buffer(out: &mut String, t: &Task, addr: u64, len: u64) {
    let shown = (len as usize).min(STRING_LIMIT);
    let mut bytes = vec![0u8; shown];
    match t.mm.copy_in(addr, &mut bytes) {
        Ok(()) => quote(out, &bytes, len as usize),
        Err(_) => {
            let _ = write!(out, "{addr:#x}");
        }
    }
}

/// `"..."` with C escapes; `...` after the quote when `total` is longer than what is shown.
fn quote(out: &mut String, bytes: &[u8], total: usize) {
    out.push('"');
    for &b in bytes {
        match b {
            b'\n' => out.push_str("\\n"),
            b'\t' => out.push_str("\\t"),
            b'\r' => out.push_str("\\r"),
            b'"' => out.push_str("\\\""),
            b'\\' => out.push_str("\\\\"),
            0x20..=0x7e => out.push(b as char),
            _ => {
                let _ = write!(out, "\\x{b:02x}");
            }
        }
    }
    out.push('"');
    if total > bytes.len() && total != usize::MAX {
        out.push_str("...");
    }
}

fn flags(out: &mut String, names: &[(u64, &str)], mut v: u64) {
    if v == 0 {
        out.push('0');
        return;
    }
    let mut first = true;
    for &(bit, name) in names {
        if v & bit == bit && bit != 0 {
            if !first {
                out.push('|');
            }
            out.push_str(name);
            v &= !bit;
            first = false;
        }
    }
    if v != 0 {
        if !first {
            out.push('|');
        }
        let _ = write!(out, "{v:#x}");
    }
}

/// `SIGSEGV`, or the number for signals without a classic name.
pub fn signal_name(sig: i32) -> String {
    match nix::sys::signal::Signal::try_from(sig) {
        Ok(s) => s.as_str().to_string(),
        Err(_) => sig.to_string(),
    }
}

/// The line strace prints when a signal arrives.
pub fn format_signal(info: &SignalInfo) -> String {
    let name = signal_name(info.signo);
    format!(
        "--- {name} {{si_signo={name}, si_code={}, si_addr={:#x}}} ---",
        info.code, info.addr
    )
}
