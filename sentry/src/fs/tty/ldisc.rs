//! The line discipline (Linux's n_tty): what a terminal does to the bytes that come in from
//! the keyboard side before a reader gets them (input modes, canonical line editing, echo,
//! the characters that raise signals) and to the bytes a program writes before they reach
//! the screen side (output processing). Pure state, no waiting: [`super::Tty`] locks it,
//! waits and sends the signals it asks for.

use std::collections::VecDeque;

use crate::abi::{Termios, Termios2};
use crate::kernel::signals::{SIGINT, SIGQUIT, SIGTSTP};

// c_iflag bits.
pub const IGNBRK: u32 = 0o1;
pub const BRKINT: u32 = 0o2;
pub const ISTRIP: u32 = 0o40;
pub const INLCR: u32 = 0o100;
pub const IGNCR: u32 = 0o200;
pub const ICRNL: u32 = 0o400;
pub const IUCLC: u32 = 0o1000;
pub const IXON: u32 = 0o2000;
pub const IXANY: u32 = 0o4000;
pub const IMAXBEL: u32 = 0o20000;
pub const IUTF8: u32 = 0o40000;
// c_oflag bits.
pub const OPOST: u32 = 0o1;
pub const OLCUC: u32 = 0o2;
pub const ONLCR: u32 = 0o4;
pub const OCRNL: u32 = 0o10;
pub const ONOCR: u32 = 0o20;
pub const ONLRET: u32 = 0o40;
pub const TABDLY: u32 = 0o14000;
pub const XTABS: u32 = 0o14000;
// c_cflag bits.
pub const CBAUD: u32 = 0o10017;
pub const BOTHER: u32 = 0o10000;
pub const B38400: u32 = 0o17;
pub const CS8: u32 = 0o60;
pub const CREAD: u32 = 0o200;
pub const CIBAUD: u32 = CBAUD << 16;
// c_lflag bits.
pub const ISIG: u32 = 0o1;
pub const ICANON: u32 = 0o2;
pub const ECHO: u32 = 0o10;
pub const ECHOE: u32 = 0o20;
pub const ECHOK: u32 = 0o40;
pub const ECHONL: u32 = 0o100;
pub const NOFLSH: u32 = 0o200;
pub const TOSTOP: u32 = 0o400;
pub const ECHOCTL: u32 = 0o1000;
pub const ECHOPRT: u32 = 0o2000;
pub const ECHOKE: u32 = 0o4000;
pub const IEXTEN: u32 = 0o100000;
// Indexes into c_cc.
pub const VINTR: usize = 0;
pub const VQUIT: usize = 1;
pub const VERASE: usize = 2;
pub const VKILL: usize = 3;
pub const VEOF: usize = 4;
pub const VTIME: usize = 5;
pub const VMIN: usize = 6;
pub const VSTART: usize = 8;
pub const VSTOP: usize = 9;
pub const VSUSP: usize = 10;
pub const VEOL: usize = 11;
pub const VREPRINT: usize = 12;
pub const VWERASE: usize = 14;
pub const VLNEXT: usize = 15;
pub const VEOL2: usize = 16;

/// What a reader can hold (Linux's N_TTY_BUF_SIZE): past it, input waits or, for an
/// unfinished canonical line, is dropped.
pub const BUF_SIZE: usize = 4096;

/// The settings a pseudo-terminal's slave starts with (Linux's pty init_termios: sane
/// cooked mode, 38400 baud, 8 bits, the INIT_C_CC characters).
pub fn default_termios() -> Termios2 {
    let mut cc = [0u8; 19];
    cc.copy_from_slice(
        b"\x03\x1c\x7f\x15\x04\x00\x01\x00\x11\x13\x1a\x00\x12\x0f\x17\x16\x00\x00\x00",
    );
    Termios2 {
        termios: Termios {
            iflag: ICRNL | IXON,
            oflag: OPOST | ONLCR,
            cflag: B38400 | CS8 | CREAD,
            lflag: ISIG | ICANON | ECHO | ECHOE | ECHOK | ECHOCTL | ECHOKE | IEXTEN,
            line: 0,
            cc,
        },
        ispeed: 38400,
        ospeed: 38400,
    }
}

