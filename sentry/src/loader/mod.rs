//! Loading a program: ELF segments into a fresh address space, then the initial stack with
//! argv, envp and the auxiliary vector, as Linux's `load_elf_binary` lays them out.

use goblin::elf::header::{self, Header};
use goblin::elf::program_header::{self, ProgramHeader};

use crate::abi::*;
use crate::mm::{MemoryManager, Placement, PROT_EXEC, PROT_READ, PROT_WRITE};

/// Where static-PIE executables are loaded (Linux's ELF_ET_DYN_BASE without randomisation).
pub const ET_DYN_BASE: u64 = 0x5555_5555_4000;

/// Why a program could not be loaded. `errno()` is what `execve` would return.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("not an ELF executable")]
    NotElf,
    #[error("not an x86_64 executable")]
    WrongArch,
    #[error("dynamically linked (interpreter {0}); only static programs run until the memory-manager work lands")]
    Dynamic(String),
    #[error("malformed ELF file: {0}")]
    Malformed(&'static str),
    #[error("argument list too long")]
    TooBig,
    #[error("out of memory while loading")]
    Memory(Errno),
}

impl LoadError {
    pub fn errno(&self) -> Errno {
        match self {
            LoadError::NotElf | LoadError::WrongArch | LoadError::Malformed(_) => Errno::ENOEXEC,
            LoadError::Dynamic(_) => Errno::ENOEXEC,
            LoadError::TooBig => Errno::E2BIG,
            LoadError::Memory(e) => *e,
        }
    }
}

impl From<Errno> for LoadError {
    fn from(e: Errno) -> Self {
        LoadError::Memory(e)
    }
}

/// What the loader learnt that the stack and registers need.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LoadedImage {
    pub entry: u64,
    pub phdr: u64,
    pub phnum: u64,
    pub phent: u64,
    /// Where the program break starts: the page after the highest segment.
    pub brk: u64,
}

/// Maps the PT_LOAD segments of the ELF file `bytes` into `mm`.
pub fn load_elf(mm: &MemoryManager, bytes: &[u8]) -> Result<LoadedImage, LoadError> {
    if bytes.len() < goblin::elf64::header::SIZEOF_EHDR || &bytes[..4] != header::ELFMAG {
        return Err(LoadError::NotElf);
    }
    let hdr: Header = goblin::elf::Elf::parse_header(bytes).map_err(|_| LoadError::NotElf)?;
    if hdr.e_ident[header::EI_CLASS] != header::ELFCLASS64 || hdr.e_machine != header::EM_X86_64 {
        return Err(LoadError::WrongArch);
    }
    if hdr.e_type != header::ET_EXEC && hdr.e_type != header::ET_DYN {
        return Err(LoadError::NotElf);
    }
    if hdr.e_phentsize as usize != goblin::elf64::program_header::SIZEOF_PHDR || hdr.e_phnum == 0 {
        return Err(LoadError::Malformed("program header table"));
    }
    let ctx = goblin::container::Ctx::new(
        goblin::container::Container::Big,
        goblin::container::Endian::Little,
    );
    let phdrs = ProgramHeader::parse(bytes, hdr.e_phoff as usize, hdr.e_phnum as usize, ctx)
        .map_err(|_| LoadError::Malformed("program header table"))?;
    if let Some(interp) = phdrs.iter().find(|p| p.p_type == program_header::PT_INTERP) {
        let name = interp
            .p_offset
            .checked_add(interp.p_filesz)
            .and_then(|end| bytes.get(interp.p_offset as usize..end as usize))
            .map(|b| {
                String::from_utf8_lossy(b)
                    .trim_end_matches('\0')
                    .to_string()
            })
            .unwrap_or_default();
        return Err(LoadError::Dynamic(name));
    }
    let loads: Vec<&ProgramHeader> = phdrs
        .iter()
        .filter(|p| p.p_type == program_header::PT_LOAD)
        .collect();
    let first = loads
        .first()
        .ok_or(LoadError::Malformed("no loadable segment"))?;
    let bias = if hdr.e_type == header::ET_DYN {
        ET_DYN_BASE.wrapping_sub(page_down(first.p_vaddr))
    } else {
        0
    };
    let mut brk = 0;
    for seg in &loads {
        brk = brk.max(map_segment(mm, bytes, seg, bias)?);
    }
    let phdr = phdrs
        .iter()
        .find(|p| p.p_type == program_header::PT_PHDR)
        .map(|p| p.p_vaddr)
        .or_else(|| {
            // Otherwise the table is where the segment holding its file offset maps it.
            loads
                .iter()
                .find(|p| p.p_offset <= hdr.e_phoff && hdr.e_phoff < p.p_offset + p.p_filesz)
                .map(|p| p.p_vaddr + (hdr.e_phoff - p.p_offset))
        })
        .map_or(0, |v| v.wrapping_add(bias));
    Ok(LoadedImage {
        entry: hdr.e_entry.wrapping_add(bias),
        phdr,
        phnum: hdr.e_phnum as u64,
        phent: hdr.e_phentsize as u64,
        brk,
    })
}

