//! Loading a program: ELF segments into a fresh address space as private file mappings
//! (their pages come from the page cache, shared with every other process running the same
//! file), the interpreter a dynamically linked program names, then the initial stack with
//! argv, envp and the auxiliary vector, as Linux's `load_elf_binary` lays them out.

use std::sync::Arc;

use goblin::elf::header::{self, Header};
use goblin::elf::program_header::{self, ProgramHeader};

use crate::abi::*;
use crate::mm::{Mapping, MemoryManager, PageCache, Placement, Source, PROT_EXEC, PROT_READ};
use crate::mm::{PROT_NONE, PROT_RWX, PROT_WRITE};
use crate::vfs::OpenFile;

/// Where position-independent executables are loaded before randomisation (Linux's
/// ELF_ET_DYN_BASE: two thirds of the address space, page-aligned).
pub const ET_DYN_BASE: u64 = 0x5555_5555_4000;

/// Why a program could not be loaded. `errno()` is what `execve` would return.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("not an ELF executable")]
    NotElf,
    #[error("not an x86_64 executable")]
    WrongArch,
    #[error("malformed ELF file: {0}")]
    Malformed(&'static str),
    #[error("bad interpreter {0}: {1}")]
    Interpreter(String, Errno),
    #[error("argument list too long")]
    TooBig,
    #[error("out of memory while loading")]
    Memory(Errno),
}