/// The speed a Bnnn code of c_cflag stands for (Linux's baud_table).
fn baud(code: u32) -> u32 {
    const LOW: [u32; 16] = [
        0, 50, 75, 110, 134, 150, 200, 300, 600, 1200, 1800, 2400, 4800, 9600, 19200, 38400,
    ];
    const HIGH: [u32; 15] = [
        57600, 115200, 230400, 460800, 500000, 576000, 921600, 1000000, 1152000, 1500000, 2000000,
        2500000, 3000000, 3500000, 4000000,
    ];
    if code & BOTHER == 0 {
        LOW.get((code & 0o17) as usize).copied().unwrap_or(0)
    } else {
        let i = (code & 0o17) as usize;
        i.checked_sub(1)
            .and_then(|i| HIGH.get(i))
            .copied()
            .unwrap_or(0)
    }
}

/// The speeds of `t` after a TCSETS (which has no speed fields: they follow the Bnnn codes
/// of c_cflag) or a TCSETS2 (where BOTHER means "the speed fields say"), as Linux's
/// tty_termios_baud_rate and tty_termios_input_baud_rate compute them.
pub fn with_speeds(mut t: Termios2, speeds_given: bool) -> Termios2 {
    let out = t.termios.cflag & CBAUD;
    if !(speeds_given && out == BOTHER) {
        t.ospeed = baud(out);
    }
    let input = (t.termios.cflag & CIBAUD) >> 16;
    if input == 0 {
        t.ispeed = t.ospeed;
    } else if !(speeds_given && input == BOTHER) {
        t.ispeed = baud(input);
    }
    t
}

/// The line discipline of one terminal. `read_buf` holds what readers may take; in
/// canonical mode only finished lines are there (`line_ends`) and the line being typed is
/// in `line`.
#[derive(Debug)]
pub struct LineDiscipline {
    pub termios: Termios2,
    read_buf: VecDeque<u8>,
    /// Canonical mode: how many bytes from the front of `read_buf` each finished line ends
    /// at (a line ended by VEOF may be empty: it reads as end of file).
    line_ends: VecDeque<usize>,
    line: Vec<u8>,
    /// VLNEXT came: the next byte is taken literally.
    lnext: bool,
    /// The output column, for tabs and erasing them.
    column: usize,
    /// The column the line being typed started at.
    line_column: usize,
}

impl Default for LineDiscipline {
    fn default() -> Self {
        LineDiscipline::new(default_termios())
    }
}

/// Whether `c` is a control character as iscntrl(3) says in the C locale.
fn is_cntrl(c: u8) -> bool {
    c < 0x20 || c == 0x7f
}

impl LineDiscipline {
    pub fn new(termios: Termios2) -> LineDiscipline {
        LineDiscipline {
            termios,
            read_buf: VecDeque::new(),
            line_ends: VecDeque::new(),
            line: Vec::new(),
            lnext: false,
            column: 0,
            line_column: 0,
        }
    }

    fn iflag(&self, bits: u32) -> bool {
        self.termios.termios.iflag & bits != 0
    }
    fn oflag(&self, bits: u32) -> bool {
        self.termios.termios.oflag & bits != 0
    }
    fn lflag(&self, bits: u32) -> bool {
        self.termios.termios.lflag & bits != 0
    }

    pub fn canonical(&self) -> bool {
        self.lflag(ICANON)
    }

    pub fn tostop(&self) -> bool {
        self.lflag(TOSTOP)
    }

    /// Control character `index`, or None where it is disabled (_POSIX_VDISABLE, 0).
    fn cc(&self, index: usize) -> Option<u8> {
        self.termios
            .termios
            .cc
            .get(index)
            .copied()
            .filter(|&c| c != 0)
    }

    fn is(&self, c: u8, index: usize) -> bool {
        self.cc(index) == Some(c)
    }

    /// VMIN and VTIME (in tenths of a second), which rule non-canonical reads.
    pub fn min_time(&self) -> (u8, u8) {
        let cc = &self.termios.termios.cc;
        (cc[VMIN], cc[VTIME])
    }

