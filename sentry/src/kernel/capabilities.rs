//! Capabilities (capabilities(7)): the sets a task's [`Credentials`] carry, the names an OCI
//! runtime gives them, and how execve(2), the set*id calls, access(2), capset(2) and the
//! capability prctls change them. There are no file capabilities and no set-user-ID
//! programs here, so execve follows only the rules for root and for ambient capabilities.

use super::Credentials;
use crate::abi::*;

/// Every capability up to CAP_LAST_CAP.
pub const ALL_CAPS: u64 = (1 << (CAP_LAST_CAP + 1)) - 1;

/// The bit of capability `cap` in a set (0 for a number past CAP_LAST_CAP).
pub const fn cap_bit(cap: u32) -> u64 {
    if cap <= CAP_LAST_CAP {
        1 << cap
    } else {
        0
    }
}

/// The capabilities a file-system uid of 0 stands for (Linux's CAP_FS_SET): setfsuid(2)
/// takes them out of, or puts them back into, the effective set.
const FS_CAPS: u64 = cap_bit(CAP_CHOWN)
    | cap_bit(CAP_DAC_OVERRIDE)
    | cap_bit(CAP_DAC_READ_SEARCH)
    | cap_bit(CAP_FOWNER)
    | cap_bit(CAP_FSETID)
    | cap_bit(CAP_LINUX_IMMUTABLE)
    | cap_bit(CAP_MKNOD)
    | cap_bit(CAP_MAC_OVERRIDE);

/// SECBIT_* flags that exist here; each is followed by its lock (linux/securebits.h, before
/// Linux 6.14 added the exec-restriction bits).
const SECURE_ALL_BITS: u32 =
    SECBIT_NOROOT | SECBIT_NO_SETUID_FIXUP | SECBIT_KEEP_CAPS | SECBIT_NO_CAP_AMBIENT_RAISE;
const SECURE_ALL_LOCKS: u32 = SECURE_ALL_BITS << 1;

/// The names of the capabilities by number, as in capabilities(7) and OCI's config.json.
pub const CAP_NAMES: [&str; CAP_LAST_CAP as usize + 1] = [
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_DAC_READ_SEARCH",
    "CAP_FOWNER",
    "CAP_FSETID",
    "CAP_KILL",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETPCAP",
    "CAP_LINUX_IMMUTABLE",
    "CAP_NET_BIND_SERVICE",
    "CAP_NET_BROADCAST",
    "CAP_NET_ADMIN",
    "CAP_NET_RAW",
    "CAP_IPC_LOCK",
    "CAP_IPC_OWNER",
    "CAP_SYS_MODULE",
    "CAP_SYS_RAWIO",
    "CAP_SYS_CHROOT",
    "CAP_SYS_PTRACE",
    "CAP_SYS_PACCT",
    "CAP_SYS_ADMIN",
    "CAP_SYS_BOOT",
    "CAP_SYS_NICE",
    "CAP_SYS_RESOURCE",
    "CAP_SYS_TIME",
    "CAP_SYS_TTY_CONFIG",
    "CAP_MKNOD",
    "CAP_LEASE",
    "CAP_AUDIT_WRITE",
    "CAP_AUDIT_CONTROL",
    "CAP_SETFCAP",
    "CAP_MAC_OVERRIDE",
    "CAP_MAC_ADMIN",
    "CAP_SYSLOG",
    "CAP_WAKE_ALARM",
    "CAP_BLOCK_SUSPEND",
    "CAP_AUDIT_READ",
    "CAP_PERFMON",
    "CAP_BPF",
    "CAP_CHECKPOINT_RESTORE",
];

/// The number of a capability named as in OCI's config.json ("CAP_NET_ADMIN"), if it is one.
pub fn cap_from_name(name: &str) -> Option<u32> {
    CAP_NAMES
        .iter()
        .position(|&n| n == name)
        .map(|cap| cap as u32)
}

/// The name of capability `cap`, if it is one.
pub fn cap_name(cap: u32) -> Option<&'static str> {
    CAP_NAMES.get(cap as usize).copied()
}

