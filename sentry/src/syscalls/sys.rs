//! System information: uname, getrandom.

use crate::abi::*;
use crate::kernel::Task;

pub fn uname(t: &mut Task, a: &[u64; 6]) -> SysResult {
    t.mm.write_obj(a[0], &t.kernel.host.utsname)?;
    Ok(0)
}

/// The most one getrandom call returns (Linux caps reads at 32 MiB - 1 bytes).
const GETRANDOM_MAX: u64 = (32 << 20) - 1;

pub fn getrandom(t: &mut Task, a: &[u64; 6]) -> SysResult {
    let [addr, len, flags, ..] = *a;
    if flags & !(GRND_NONBLOCK | GRND_RANDOM | GRND_INSECURE) != 0
        || flags & (GRND_RANDOM | GRND_INSECURE) == (GRND_RANDOM | GRND_INSECURE)
    {
        return Err(Errno::EINVAL);
    }
    let len = len.min(GETRANDOM_MAX);
    let mut buf = vec![0u8; (len as usize).min(1 << 20)];
    let mut done = 0u64;
    while done < len {
        let n = ((len - done) as usize).min(buf.len());
        rustix::rand::getrandom(&mut buf[..n], rustix::rand::GetRandomFlags::empty())
            .map_err(|e| Errno::from_raw(e.raw_os_error()))?;
        if let Err(e) = t.mm.copy_out(addr + done, &buf[..n]) {
            return if done > 0 { Ok(done) } else { Err(e) };
        }
        done += n as u64;
    }
    Ok(done)
}