    /// New settings (TCSETS and friends). Switching canonical mode off makes the line being
    /// typed readable; switching it on makes whatever is unread one finished line (Linux's
    /// n_tty_set_termios).
    pub fn set_termios(&mut self, termios: Termios2) {
        let was = self.canonical();
        self.termios = termios;
        match (was, self.canonical()) {
            (true, false) => {
                self.read_buf.extend(self.line.drain(..));
                self.line_ends.clear();
            }
            (false, true) => {
                self.line_ends.clear();
                if !self.read_buf.is_empty() {
                    self.line_ends.push_back(self.read_buf.len());
                }
            }
            _ => {}
        }
        self.lnext = false;
    }

    /// Bytes a read could take now (FIONREAD): finished lines in canonical mode.
    pub fn readable(&self) -> usize {
        self.read_buf.len()
    }

    /// Whether a read finds something (a line or an end of file in canonical mode), at
    /// least `min` bytes otherwise.
    pub fn can_read(&self, min: usize) -> bool {
        if self.canonical() {
            !self.line_ends.is_empty()
        } else {
            self.read_buf.len() >= min.max(1)
        }
    }

    /// Whether more input can be taken without dropping any (the keyboard side may write).
    pub fn has_room(&self) -> bool {
        self.canonical() || self.read_buf.len() < BUF_SIZE - 1
    }

    /// Takes what a read gets: in canonical mode at most one line (an empty one is end of
    /// file), otherwise what is there, up to `buf.len()`.
    pub fn read(&mut self, buf: &mut [u8]) -> usize {
        let n = if self.canonical() {
            let Some(&end) = self.line_ends.front() else {
                return 0;
            };
            let n = end.min(buf.len());
            for end in self.line_ends.iter_mut() {
                *end -= n;
            }
            if n == end {
                self.line_ends.pop_front();
            }
            n
        } else {
            self.read_buf.len().min(buf.len())
        };
        for (dst, src) in buf.iter_mut().zip(self.read_buf.drain(..n)) {
            *dst = src;
        }
        n
    }

    /// Forgets all input (TCFLSH, TCSETSF, and a signal character without NOFLSH).
    pub fn flush_input(&mut self) {
        self.read_buf.clear();
        self.line_ends.clear();
        self.line.clear();
        self.lnext = false;
    }

    /// Takes bytes from the keyboard side: their echo goes to `echo` and the signals they
    /// raise for the foreground process group to `signals`. Returns how many were taken:
    /// fewer when a non-canonical reader's buffer is full, or up to a character that raised
    /// a signal, which the caller sends before the rest is taken.
    pub fn receive(&mut self, input: &[u8], echo: &mut Vec<u8>, signals: &mut Vec<i32>) -> usize {
        for (i, &c) in input.iter().enumerate() {
            if !self.has_room() {
                return i;
            }
            self.receive_byte(c, echo, signals);
            if !signals.is_empty() {
                return i + 1;
            }
        }
        input.len()
    }

    fn receive_byte(&mut self, mut c: u8, echo: &mut Vec<u8>, signals: &mut Vec<i32>) {
        if self.iflag(ISTRIP) {
            c &= 0x7f;
        }
        if self.iflag(IUCLC) && self.lflag(IEXTEN) {
            c = c.to_ascii_lowercase();
        }
        if std::mem::take(&mut self.lnext) {
            self.echo_char(c, echo);
            self.put(c);
            return;
        }
        if self.iflag(IXON) && (self.is(c, VSTART) || self.is(c, VSTOP)) {
            // Flow control: output is never held back here, but the characters are
            // consumed as a terminal with IXON does.
            return;
        }
        if self.lflag(ISIG) {
            let sig = [(VINTR, SIGINT), (VQUIT, SIGQUIT), (VSUSP, SIGTSTP)]
                .into_iter()
                .find(|&(i, _)| self.is(c, i))
                .map(|(_, sig)| sig);
            if let Some(sig) = sig {
                // Linux's n_tty_receive_signal_char: the input is flushed unless NOFLSH,
                // then the character is echoed (as ^C with ECHOCTL).
                if !self.lflag(NOFLSH) {
                    self.flush_input();
                }
                signals.push(sig);
                if self.lflag(ECHO) {
                    self.echo_char(c, echo);
                }
                return;
            }
        }
        if c == b'\r' {
            if self.iflag(IGNCR) {
                return;
            }
            if self.iflag(ICRNL) {
                c = b'\n';
            }
        } else if c == b'\n' && self.iflag(INLCR) {
            c = b'\r';
        }
        if self.canonical() {
            if self.is(c, VERASE)
                || self.is(c, VKILL)
                || (self.is(c, VWERASE) && self.lflag(IEXTEN))
            {
                self.erase(c, echo);
                return;
            }
            if self.is(c, VLNEXT) && self.lflag(IEXTEN) {
                self.lnext = true;
                if self.lflag(ECHO) && self.lflag(ECHOCTL) {
                    self.output_raw(b"^\x08", echo);
                }
                return;
            }
            if self.is(c, VREPRINT) && self.lflag(ECHO) && self.lflag(IEXTEN) {
                self.echo_char(c, echo);
                self.output(b"\n", echo);
                self.line_column = self.column;
                for c in self.line.clone() {
                    self.echo_char(c, echo);
                }
                return;
            }
            if c == b'\n' {
                if self.lflag(ECHO) || self.lflag(ECHONL) {
                    self.output(b"\n", echo);
                }
                self.line.push(c);
                self.finish_line();
                return;
            }
            if self.is(c, VEOF) {
                self.finish_line();
                return;
            }
            if self.is(c, VEOL) || (self.is(c, VEOL2) && self.lflag(IEXTEN)) {
                if self.lflag(ECHO) {
                    self.echo_char(c, echo);
                }
                self.line.push(c);
                self.finish_line();
                return;
            }
        }
        if self.lflag(ECHO) {
            if c == b'\n' {
                self.output(b"\n", echo);
            } else {
                self.echo_char(c, echo);
            }
        }
        self.put(c);
    }