/// A task's five capability sets (capabilities(7)), one bit per capability number.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct CapSets {
    /// What the kernel checks.
    pub effective: u64,
    /// What the task may make effective, or inheritable when it has CAP_SETPCAP.
    pub permitted: u64,
    /// What a root execve, or an ambient raise, may carry into the new program.
    pub inheritable: u64,
    /// What any execve may grant at most (PR_CAPBSET_DROP removes).
    pub bounding: u64,
    /// What an unprivileged execve keeps (PR_CAP_AMBIENT).
    pub ambient: u64,
}

impl CapSets {
    /// Root's sets, as Linux starts init: every capability but no inheritable or ambient ones.
    pub const fn full() -> CapSets {
        CapSets {
            effective: ALL_CAPS,
            permitted: ALL_CAPS,
            inheritable: 0,
            bounding: ALL_CAPS,
            ambient: 0,
        }
    }

    /// An unprivileged user's sets: nothing, under a full bounding set.
    pub const fn none() -> CapSets {
        CapSets {
            effective: 0,
            permitted: 0,
            inheritable: 0,
            bounding: ALL_CAPS,
            ambient: 0,
        }
    }

    /// The sets of a process whose ids are all `uid` and that execve gave no more.
    pub fn for_uid(uid: u32) -> CapSets {
        if uid == 0 {
            CapSets::full()
        } else {
            CapSets::none()
        }
    }

    /// The sets a set of bit masks stands for once Linux's invariants hold: no bit past
    /// CAP_LAST_CAP, effective within permitted (capset), ambient within permitted and
    /// inheritable (PR_CAP_AMBIENT_RAISE).
    pub fn normalized(self) -> CapSets {
        let permitted = self.permitted & ALL_CAPS;
        let inheritable = self.inheritable & ALL_CAPS;
        CapSets {
            effective: self.effective & permitted,
            permitted,
            inheritable,
            bounding: self.bounding & ALL_CAPS,
            ambient: self.ambient & permitted & inheritable,
        }
    }
}

/// What a capability prctl(2) comes to: a value to return, or credentials to commit.
#[derive(Debug)]
pub enum CapPrctl {
    Value(u64),
    Commit(Credentials),
}

impl Credentials {
    /// These credentials with capability sets `caps` (normalized; see [`CapSets::normalized`]).
    /// For an OCI runtime, `.with_caps(..).with_no_new_privs(..).for_exec()` gives what
    /// runc's process has once it has set them and exec'd the container's program.
    pub fn with_caps(mut self, caps: CapSets) -> Credentials {
        self.caps = caps.normalized();
        self
    }

    /// These credentials with no_new_privs set as asked (OCI's process.noNewPrivileges).
    pub fn with_no_new_privs(mut self, on: bool) -> Credentials {
        self.no_new_privs = on;
        self
    }

    /// Whether capability `cap` is in the effective set (Linux's capable(); every user is
    /// in the sandbox's one user namespace).
    pub fn capable(&self, cap: u32) -> bool {
        self.caps.effective & cap_bit(cap) != 0
    }

    /// Whether `gid` is the file-system gid or a supplementary group (in_group_p).
    pub fn in_group(&self, gid: u32) -> bool {
        self.fsgid == gid || self.groups.contains(&gid)
    }

    fn secure(&self, bit: u32) -> bool {
        self.securebits & bit != 0
    }

    /// The credentials execve(2) runs a program with (Linux's cap_bprm_creds_from_file
    /// without file capabilities or set-user-ID bits): root (real or effective uid 0, unless
    /// SECBIT_NOROOT) gets permitted = inheritable | bounding, made effective when the
    /// effective uid is 0; everyone keeps the ambient set, which is added to permitted and is
    /// the effective set of a non-root program. no_new_privs forbids gaining capabilities.
    pub fn for_exec(&self) -> Credentials {
        let old = self.caps;
        let mut new = self.clone();
        let mut permitted = 0;
        let mut effective = false;
        if !self.secure(SECBIT_NOROOT) {
            if self.uid == 0 || self.euid == 0 {
                permitted = old.bounding | old.inheritable;
            }
            effective = self.euid == 0;
        }
        if self.no_new_privs {
            permitted &= old.permitted;
        }
        permitted |= old.ambient;
        new.caps.permitted = permitted;
        new.caps.effective = if effective { permitted } else { old.ambient };
        new.suid = new.euid;
        new.fsuid = new.euid;
        new.sgid = new.egid;
        new.fsgid = new.egid;
        new.securebits &= !SECBIT_KEEP_CAPS;
        new
    }

