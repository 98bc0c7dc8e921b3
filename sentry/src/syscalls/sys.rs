//! System information: uname, sysinfo, getrandom.

use crate::abi::*;
use crate::kernel::Task;

pub fn uname(t: &mut Task, a: &[u64; 6]) -> SysResult {
    t.mm.write_obj(a[0], &t.kernel.utsname())?;
    Ok(0)
}

pub fn sethostname(t: &mut Task, a: &[u64; 6]) -> SysResult {
    set_uts_name(t, a, |u| &mut u.nodename)
}

pub fn setdomainname(t: &mut Task, a: &[u64; 6]) -> SysResult {
    set_uts_name(t, a, |u| &mut u.domainname)
}

/// sethostname(2) and setdomainname(2): `len` bytes at `name` (at most 64; an int, so
/// negative is EINVAL) become the name, in Linux's order of checks. They need
/// CAP_SYS_ADMIN, which only root has here.
fn set_uts_name(t: &mut Task, a: &[u64; 6], field: fn(&mut Utsname) -> &mut [u8; 65]) -> SysResult {
    if t.creds.euid != 0 {
        return Err(Errno::EPERM);
    }
    let len = usize::try_from(a[1] as i32)
        .ok()
        .filter(|&len| len <= 64)
        .ok_or(Errno::EINVAL)?;
    let mut name = vec![0u8; len];
    t.mm.copy_in(a[0], &mut name)?;
    crate::kernel::set_uts_field(field(&mut t.kernel.uts()), &name);
    Ok(0)
}

/// sysinfo(2): the sandbox as /proc shows it. Uptime counts from the sandbox's boot
/// (rounded up to the second, as Linux does), no load is measured (as /proc/loadavg), memory
/// is /proc/meminfo's (no swap, buffers or shared memory are kept apart), and `procs` counts
/// the sandbox's processes. Sizes are in bytes (mem_unit 1).
pub fn sysinfo(t: &mut Task, a: &[u64; 6]) -> SysResult {
    let k = &t.kernel;
    let up = k.started.elapsed();
    let (total, used) = k.memory_usage();
    let info = Sysinfo {
        uptime: (up.as_secs() + u64::from(up.subsec_nanos() > 0)) as i64,
        totalram: total,
        freeram: total - used,
        procs: k.processes.live().len().min(u16::MAX as usize) as u16,
        mem_unit: 1,
        ..Sysinfo::default()
    };
    t.mm.write_obj(a[0], &info)?;
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sysinfo_has_the_kernel_layout() {
        assert_eq!(std::mem::size_of::<Sysinfo>(), 112);
        assert_eq!(std::mem::offset_of!(Sysinfo, procs), 80);
        assert_eq!(std::mem::offset_of!(Sysinfo, totalhigh), 88);
        assert_eq!(std::mem::offset_of!(Sysinfo, mem_unit), 104);
    }
}