    /// Queues an ordinary character: on the line being typed (dropped once the line fills
    /// the buffer, as Linux does) or for readers.
    fn put(&mut self, c: u8) {
        if self.canonical() {
            if self.read_buf.len() + self.line.len() < BUF_SIZE - 1 {
                self.line.push(c);
            }
        } else {
            self.read_buf.push_back(c);
        }
    }

    /// The line being typed is finished: readers may take it.
    fn finish_line(&mut self) {
        self.read_buf.extend(self.line.drain(..));
        self.line_ends.push_back(self.read_buf.len());
        self.line_column = self.column;
    }

    /// VERASE, VWERASE and VKILL on the line being typed, with their echo (Linux's eraser).
    fn erase(&mut self, c: u8, echo: &mut Vec<u8>) {
        #[derive(PartialEq)]
        enum Kind {
            Erase,
            Word,
            Kill,
        }
        let kind = if self.is(c, VERASE) {
            Kind::Erase
        } else if self.is(c, VWERASE) {
            Kind::Word
        } else {
            Kind::Kill
        };
        if self.line.is_empty() {
            return;
        }
        let echoing = self.lflag(ECHO);
        if kind == Kind::Kill {
            if !echoing {
                self.line.clear();
                return;
            }
            if !self.lflag(ECHOK) || !self.lflag(ECHOKE) || !self.lflag(ECHOE) {
                self.line.clear();
                self.echo_char(c, echo);
                if self.lflag(ECHOK) {
                    self.output(b"\n", echo);
                }
                self.line_column = self.column;
                return;
            }
        }
        let mut seen_word = false;
        while let Some(&last) = self.line.last() {
            // A UTF-8 character goes whole.
            let mut start = self.line.len() - 1;
            if self.iflag(IUTF8) {
                while start > 0 && self.line.get(start).is_some_and(|&b| b & 0xc0 == 0x80) {
                    start -= 1;
                }
            }
            let first = self.line.get(start).copied().unwrap_or(last);
            if kind == Kind::Word {
                if first.is_ascii_alphanumeric() || first == b'_' {
                    seen_word = true;
                } else if seen_word {
                    break;
                }
            }
            self.line.truncate(start);
            if echoing {
                if kind == Kind::Erase && !self.lflag(ECHOE) {
                    if let Some(erase) = self.cc(VERASE) {
                        self.echo_char(erase, echo);
                    }
                } else if first == b'\t' {
                    let width = self.tab_width_at_end();
                    self.output_raw(&vec![b'\x08'; width], echo);
                } else {
                    if is_cntrl(first) && self.lflag(ECHOCTL) {
                        self.output_raw(b"\x08 \x08", echo);
                    }
                    if !is_cntrl(first) || self.lflag(ECHOCTL) {
                        self.output_raw(b"\x08 \x08", echo);
                    }
                }
            }
            if kind == Kind::Erase {
                break;
            }
        }
    }