impl LoadError {
    pub fn errno(&self) -> Errno {
        match self {
            LoadError::NotElf | LoadError::WrongArch | LoadError::Malformed(_) => Errno::ENOEXEC,
            LoadError::Interpreter(_, e) => *e,
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
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoadedImage {
    pub entry: u64,
    pub phdr: u64,
    pub phnum: u64,
    pub phent: u64,
    /// Where the program break starts: the page after the highest segment.
    pub brk: u64,
    /// What was added to the file's addresses (AT_BASE for an interpreter).
    pub bias: u64,
    /// The interpreter the program names (PT_INTERP), if any.
    pub interpreter: Option<Vec<u8>>,
}

/// Where to put an image.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Base {
    /// The program: ET_DYN at ET_DYN_BASE plus `offset` (randomisation).
    Program { offset: u64 },
    /// An interpreter: ET_DYN wherever there is room, as a shared library.
    Interpreter,
}

/// The ELF header and program headers of `file`, checked.
fn headers(file: &OpenFile) -> Result<(Header, Vec<ProgramHeader>), LoadError> {
    let mut head = vec![0u8; 4096];
    let n = read_at(file, 0, &mut head)?;
    head.truncate(n);
    if head.len() < goblin::elf64::header::SIZEOF_EHDR || head[..4] != *header::ELFMAG {
        return Err(LoadError::NotElf);
    }
    let hdr: Header = goblin::elf::Elf::parse_header(&head).map_err(|_| LoadError::NotElf)?;
    if hdr.e_ident[header::EI_CLASS] != header::ELFCLASS64 || hdr.e_machine != header::EM_X86_64 {
        return Err(LoadError::WrongArch);
    }
    if hdr.e_type != header::ET_EXEC && hdr.e_type != header::ET_DYN {
        return Err(LoadError::NotElf);
    }
    let size = goblin::elf64::program_header::SIZEOF_PHDR;
    if hdr.e_phentsize as usize != size || hdr.e_phnum == 0 || hdr.e_phnum > 1024 {
        return Err(LoadError::Malformed("program header table"));
    }
    let mut table = vec![0u8; size * hdr.e_phnum as usize];
    if read_at(file, hdr.e_phoff, &mut table)? != table.len() {
        return Err(LoadError::Malformed("program header table"));
    }
    let ctx = goblin::container::Ctx::new(
        goblin::container::Container::Big,
        goblin::container::Endian::Little,
    );
    let phdrs = ProgramHeader::parse(&table, 0, hdr.e_phnum as usize, ctx)
        .map_err(|_| LoadError::Malformed("program header table"))?;
    Ok((hdr, phdrs))
}

/// Reads up to `buf.len()` bytes at `offset`; fewer only at the end of the file.
fn read_at(file: &OpenFile, offset: u64, buf: &mut [u8]) -> Result<usize, LoadError> {
    let mut done = 0;
    while done < buf.len() {
        match file.pread(offset + done as u64, &mut buf[done..])? {
            0 => break,
            n => done += n,
        }
    }
    Ok(done)
}

/// Maps the PT_LOAD segments of the ELF file `file` into `mm`.
pub fn load_elf(
    mm: &MemoryManager,
    file: &Arc<OpenFile>,
    base: Base,
) -> Result<LoadedImage, LoadError> {
    let (hdr, phdrs) = headers(file)?;
    let interpreter = match phdrs.iter().find(|p| p.p_type == program_header::PT_INTERP) {
        Some(interp) if matches!(base, Base::Program { .. }) => {
            if interp.p_filesz < 2 || interp.p_filesz > 4096 {
                return Err(LoadError::Malformed("interpreter name"));
            }
            let mut name = vec![0u8; interp.p_filesz as usize];
            if read_at(file, interp.p_offset, &mut name)? != name.len() {
                return Err(LoadError::Malformed("interpreter name"));
            }
            // The name must end at its NUL (Linux: ENOEXEC otherwise).
            if name.pop() != Some(0) || name.contains(&0) {
                return Err(LoadError::Malformed("interpreter name"));
            }
            Some(name)
        }
        _ => None,
    };
    let loads: Vec<&ProgramHeader> = phdrs
        .iter()
        .filter(|p| p.p_type == program_header::PT_LOAD)
        .collect();
    let first = loads
        .first()
        .ok_or(LoadError::Malformed("no loadable segment"))?;
    let low = page_down(first.p_vaddr);
    let high = loads
        .iter()
        .map(|p| p.p_vaddr.saturating_add(p.p_memsz))
        .max()
        .and_then(page_up)
        .filter(|&h| h > low)
        .ok_or(LoadError::Malformed("segment size"))?;
    let bias = match (hdr.e_type, base) {
        (header::ET_DYN, Base::Program { offset }) => (ET_DYN_BASE + offset).wrapping_sub(low),
        (header::ET_DYN, Base::Interpreter) => {
            // Room for the whole image, held PROT_NONE until the segments take their parts
            // (as ld.so maps libraries); the holes between segments stay reserved.
            let at = mm
                .map(
                    Placement::Hint(0),
                    high - low,
                    Mapping::anonymous(PROT_NONE),
                )
                .map_err(LoadError::Memory)?;
            at.wrapping_sub(low)
        }
        _ => 0,
    };
    let mut brk = 0;
    for seg in &loads {
        brk = brk.max(map_segment(mm, file, seg, bias)?);
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
        bias,
        interpreter,
    })
}

/// Maps one PT_LOAD segment: whole pages of the file from the page holding `p_offset` as a
/// private file mapping, then zeros past `p_filesz` (the rest of the last file page is
/// cleared, further pages are anonymous). Returns the segment's end.
fn map_segment(
    mm: &MemoryManager,
    file: &Arc<OpenFile>,
    seg: &ProgramHeader,
    bias: u64,
) -> Result<u64, LoadError> {
    if seg.p_filesz > seg.p_memsz || seg.p_offset % PAGE_SIZE != seg.p_vaddr % PAGE_SIZE {
        return Err(LoadError::Malformed("segment layout"));
    }
    let bad_address = LoadError::Malformed("segment address");
    let vaddr = seg.p_vaddr.checked_add(bias).ok_or(bad_address)?;
    let start = page_down(vaddr);
    let file_end = vaddr
        .checked_add(seg.p_filesz)
        .ok_or(LoadError::Malformed("segment size"))?;
    let mem_end = vaddr
        .checked_add(seg.p_memsz)
        .and_then(page_up)
        .ok_or(LoadError::Malformed("segment size"))?;
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
    let map_err = |e: Errno| match e {
        Errno::EPERM | Errno::EINVAL => LoadError::Malformed("segment address"),
        e => LoadError::Memory(e),
    };
    let file_pages_end = page_up(file_end).ok_or(LoadError::Malformed("segment size"))?;
    if seg.p_filesz > 0 {
        let mapping = Mapping {
            prot,
            max_prot: PROT_RWX,
            shared: false,
            source: Source::Cache {
                cache: PageCache::of_file(mm.memory_file(), &file.inode),
                offset: seg.p_offset - (vaddr - start),
                file: Some(file.clone()),
            },
            flags: Default::default(),
            populate: false,
        };
        mm.map(Placement::Fixed(start), file_pages_end - start, mapping)
            .map_err(map_err)?;
        if seg.p_memsz > seg.p_filesz && file_end < file_pages_end {
            let zeros = vec![0u8; (file_pages_end - file_end) as usize];
            mm.copy_out_force(file_end, &zeros)?;
        }
    }
    let anon_start = if seg.p_filesz > 0 {
        file_pages_end
    } else {
        start
    };
    if mem_end > anon_start {
        mm.map(
            Placement::Fixed(anon_start),
            mem_end - anon_start,
            Mapping::anonymous(prot),
        )
        .map_err(map_err)?;
    }
    Ok(mem_end)
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