/// Maps one PT_LOAD segment as a private file mapping would show it: whole pages of the file
/// from the page holding `p_offset`, then zeros past `p_filesz`. Returns the segment's end.
fn map_segment(
    mm: &MemoryManager,
    bytes: &[u8],
    seg: &ProgramHeader,
    bias: u64,
) -> Result<u64, LoadError> {
    let bad = LoadError::Malformed("segment out of range");
    if seg.p_filesz > seg.p_memsz || seg.p_offset % PAGE_SIZE != seg.p_vaddr % PAGE_SIZE {
        return Err(LoadError::Malformed("segment layout"));
    }
    let vaddr = seg
        .p_vaddr
        .checked_add(bias)
        .ok_or(LoadError::Malformed("segment address"))?;
    let start = page_down(vaddr);
    let mem_end = vaddr
        .checked_add(seg.p_memsz)
        .ok_or(LoadError::Malformed("segment size"))?;
    let end = page_up(mem_end).ok_or(LoadError::Malformed("segment size"))?;
    let head = vaddr - start;
    let file_start = seg.p_offset - head;
    let file_end = seg.p_offset.checked_add(seg.p_filesz).ok_or(bad)?;
    let data = bytes
        .get(file_start as usize..file_end as usize)
        .ok_or(LoadError::Malformed("segment out of range"))?;
    let mut prot = 0;
    if seg.p_flags & program_header::PF_R != 0 {
        prot |= PROT_READ;
    }
    if seg.p_flags & program_header::PF_W != 0 {
        prot |= PROT_WRITE;
    }
    if seg.p_flags & program_header::PF_X != 0 {
        prot |= PROT_EXEC;
    }
    if end > start {
        mm.map_anonymous(Placement::Fixed(start), end - start, prot, false)
            .map_err(|e| match e {
                Errno::EPERM | Errno::EINVAL => LoadError::Malformed("segment address"),
                e => LoadError::Memory(e),
            })?;
        mm.copy_out_force(start, data)?;
    }
    Ok(end)
}

/// What goes on the initial stack besides argv and envp.
#[derive(Debug, Clone)]
pub struct StackInfo<'a> {
    pub argv: &'a [Vec<u8>],
    pub envp: &'a [Vec<u8>],
    /// The program's path, for AT_EXECFN.
    pub execfn: &'a [u8],
    /// Auxiliary vector entries other than AT_RANDOM, AT_PLATFORM and AT_EXECFN.
    pub auxv: &'a [(u64, u64)],
    /// The 16 bytes AT_RANDOM points to.
    pub random: [u8; 16],
}

/// Writes the initial stack below `top` and returns the stack pointer for process entry:
/// argc, argv[], NULL, envp[], NULL, auxv pairs, AT_NULL, then the strings above them.
/// Argument and environment strings may use at most `limit` bytes (E2BIG).
pub fn build_stack(
    mm: &MemoryManager,
    top: u64,
    limit: u64,
    info: &StackInfo<'_>,
) -> Result<u64, LoadError> {
    const PLATFORM: &[u8] = b"x86_64\0";
    // The string area, laid out from its low end; addresses are fixed once its size is known.
    let mut strings: Vec<u8> = Vec::new();
    let push_str = |s: &[u8], strings: &mut Vec<u8>| {
        let at = strings.len();
        strings.extend_from_slice(s);
        strings.push(0);
        at
    };
    let random_at = 0;
    strings.extend_from_slice(&info.random);
    let platform_at = strings.len();
    strings.extend_from_slice(PLATFORM);
    let argv_at: Vec<usize> = info
        .argv
        .iter()
        .map(|a| push_str(a, &mut strings))
        .collect();
    let envp_at: Vec<usize> = info
        .envp
        .iter()
        .map(|e| push_str(e, &mut strings))
        .collect();
    let execfn_at = push_str(info.execfn, &mut strings);
    if strings.len() as u64 > limit {
        return Err(LoadError::TooBig);
    }
    let strings_start = (top - 8 - strings.len() as u64) & !15;
    let addr = |off: usize| strings_start + off as u64;

    let mut table: Vec<u64> = Vec::new();
    table.push(info.argv.len() as u64);
    table.extend(argv_at.iter().map(|&o| addr(o)));
    table.push(0);
    table.extend(envp_at.iter().map(|&o| addr(o)));
    table.push(0);
    for &(key, value) in info.auxv {
        table.extend([key, value]);
    }
    table.extend([AT_RANDOM, addr(random_at), AT_PLATFORM, addr(platform_at)]);
    table.extend([AT_EXECFN, addr(execfn_at), AT_NULL, 0]);
    let table_bytes = table.len() as u64 * 8;
    let sp = strings_start
        .checked_sub(table_bytes)
        .ok_or(LoadError::TooBig)?
        & !15;
    mm.copy_out_force(strings_start, &strings)?;
    let raw: Vec<u8> = table.iter().flat_map(|v| v.to_le_bytes()).collect();
    mm.copy_out_force(sp, &raw)?;
    let args_start = addr(platform_at + PLATFORM.len());
    let env_start = addr(envp_at.first().copied().unwrap_or(execfn_at));
    mm.set_arg_env(crate::mm::ArgEnv {
        args: (args_start, env_start),
        env: (env_start, addr(execfn_at)),
        stack: sp,
    });
    Ok(sp)
}