    /// How many columns a tab just past the end of the line took on the screen.
    fn tab_width_at_end(&self) -> usize {
        let mut col = self.line_column;
        for &c in &self.line {
            if c == b'\t' {
                col = (col | 7) + 1;
            } else if is_cntrl(c) {
                if self.lflag(ECHOCTL) {
                    col += 2;
                }
            } else if !(self.iflag(IUTF8) && c & 0xc0 == 0x80) {
                col += 1;
            }
        }
        8 - (col & 7)
    }

    /// Echoes one input character: control characters as ^X with ECHOCTL (but tab and
    /// newline as themselves).
    fn echo_char(&mut self, c: u8, echo: &mut Vec<u8>) {
        if self.lflag(ECHOCTL) && is_cntrl(c) && c != b'\t' && c != b'\n' {
            self.output_raw(&[b'^', c ^ 0o100], echo);
        } else {
            self.output(&[c], echo);
        }
    }

    /// Bytes that bypass output processing but move the column (echoed ^X, erasing).
    fn output_raw(&mut self, bytes: &[u8], out: &mut Vec<u8>) {
        for &b in bytes {
            match b {
                b'\x08' => self.column = self.column.saturating_sub(1),
                b'\r' => self.column = 0,
                _ if !is_cntrl(b) => self.column += 1,
                _ => {}
            }
        }
        out.extend_from_slice(bytes);
    }