    /// Whether a program execve gave these credentials ([`Credentials::for_exec`]) runs in
    /// secure mode (AT_SECURE): it gained capabilities its real uid does not have, which here
    /// can only be an effective root under a real non-root uid.
    pub fn exec_is_secure(&self) -> bool {
        self.uid != 0 && self.euid == 0 && !self.secure(SECBIT_NOROOT)
    }

    /// Adjusts the capabilities after setuid, setreuid or setresuid moved the uids from
    /// `old`'s (cap_emulate_setxuid): leaving uid 0 altogether clears permitted and
    /// effective (unless SECBIT_KEEP_CAPS) and ambient; an effective uid leaving 0 clears
    /// effective; one becoming 0 makes permitted effective. SECBIT_NO_SETUID_FIXUP turns this
    /// off.
    pub(crate) fn fix_setuid(&mut self, old: &Credentials) {
        if self.secure(SECBIT_NO_SETUID_FIXUP) {
            return;
        }
        let any_root = |c: &Credentials| c.uid == 0 || c.euid == 0 || c.suid == 0;
        if any_root(old) && !any_root(self) {
            if !old.secure(SECBIT_KEEP_CAPS) {
                self.caps.permitted = 0;
                self.caps.effective = 0;
            }
            self.caps.ambient = 0;
        }
        if old.euid == 0 && self.euid != 0 {
            self.caps.effective = 0;
        }
        if old.euid != 0 && self.euid == 0 {
            self.caps.effective = self.caps.permitted;
        }
    }

    /// Adjusts the effective set after setfsuid(2) moved the file-system uid from `old`'s:
    /// the file-system capabilities go with a file-system uid of 0 (cap_task_fix_setuid,
    /// LSM_SETID_FS).
    pub(crate) fn fix_setfsuid(&mut self, old: &Credentials) {
        if self.secure(SECBIT_NO_SETUID_FIXUP) {
            return;
        }
        if old.fsuid == 0 && self.fsuid != 0 {
            self.caps.effective &= !FS_CAPS;
        }
        if old.fsuid != 0 && self.fsuid == 0 {
            self.caps.effective |= self.caps.permitted & FS_CAPS;
        }
    }

    /// The credentials access(2) checks with (access_override_creds): the real ids as
    /// file-system ids, and all permitted capabilities if the real uid is 0, none otherwise.
    pub(crate) fn for_access(&self) -> Credentials {
        let mut c = self.clone();
        c.fsuid = c.uid;
        c.fsgid = c.gid;
        if !c.secure(SECBIT_NO_SETUID_FIXUP) {
            c.caps.effective = if c.uid == 0 { c.caps.permitted } else { 0 };
        }
        c
    }

    /// capset(2)'s rules (cap_capset): the new inheritable set may only add capabilities
    /// that are permitted (unless CAP_SETPCAP) and in the bounding set; permitted may only
    /// shrink; effective must lie within the new permitted set. Ambient capabilities that
    /// are no longer both permitted and inheritable go.
    pub(crate) fn capset(
        &self,
        effective: u64,
        permitted: u64,
        inheritable: u64,
    ) -> Result<Credentials, Errno> {
        let old = self.caps;
        let (effective, permitted, inheritable) = (
            effective & ALL_CAPS,
            permitted & ALL_CAPS,
            inheritable & ALL_CAPS,
        );
        let inheritable_source = if self.capable(CAP_SETPCAP) {
            ALL_CAPS
        } else {
            old.inheritable | old.permitted
        };
        if inheritable & !inheritable_source != 0
            || inheritable & !(old.inheritable | old.bounding) != 0
            || permitted & !old.permitted != 0
            || effective & !permitted != 0
        {
            return Err(Errno::EPERM);
        }
        let mut new = self.clone();
        new.caps = CapSets {
            effective,
            permitted,
            inheritable,
            bounding: old.bounding,
            ambient: old.ambient & permitted & inheritable,
        };
        Ok(new)
    }

    /// The capability options of prctl(2) (cap_task_prctl): PR_CAPBSET_READ/DROP,
    /// PR_GET/SET_KEEPCAPS, PR_GET/SET_SECUREBITS and PR_CAP_AMBIENT. `args` are arg2 to
    /// arg5. None if `option` is not one of them.
    pub(crate) fn cap_prctl(&self, option: u64, args: [u64; 4]) -> Option<Result<CapPrctl, Errno>> {
        let [arg2, arg3, arg4, arg5] = args;
        // prctl's arguments are unsigned longs: any value past CAP_LAST_CAP is not a cap.
        let valid = |cap: u64| (cap <= CAP_LAST_CAP as u64).then_some(cap as u32);
        let commit = |new: Credentials| Ok(CapPrctl::Commit(new));
        let result = match option {
            PR_CAPBSET_READ => valid(arg2)
                .map(|cap| CapPrctl::Value(u64::from(self.caps.bounding & cap_bit(cap) != 0)))
                .ok_or(Errno::EINVAL),
            PR_CAPBSET_DROP => {
                // Linux asks for CAP_SETPCAP before it looks at the number.
                if !self.capable(CAP_SETPCAP) {
                    return Some(Err(Errno::EPERM));
                }
                let Some(cap) = valid(arg2) else {
                    return Some(Err(Errno::EINVAL));
                };
                let mut new = self.clone();
                new.caps.bounding &= !cap_bit(cap);
                commit(new)
            }
            PR_GET_KEEPCAPS => Ok(CapPrctl::Value(u64::from(self.secure(SECBIT_KEEP_CAPS)))),
            PR_SET_KEEPCAPS if arg2 > 1 => Err(Errno::EINVAL),
            PR_SET_KEEPCAPS if self.secure(SECBIT_KEEP_CAPS_LOCKED) => Err(Errno::EPERM),
            PR_SET_KEEPCAPS => {
                let mut new = self.clone();
                new.securebits &= !SECBIT_KEEP_CAPS;
                if arg2 == 1 {
                    new.securebits |= SECBIT_KEEP_CAPS;
                }
                commit(new)
            }
            PR_GET_SECUREBITS => Ok(CapPrctl::Value(u64::from(self.securebits))),
            PR_SET_SECUREBITS => self.set_securebits(arg2).map(CapPrctl::Commit),
            PR_CAP_AMBIENT => self.ambient(arg2, arg3, arg4, arg5),
            _ => return None,
        };
        Some(result)
    }

    /// PR_SET_SECUREBITS: needs CAP_SETPCAP; a locked bit cannot change, a lock cannot be
    /// released, and unknown bits are refused (all EPERM, as Linux).
    fn set_securebits(&self, bits: u64) -> Result<Credentials, Errno> {
        let old = self.securebits;
        let locked = (old & SECURE_ALL_LOCKS) >> 1;
        let unknown = bits & !u64::from(SECURE_ALL_BITS | SECURE_ALL_LOCKS) != 0;
        let bits = bits as u32;
        if locked & (old ^ bits) != 0
            || old & SECURE_ALL_LOCKS & !bits != 0
            || unknown
            || !self.capable(CAP_SETPCAP)
        {
            return Err(Errno::EPERM);
        }
        let mut new = self.clone();
        new.securebits = bits;
        Ok(new)
    }