    /// Output processing (OPOST and the flags under it) of what a program writes or what is
    /// echoed, appended to `out` (Linux's do_output_char).
    pub fn output(&mut self, data: &[u8], out: &mut Vec<u8>) {
        if !self.oflag(OPOST) {
            out.extend_from_slice(data);
            return;
        }
        for &c in data {
            match c {
                b'\n' => {
                    if self.oflag(ONLRET) {
                        self.column = 0;
                    }
                    if self.oflag(ONLCR) {
                        self.column = 0;
                        out.extend_from_slice(b"\r\n");
                    } else {
                        out.push(c);
                    }
                }
                b'\r' => {
                    if self.oflag(ONOCR) && self.column == 0 {
                        continue;
                    }
                    if self.oflag(OCRNL) {
                        if self.oflag(ONLRET) {
                            self.column = 0;
                        }
                        out.push(b'\n');
                    } else {
                        self.column = 0;
                        out.push(c);
                    }
                }
                b'\t' => {
                    let spaces = 8 - (self.column & 7);
                    self.column += spaces;
                    if self.termios.termios.oflag & TABDLY == XTABS {
                        out.extend(std::iter::repeat_n(b' ', spaces));
                    } else {
                        out.push(c);
                    }
                }
                b'\x08' => {
                    self.column = self.column.saturating_sub(1);
                    out.push(c);
                }
                _ => {
                    let c = if self.oflag(OLCUC) {
                        c.to_ascii_uppercase()
                    } else {
                        c
                    };
                    let continuation = self.iflag(IUTF8) && c & 0xc0 == 0x80;
                    if !is_cntrl(c) && !continuation {
                        self.column += 1;
                    }
                    out.push(c);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Feeds `input` and returns (echo, signals).
    fn feed(l: &mut LineDiscipline, input: &[u8]) -> (Vec<u8>, Vec<i32>) {
        let (mut echo, mut sigs) = (Vec::new(), Vec::new());
        assert_eq!(l.receive(input, &mut echo, &mut sigs), input.len());
        (echo, sigs)
    }

    fn read_all(l: &mut LineDiscipline) -> Vec<u8> {
        let mut buf = [0u8; 64];
        let n = l.read(&mut buf);
        buf[..n].to_vec()
    }

    #[test]
    fn canonical_mode_edits_lines_and_echoes() {
        let mut l = LineDiscipline::default();
        let (echo, _) = feed(&mut l, b"abx\x7fc\r");
        assert_eq!(echo, b"abx\x08 \x08c\r\n");
        assert!(l.can_read(1));
        assert_eq!(read_all(&mut l), b"abc\n");
        assert!(!l.can_read(1));
        let (echo, _) = feed(&mut l, b"junk\x15ok\n");
        // ECHOKE erases the killed line on the screen character by character.
        assert_eq!(echo, b"junk\x08 \x08\x08 \x08\x08 \x08\x08 \x08ok\r\n");
        assert_eq!(read_all(&mut l), b"ok\n");
        // VEOF ends a line without itself; alone it reads as end of file.
        feed(&mut l, b"ab\x04\x04");
        assert_eq!(read_all(&mut l), b"ab");
        assert!(l.can_read(1));
        assert_eq!(read_all(&mut l), b"");
        assert!(!l.can_read(1));
    }

    #[test]
    fn word_erase_and_partial_reads() {
        let mut l = LineDiscipline::default();
        feed(&mut l, b"one two  \x17three\n");
        let mut buf = [0u8; 4];
        assert_eq!(l.read(&mut buf), 4);
        assert_eq!(&buf, b"one ");
        assert_eq!(read_all(&mut l), b"three\n");
    }

    #[test]
    fn signal_characters_flush_and_echo_as_caret() {
        let mut l = LineDiscipline::default();
        let (echo, sigs) = feed(&mut l, b"abc\x03");
        assert_eq!(sigs, vec![SIGINT]);
        assert_eq!(echo, b"abc^C");
        assert!(!l.can_read(1));
        feed(&mut l, b"\n");
        assert_eq!(read_all(&mut l), b"\n");
        let (_, sigs) = feed(&mut l, b"\x1c");
        assert_eq!(sigs, vec![SIGQUIT]);
        let (mut echo, mut sigs) = (Vec::new(), Vec::new());
        // Taking stops after a signal character: the caller sends it first.
        assert_eq!(l.receive(b"\x1ax", &mut echo, &mut sigs), 1);
        assert_eq!(sigs, vec![SIGTSTP]);
    }

    #[test]
    fn raw_mode_passes_bytes_and_switching_modes_keeps_input() {
        let mut l = LineDiscipline::default();
        feed(&mut l, b"partial");
        let mut raw = l.termios;
        raw.termios.lflag &= !(ICANON | ECHO | ISIG);
        l.set_termios(raw);
        assert_eq!(l.readable(), 7);
        let (echo, sigs) = feed(&mut l, b"\x03\x7f");
        assert!(echo.is_empty() && sigs.is_empty());
        assert_eq!(read_all(&mut l), b"partial\x03\x7f");
        feed(&mut l, b"xy");
        l.set_termios(default_termios());
        assert_eq!(read_all(&mut l), b"xy");
    }

    #[test]
    fn output_processing_follows_oflag() {
        let mut l = LineDiscipline::default();
        let mut out = Vec::new();
        l.output(b"a\nb\t|", &mut out);
        assert_eq!(out, b"a\r\nb\t|");
        let mut t = l.termios;
        t.termios.oflag |= XTABS | OLCUC;
        l.set_termios(t);
        out.clear();
        l.output(b"\nab\tc", &mut out);
        assert_eq!(out, b"\r\nAB      C");
        t.termios.oflag = 0;
        l.set_termios(t);
        out.clear();
        l.output(b"\n", &mut out);
        assert_eq!(out, b"\n");
    }

    #[test]
    fn a_full_buffer_stops_raw_input() {
        let mut l = LineDiscipline::default();
        let mut raw = l.termios;
        raw.termios.lflag = 0;
        l.set_termios(raw);
        let big = vec![b'x'; BUF_SIZE * 2];
        let (mut echo, mut sigs) = (Vec::new(), Vec::new());
        assert_eq!(l.receive(&big, &mut echo, &mut sigs), BUF_SIZE - 1);
        assert!(!l.has_room());
    }

    #[test]
    fn speeds_follow_the_baud_codes() {
        let t = with_speeds(default_termios(), false);
        assert_eq!((t.ispeed, t.ospeed), (38400, 38400));
        let mut t = default_termios();
        t.termios.cflag = (t.termios.cflag & !CBAUD) | BOTHER;
        t.ospeed = 12345;
        assert_eq!(with_speeds(t, true).ospeed, 12345);
        t.termios.cflag = (t.termios.cflag & !CBAUD) | 0o10002; // B115200
        assert_eq!(with_speeds(t, false).ospeed, 115200);
    }
}