    /// PR_CAP_AMBIENT: raising needs the capability both permitted and inheritable (and no
    /// SECBIT_NO_CAP_AMBIENT_RAISE); lowering and clearing always work.
    fn ambient(&self, op: u64, cap: u64, arg4: u64, arg5: u64) -> Result<CapPrctl, Errno> {
        let mut new = self.clone();
        if op == PR_CAP_AMBIENT_CLEAR_ALL {
            if cap | arg4 | arg5 != 0 {
                return Err(Errno::EINVAL);
            }
            new.caps.ambient = 0;
            return Ok(CapPrctl::Commit(new));
        }
        if cap > CAP_LAST_CAP as u64 || arg4 | arg5 != 0 {
            return Err(Errno::EINVAL);
        }
        let bit = cap_bit(cap as u32);
        match op {
            PR_CAP_AMBIENT_IS_SET => Ok(CapPrctl::Value(u64::from(self.caps.ambient & bit != 0))),
            PR_CAP_AMBIENT_RAISE => {
                let allowed = self.caps.permitted & self.caps.inheritable & bit != 0;
                if !allowed || self.secure(SECBIT_NO_CAP_AMBIENT_RAISE) {
                    return Err(Errno::EPERM);
                }
                new.caps.ambient |= bit;
                Ok(CapPrctl::Commit(new))
            }
            PR_CAP_AMBIENT_LOWER => {
                new.caps.ambient &= !bit;
                Ok(CapPrctl::Commit(new))
            }
            _ => Err(Errno::EINVAL),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn root() -> Credentials {
        Credentials::new(0, 0, Vec::new())
    }

    fn set_uids(c: &Credentials, uid: u32, euid: u32, suid: u32) -> Credentials {
        let mut new = c.clone();
        (new.uid, new.euid, new.suid, new.fsuid) = (uid, euid, suid, euid);
        new.fix_setuid(c);
        new
    }

    #[test]
    fn names_cover_every_capability_in_order() {
        assert_eq!(cap_from_name("CAP_CHOWN"), Some(CAP_CHOWN));
        assert_eq!(cap_from_name("CAP_NET_ADMIN"), Some(CAP_NET_ADMIN));
        assert_eq!(cap_from_name("CAP_SYS_ADMIN"), Some(CAP_SYS_ADMIN));
        assert_eq!(cap_from_name("CAP_MAC_OVERRIDE"), Some(CAP_MAC_OVERRIDE));
        assert_eq!(
            cap_from_name("CAP_CHECKPOINT_RESTORE"),
            Some(CAP_CHECKPOINT_RESTORE)
        );
        assert_eq!(cap_from_name("NET_ADMIN"), None);
        assert_eq!(cap_from_name("cap_net_admin"), None);
        for cap in 0..=CAP_LAST_CAP {
            let name = cap_name(cap).unwrap();
            assert_eq!(cap_from_name(name), Some(cap));
        }
        assert_eq!(cap_name(CAP_LAST_CAP + 1), None);
        assert_eq!(ALL_CAPS, 0x1ff_ffff_ffff);
    }

    #[test]
    fn new_gives_root_everything_and_others_nothing() {
        let r = root();
        assert_eq!(r.caps, CapSets::full());
        assert!(r.capable(CAP_SYS_ADMIN));
        let u = Credentials::new(1000, 1000, Vec::new());
        assert_eq!(u.caps, CapSets::none());
        assert!(!u.capable(CAP_CHOWN));
        assert!(!r.capable(CAP_LAST_CAP + 1));
    }

    #[test]
    fn with_caps_keeps_the_invariants() {
        let caps = CapSets {
            effective: cap_bit(CAP_KILL) | cap_bit(CAP_CHOWN),
            permitted: cap_bit(CAP_CHOWN) | (1 << 50),
            inheritable: cap_bit(CAP_NET_RAW) | cap_bit(CAP_CHOWN),
            bounding: u64::MAX,
            ambient: cap_bit(CAP_CHOWN) | cap_bit(CAP_NET_RAW),
        };
        let c = Credentials::new(1000, 1000, Vec::new()).with_caps(caps);
        assert_eq!(c.caps.effective, cap_bit(CAP_CHOWN));
        assert_eq!(c.caps.permitted, cap_bit(CAP_CHOWN));
        assert_eq!(c.caps.bounding, ALL_CAPS);
        assert_eq!(c.caps.ambient, cap_bit(CAP_CHOWN));
    }

    #[test]
    fn an_oci_process_gets_what_runc_would_give_it() {
        let names = ["CAP_CHOWN", "CAP_KILL", "CAP_NET_BIND_SERVICE"];
        let set = names
            .iter()
            .map(|n| cap_bit(cap_from_name(n).unwrap()))
            .fold(0, |a, b| a | b);
        let caps = CapSets {
            effective: set,
            permitted: set,
            inheritable: 0,
            bounding: set,
            ambient: 0,
        };
        let root = root().with_caps(caps).with_no_new_privs(true).for_exec();
        assert_eq!((root.caps.permitted, root.caps.effective), (set, set));
        assert!(root.no_new_privs);
        let user = Credentials::new(1000, 1000, Vec::new())
            .with_caps(caps)
            .for_exec();
        assert_eq!((user.caps.permitted, user.caps.effective), (0, 0));
        assert_eq!(user.caps.bounding, set);
    }

    #[test]
    fn exec_as_root_gets_the_bounding_set() {
        let mut r = root();
        r.caps.bounding &= !cap_bit(CAP_SYS_ADMIN);
        r.caps.permitted = cap_bit(CAP_CHOWN);
        r.caps.effective = 0;
        let after = r.for_exec();
        assert_eq!(after.caps.permitted, ALL_CAPS & !cap_bit(CAP_SYS_ADMIN));
        assert_eq!(after.caps.effective, after.caps.permitted);
        assert_eq!(after.caps.bounding, r.caps.bounding);
    }

    #[test]
    fn exec_with_no_new_privs_gains_nothing() {
        let mut r = root();
        r.caps.permitted = cap_bit(CAP_CHOWN);
        r.caps.effective = cap_bit(CAP_CHOWN);
        r.no_new_privs = true;
        let after = r.for_exec();
        assert_eq!(after.caps.permitted, cap_bit(CAP_CHOWN));
        assert_eq!(after.caps.effective, cap_bit(CAP_CHOWN));
    }

    #[test]
    fn exec_with_real_root_only_is_not_effective() {
        let r = set_uids(&root(), 0, 1000, 1000);
        let after = r.for_exec();
        assert_eq!(after.caps.permitted, ALL_CAPS);
        assert_eq!(after.caps.effective, 0);
        assert_eq!((after.suid, after.fsuid), (1000, 1000));
    }

    #[test]
    fn exec_without_root_keeps_only_ambient() {
        let caps = CapSets {
            effective: cap_bit(CAP_NET_RAW) | cap_bit(CAP_KILL),
            permitted: cap_bit(CAP_NET_RAW) | cap_bit(CAP_KILL),
            inheritable: cap_bit(CAP_NET_RAW),
            bounding: ALL_CAPS,
            ambient: cap_bit(CAP_NET_RAW),
        };
        let u = Credentials::new(1000, 1000, Vec::new()).with_caps(caps);
        let after = u.for_exec();
        assert_eq!(after.caps.permitted, cap_bit(CAP_NET_RAW));
        assert_eq!(after.caps.effective, cap_bit(CAP_NET_RAW));
        assert_eq!(after.caps.inheritable, cap_bit(CAP_NET_RAW));
        assert_eq!(after.caps.ambient, cap_bit(CAP_NET_RAW));
    }

    #[test]
    fn exec_with_noroot_treats_root_as_anyone() {
        let mut r = root();
        r.securebits = SECBIT_NOROOT;
        let after = r.for_exec();
        assert_eq!((after.caps.permitted, after.caps.effective), (0, 0));
    }

    #[test]
    fn exec_clears_keep_caps() {
        let mut r = root();
        r.securebits = SECBIT_KEEP_CAPS | SECBIT_KEEP_CAPS_LOCKED;
        assert_eq!(r.for_exec().securebits, SECBIT_KEEP_CAPS_LOCKED);
    }

    #[test]
    fn leaving_root_clears_capabilities_unless_keep_caps() {
        let r = root();
        let u = set_uids(&r, 1000, 1000, 1000);
        assert_eq!((u.caps.permitted, u.caps.effective), (0, 0));
        assert_eq!(u.caps.bounding, ALL_CAPS);

        let mut keep = root();
        keep.securebits = SECBIT_KEEP_CAPS;
        keep.caps.inheritable = cap_bit(CAP_CHOWN);
        keep.caps.ambient = cap_bit(CAP_CHOWN);
        let u = set_uids(&keep, 1000, 1000, 1000);
        assert_eq!(u.caps.permitted, ALL_CAPS);
        assert_eq!(u.caps.effective, 0);
        assert_eq!(u.caps.ambient, 0);
    }

    #[test]
    fn effective_uid_moves_the_effective_set() {
        let r = root();
        let away = set_uids(&r, 0, 1000, 0);
        assert_eq!(away.caps.effective, 0);
        assert_eq!(away.caps.permitted, ALL_CAPS);
        let back = set_uids(&away, 0, 0, 0);
        assert_eq!(back.caps.effective, ALL_CAPS);
    }

    #[test]
    fn setfsuid_moves_only_the_file_system_capabilities() {
        let r = root();
        let mut away = r.clone();
        away.fsuid = 1000;
        away.fix_setfsuid(&r);
        assert!(!away.capable(CAP_CHOWN) && !away.capable(CAP_DAC_OVERRIDE));
        assert!(!away.capable(CAP_MKNOD) && !away.capable(CAP_MAC_OVERRIDE));
        assert!(away.capable(CAP_KILL) && away.capable(CAP_SYS_ADMIN));
        let mut back = away.clone();
        back.fsuid = 0;
        back.fix_setfsuid(&away);
        assert_eq!(back.caps.effective, ALL_CAPS);
    }

    #[test]
    fn access_checks_with_the_real_uid() {
        let mut r = root();
        r.caps.effective = 0;
        assert_eq!(r.for_access().caps.effective, ALL_CAPS);
        let not_real_root = set_uids(&root(), 1000, 0, 0);
        let c = not_real_root.for_access();
        assert_eq!((c.caps.effective, c.fsuid), (0, 1000));
    }

    #[test]
    fn capset_follows_the_subset_rules() {
        let r = root();
        let chown = cap_bit(CAP_CHOWN);
        let dropped = r.capset(ALL_CAPS & !chown, ALL_CAPS & !chown, 0).unwrap();
        assert!(!dropped.capable(CAP_CHOWN));
        // Permitted cannot grow back.
        assert_eq!(dropped.capset(0, ALL_CAPS, 0), Err(Errno::EPERM));
        // Effective must lie within the new permitted set.
        assert_eq!(r.capset(chown, 0, 0), Err(Errno::EPERM));
        // Inheritable: from permitted, and with CAP_SETPCAP from anywhere in the bounding set.
        let mut u = Credentials::new(1000, 1000, Vec::new());
        u.caps.permitted = cap_bit(CAP_KILL);
        assert_eq!(u.capset(0, cap_bit(CAP_KILL), chown), Err(Errno::EPERM));
        assert!(u.capset(0, cap_bit(CAP_KILL), cap_bit(CAP_KILL)).is_ok());
        let mut b = root();
        b.caps.bounding &= !chown;
        assert_eq!(b.capset(0, 0, chown), Err(Errno::EPERM));
        assert!(root().capset(0, 0, chown).is_ok());
    }

    #[test]
    fn capset_drops_ambient_capabilities_that_lose_their_footing() {
        let mut r = root();
        r.caps.inheritable = cap_bit(CAP_KILL);
        r.caps.ambient = cap_bit(CAP_KILL);
        let new = r.capset(ALL_CAPS, ALL_CAPS, 0).unwrap();
        assert_eq!(new.caps.ambient, 0);
    }

    fn commit(r: Option<Result<CapPrctl, Errno>>) -> Credentials {
        match r {
            Some(Ok(CapPrctl::Commit(c))) => c,
            other => panic!("not a commit: {other:?}"),
        }
    }

    fn value(r: Option<Result<CapPrctl, Errno>>) -> Result<u64, Errno> {
        match r {
            Some(Ok(CapPrctl::Value(v))) => Ok(v),
            Some(Err(e)) => Err(e),
            other => panic!("not a value: {other:?}"),
        }
    }

    #[test]
    fn bounding_set_drop_and_read() {
        let r = root();
        let cap = CAP_NET_RAW as u64;
        assert_eq!(value(r.cap_prctl(PR_CAPBSET_READ, [cap, 0, 0, 0])), Ok(1));
        let d = commit(r.cap_prctl(PR_CAPBSET_DROP, [cap, 0, 0, 0]));
        assert_eq!(value(d.cap_prctl(PR_CAPBSET_READ, [cap, 0, 0, 0])), Ok(0));
        assert!(
            d.capable(CAP_NET_RAW),
            "dropping from bounding leaves effective"
        );
        let bad = CAP_LAST_CAP as u64 + 1;
        assert_eq!(
            value(r.cap_prctl(PR_CAPBSET_READ, [bad, 0, 0, 0])),
            Err(Errno::EINVAL)
        );
        assert!(matches!(
            r.cap_prctl(PR_CAPBSET_DROP, [u64::MAX, 0, 0, 0]),
            Some(Err(Errno::EINVAL))
        ));
        let u = Credentials::new(1000, 1000, Vec::new());
        assert!(matches!(
            u.cap_prctl(PR_CAPBSET_DROP, [cap, 0, 0, 0]),
            Some(Err(Errno::EPERM))
        ));
        assert!(r.cap_prctl(PR_SET_NAME, [0; 4]).is_none());
    }

    #[test]
    fn ambient_raise_needs_permitted_and_inheritable() {
        let r = root();
        let cap = CAP_KILL as u64;
        let raise = [PR_CAP_AMBIENT_RAISE, cap, 0, 0];
        assert!(matches!(
            r.cap_prctl(PR_CAP_AMBIENT, raise),
            Some(Err(Errno::EPERM))
        ));
        let inh = r.capset(ALL_CAPS, ALL_CAPS, cap_bit(CAP_KILL)).unwrap();
        let raised = commit(inh.cap_prctl(PR_CAP_AMBIENT, raise));
        let is_set = [PR_CAP_AMBIENT_IS_SET, cap, 0, 0];
        assert_eq!(value(raised.cap_prctl(PR_CAP_AMBIENT, is_set)), Ok(1));
        let lowered = commit(raised.cap_prctl(PR_CAP_AMBIENT, [PR_CAP_AMBIENT_LOWER, cap, 0, 0]));
        assert_eq!(lowered.caps.ambient, 0);
        let cleared = commit(raised.cap_prctl(PR_CAP_AMBIENT, [PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0]));
        assert_eq!(cleared.caps.ambient, 0);
        let bad = [PR_CAP_AMBIENT_CLEAR_ALL, 1, 0, 0];
        assert!(matches!(
            r.cap_prctl(PR_CAP_AMBIENT, bad),
            Some(Err(Errno::EINVAL))
        ));
        let bad = [9, cap, 0, 0];
        assert!(matches!(
            r.cap_prctl(PR_CAP_AMBIENT, bad),
            Some(Err(Errno::EINVAL))
        ));
    }

    #[test]
    fn securebits_locks_hold() {
        let r = root();
        let keep = commit(r.cap_prctl(PR_SET_KEEPCAPS, [1, 0, 0, 0]));
        assert_eq!(value(keep.cap_prctl(PR_GET_KEEPCAPS, [0; 4])), Ok(1));
        assert!(matches!(
            r.cap_prctl(PR_SET_KEEPCAPS, [2, 0, 0, 0]),
            Some(Err(Errno::EINVAL))
        ));
        let bits = u64::from(SECBIT_KEEP_CAPS | SECBIT_KEEP_CAPS_LOCKED);
        let locked = commit(r.cap_prctl(PR_SET_SECUREBITS, [bits, 0, 0, 0]));
        assert_eq!(value(locked.cap_prctl(PR_GET_SECUREBITS, [0; 4])), Ok(bits));
        assert!(matches!(
            locked.cap_prctl(PR_SET_KEEPCAPS, [0, 0, 0, 0]),
            Some(Err(Errno::EPERM))
        ));
        let unlock = [u64::from(SECBIT_KEEP_CAPS), 0, 0, 0];
        assert!(matches!(
            locked.cap_prctl(PR_SET_SECUREBITS, unlock),
            Some(Err(Errno::EPERM))
        ));
        let unknown = [1 << 8, 0, 0, 0];
        assert!(matches!(
            r.cap_prctl(PR_SET_SECUREBITS, unknown),
            Some(Err(Errno::EPERM))
        ));
        let u = Credentials::new(1000, 1000, Vec::new());
        assert!(matches!(
            u.cap_prctl(PR_SET_SECUREBITS, [0; 4]),
            Some(Err(Errno::EPERM))
        ));
    }
}
