//! Round trips of every message, and malformed payloads: each is an error, never a panic.

use super::*;

fn name(s: &str) -> Name {
    Name::new(s.as_bytes()).unwrap()
}

fn attr(seed: u64) -> Attr {
    Attr {
        ino: seed,
        dev: seed + 1,
        mode: libc::S_IFREG | 0o644,
        nlink: 2,
        uid: 1000,
        gid: 100,
        rdev: 0,
        size: seed * 3,
        blksize: 4096,
        blocks: 8,
        atime: Timespec { sec: 1, nsec: 2 },
        mtime: Timespec { sec: 3, nsec: 4 },
        ctime: Timespec { sec: 5, nsec: 6 },
    }
}

/// One request of every opcode, with every field set to something recognisable.
fn sample_requests() -> Vec<Request> {
    let fid = Fid(7);
    vec![
        Request::Version { version: VERSION },
        Request::Walk {
            dir: fid,
            names: vec![name("usr"), name("lib"), name(&"x".repeat(255))],
        },
        Request::Walk {
            dir: fid,
            names: vec![],
        },
        Request::Stat { fid },
        Request::Open {
            fid,
            flags: (libc::O_RDWR | libc::O_APPEND | libc::O_TRUNC) as u32,
        },
        Request::Read {
            fid,
            offset: 1 << 40,
            len: 4096,
        },
        Request::Write {
            fid,
            offset: 12,
            data: b"hello\0world".to_vec(),
        },
        Request::Write {
            fid,
            offset: 0,
            data: vec![],
        },
        Request::Create {
            dir: fid,
            name: name("new"),
            flags: (libc::O_WRONLY | libc::O_SYNC) as u32,
            mode: 0o4755,
            uid: 1,
            gid: 2,
        },
        Request::Mkdir {
            dir: fid,
            name: name("d"),
            mode: 0o1777,
            uid: 3,
            gid: 4,
        },
        Request::Mknod {
            dir: fid,
            name: name("fifo"),
            mode: libc::S_IFIFO | 0o600,
            rdev: 0x1234,
            uid: 5,
            gid: 6,
        },
        Request::Symlink {
            dir: fid,
            name: name("link"),
            target: b"../../etc/shadow".to_vec(),
            uid: 0,
            gid: 0,
        },
        Request::Link {
            dir: fid,
            name: name("hard"),
            target: Fid(9),
        },
        Request::Unlink {
            dir: fid,
            name: name("gone"),
            flags: AT_REMOVEDIR,
        },
        Request::Rename {
            old_dir: fid,
            old_name: name("a"),
            new_dir: Fid(8),
            new_name: name("bb"),
            flags: RENAME_EXCHANGE,
        },
        Request::Readlink { fid },
        Request::Getdents {
            fid,
            cookie: 0x7fff_ffff_ffff_fff0,
            max: 1000,
        },
        Request::SetAttr {
            fid,
            attr: SetAttr {
                mask: setattr::ALL,
                mode: 0o640,
                uid: 10,
                gid: 20,
                size: 99,
                atime: Timespec::NOW,
                mtime: Timespec {
                    sec: -5,
                    nsec: 999_999_999,
                },
            },
        },
        Request::StatFs { fid },
        Request::Fsync {
            fid,
            flags: FSYNC_DATASYNC,
        },
        Request::Close { fid },
        Request::Shutdown,
    ]
}

fn sample_responses() -> Vec<(Opcode, Response)> {
    let node = FidAttr {
        fid: Fid(3),
        attr: attr(30),
    };
    vec![
        (
            Opcode::Version,
            Response::Version {
                version: 1,
                max_payload: 65536,
                root: node,
            },
        ),
        (
            Opcode::Walk,
            Response::Walk {
                nodes: vec![node, node],
                error: Some(Errno::ENOENT),
            },
        ),
        (
            Opcode::Walk,
            Response::Walk {
                nodes: vec![],
                error: None,
            },
        ),
        (Opcode::Stat, Response::Attr(attr(1))),
        (Opcode::SetAttr, Response::Attr(attr(2))),
        (Opcode::Open, Response::Opened(Fid(44))),
        (Opcode::Read, Response::Data(b"some\0bytes".to_vec())),
        (Opcode::Read, Response::Data(vec![])),
        (Opcode::Readlink, Response::Data(b"/etc/passwd".to_vec())),
        (Opcode::Write, Response::Written(1234)),
        (
            Opcode::Create,
            Response::Created(Created {
                node: Fid(5),
                file: Fid(6),
                attr: attr(3),
            }),
        ),
        (Opcode::Mkdir, Response::Node(node)),
        (Opcode::Mknod, Response::Node(node)),
        (Opcode::Symlink, Response::Node(node)),
        (Opcode::Link, Response::Node(node)),
        (
            Opcode::Getdents,
            Response::Dirents(vec![
                Dirent {
                    ino: 1,
                    kind: libc::DT_DIR,
                    name: name("sub"),
                    next_cookie: 10,
                },
                Dirent {
                    ino: 2,
                    kind: libc::DT_LNK,
                    name: name(&"n".repeat(255)),
                    next_cookie: u64::MAX,
                },
            ]),
        ),
        (Opcode::Getdents, Response::Dirents(vec![])),
        (
            Opcode::StatFs,
            Response::StatFs(StatFs {
                fs_type: 0x9123_683e,
                block_size: 4096,
                blocks: 100,
                blocks_free: 50,
                blocks_available: 40,
                files: 1000,
                files_free: 900,
                name_max: 255,
                flags: 32,
            }),
        ),
        (Opcode::Unlink, Response::Empty),
        (Opcode::Rename, Response::Empty),
        (Opcode::Fsync, Response::Empty),
        (Opcode::Close, Response::Empty),
        (Opcode::Shutdown, Response::Empty),
    ]
}

#[test]
fn every_request_round_trips() {
    let requests = sample_requests();
    let covered: std::collections::HashSet<Opcode> = requests.iter().map(Request::opcode).collect();
    assert_eq!(
        covered.len(),
        Opcode::ALL.len(),
        "a sample for every opcode"
    );
    for request in requests {
        let bytes = request.to_bytes();
        assert_eq!(
            Request::decode(request.opcode() as u32, &bytes),
            Ok(request.clone()),
            "{request:?}"
        );
    }
}

#[test]
fn every_response_round_trips() {
    let responses = sample_responses();
    let covered: std::collections::HashSet<Opcode> = responses.iter().map(|(op, _)| *op).collect();
    assert_eq!(
        covered.len(),
        Opcode::ALL.len(),
        "a sample for every opcode"
    );
    for (op, response) in responses {
        let bytes = response.to_bytes();
        assert_eq!(Response::decode(op, &bytes), Ok(response.clone()), "{op:?}");
    }
}

#[test]
fn opcodes_are_stable_and_unknown_ones_are_enosys() {
    for op in Opcode::ALL {
        assert_eq!(Opcode::from_u32(op as u32), Some(op));
    }
    assert_eq!(
        Opcode::Version as u32,
        1,
        "the handshake's opcode never changes"
    );
    for code in [0, 21, 0x8000_0000, u32::MAX] {
        let err = Request::decode(code, &[]).unwrap_err();
        assert_eq!(err, DecodeError::UnknownOpcode(code));
        assert_eq!(err.errno(), Errno::ENOSYS);
    }
}

/// Requests that end in a name, a symlink target or data: cutting the end may leave a
/// shorter but valid request.
fn ends_in_variable_bytes(request: &Request) -> bool {
    matches!(
        request,
        Request::Write { .. }
            | Request::Create { .. }
            | Request::Mkdir { .. }
            | Request::Mknod { .. }
            | Request::Symlink { .. }
            | Request::Link { .. }
            | Request::Unlink { .. }
            | Request::Rename { .. }
    )
}

#[test]
fn truncated_and_padded_requests_are_refused() {
    for request in sample_requests() {
        let op = request.opcode() as u32;
        let bytes = request.to_bytes();
        for cut in 0..bytes.len() {
            let result = Request::decode(op, &bytes[..cut]);
            if !ends_in_variable_bytes(&request) {
                // Fixed headers, and walks (whose count no longer matches the names).
                assert!(
                    matches!(result, Err(DecodeError::Truncated(_))),
                    "{request:?} cut at {cut}: {result:?}"
                );
            }
        }
        let mut padded = bytes.clone();
        padded.push(0);
        let result = Request::decode(op, &padded);
        match request {
            Request::Write { .. } => assert!(result.is_ok()),
            // A NUL appended to the last name or to the symlink target.
            _ if ends_in_variable_bytes(&request) => {
                assert_eq!(result.unwrap_err().errno(), Errno::EINVAL, "{request:?}")
            }
            _ => assert!(
                matches!(result, Err(DecodeError::Trailing(_, 1))),
                "{request:?}: {result:?}"
            ),
        }
    }
}

#[test]
fn truncated_and_padded_responses_are_refused() {
    for (op, response) in sample_responses() {
        let bytes = response.to_bytes();
        let data = matches!(response, Response::Data(_));
        for cut in 0..bytes.len() {
            let result = Response::decode(op, &bytes[..cut]);
            if !data {
                assert!(result.is_err(), "{op:?} cut at {cut}: {result:?}");
            }
        }
        let mut padded = bytes.clone();
        padded.push(b'x');
        let result = Response::decode(op, &padded);
        if data {
            assert!(result.is_ok());
        } else {
            assert!(result.is_err(), "{op:?} padded: {result:?}");
        }
    }
}

fn decode_errno(request: &Request) -> Errno {
    Request::decode(request.opcode() as u32, &request.to_bytes())
        .unwrap_err()
        .errno()
}

/// Builds a name without the checks, as a hostile peer would.
fn raw_name(bytes: &[u8]) -> Name {
    Name(bytes.to_vec())
}

#[test]
fn names_are_checked() {
    assert_eq!(Name::new(b""), Err(NameError::Empty));
    assert_eq!(Name::new(b"."), Err(NameError::Dots));
    assert_eq!(Name::new(b".."), Err(NameError::Dots));
    assert_eq!(Name::new(b"a/b"), Err(NameError::Slash));
    assert_eq!(Name::new(b"/"), Err(NameError::Slash));
    assert_eq!(Name::new(b"a\0b"), Err(NameError::Nul));
    assert_eq!(Name::new(&[b'x'; 256]), Err(NameError::TooLong(256)));
    assert_eq!(NameError::TooLong(256).errno(), Errno::ENAMETOOLONG);
    assert_eq!(NameError::Dots.errno(), Errno::EINVAL);
    for ok in [&b"..."[..], b".hidden", b"a b", b"\xff\xfe", &[b'x'; 255]] {
        assert_eq!(Name::new(ok).unwrap().as_bytes(), ok);
    }

    // Every request that carries a name refuses a bad one, wherever it sits.
    for (bad, errno) in [
        (&b".."[..], Errno::EINVAL),
        (b".", Errno::EINVAL),
        (b"a/b", Errno::EINVAL),
        (b"a\0", Errno::EINVAL),
    ] {
        let bad = raw_name(bad);
        let dir = Fid(1);
        let requests = [
            Request::Walk {
                dir,
                names: vec![name("ok"), bad.clone()],
            },
            Request::Create {
                dir,
                name: bad.clone(),
                flags: 0,
                mode: 0o600,
                uid: 0,
                gid: 0,
            },
            Request::Mkdir {
                dir,
                name: bad.clone(),
                mode: 0o700,
                uid: 0,
                gid: 0,
            },
            Request::Mknod {
                dir,
                name: bad.clone(),
                mode: libc::S_IFIFO,
                rdev: 0,
                uid: 0,
                gid: 0,
            },
            Request::Symlink {
                dir,
                name: bad.clone(),
                target: b"t".to_vec(),
                uid: 0,
                gid: 0,
            },
            Request::Link {
                dir,
                name: bad.clone(),
                target: dir,
            },
            Request::Unlink {
                dir,
                name: bad.clone(),
                flags: 0,
            },
            Request::Rename {
                old_dir: dir,
                old_name: bad.clone(),
                new_dir: dir,
                new_name: name("ok"),
                flags: 0,
            },
            Request::Rename {
                old_dir: dir,
                old_name: name("ok"),
                new_dir: dir,
                new_name: bad.clone(),
                flags: 0,
            },
        ];
        for request in requests {
            assert_eq!(decode_errno(&request), errno, "{request:?}");
        }
    }
    // An empty name at the end of a payload, and a zero-length name in a walk.
    let mut empty_walk = Request::Walk {
        dir: Fid(1),
        names: vec![],
    }
    .to_bytes();
    empty_walk[8] = 1; // count = 1
    empty_walk.push(0); // a name of length 0
    assert_eq!(
        Request::decode(Opcode::Walk as u32, &empty_walk)
            .unwrap_err()
            .errno(),
        Errno::EINVAL
    );
    let unlink_nothing = Request::Unlink {
        dir: Fid(1),
        name: raw_name(b""),
        flags: 0,
    };
    assert_eq!(decode_errno(&unlink_nothing), Errno::EINVAL);
    let long = Request::Mkdir {
        dir: Fid(1),
        name: raw_name(&[b'x'; 256]),
        mode: 0,
        uid: 0,
        gid: 0,
    };
    assert_eq!(decode_errno(&long), Errno::ENAMETOOLONG);
}

#[test]
fn symlink_targets_are_checked() {
    let symlink = |target: &[u8]| Request::Symlink {
        dir: Fid(1),
        name: name("l"),
        target: target.to_vec(),
        uid: 0,
        gid: 0,
    };
    assert_eq!(decode_errno(&symlink(b"")), Errno::ENOENT);
    assert_eq!(decode_errno(&symlink(b"a\0b")), Errno::EINVAL);
    assert_eq!(
        decode_errno(&symlink(&[b'a'; PATH_MAX])),
        Errno::ENAMETOOLONG
    );
    let longest = symlink(&[b'a'; PATH_MAX - 1]);
    assert_eq!(
        Request::decode(Opcode::Symlink as u32, &longest.to_bytes()),
        Ok(longest)
    );
    // A name length that runs past the payload.
    let mut bytes = symlink(b"target").to_bytes();
    bytes[16..20].copy_from_slice(&1000u32.to_ne_bytes());
    assert!(matches!(
        Request::decode(Opcode::Symlink as u32, &bytes),
        Err(DecodeError::Truncated(_))
    ));
}

#[test]
fn flags_modes_and_owners_are_checked() {
    let fid = Fid(1);
    let open = |flags: i32| Request::Open {
        fid,
        flags: flags as u32,
    };
    for bad in [
        libc::O_CREAT,
        libc::O_PATH,
        libc::O_DIRECT,
        libc::O_NOFOLLOW,
        libc::O_ACCMODE,
        libc::O_TMPFILE,
        1 << 30,
    ] {
        assert_eq!(
            decode_errno(&open(bad)),
            Errno::EINVAL,
            "open flags {bad:#x}"
        );
    }
    let create = |flags: i32, mode: u32, uid: u32| Request::Create {
        dir: fid,
        name: name("f"),
        flags: flags as u32,
        mode,
        uid,
        gid: 0,
    };
    assert_eq!(
        decode_errno(&create(libc::O_DIRECTORY, 0o600, 0)),
        Errno::EINVAL
    );
    assert_eq!(
        decode_errno(&create(0, libc::S_IFREG | 0o600, 0)),
        Errno::EINVAL
    );
    assert_eq!(decode_errno(&create(0, 0o600, u32::MAX)), Errno::EINVAL);
    let mknod = |mode: u32| Request::Mknod {
        dir: fid,
        name: name("n"),
        mode,
        rdev: 0,
        uid: 0,
        gid: 0,
    };
    assert_eq!(decode_errno(&mknod(0o10_0000_0000)), Errno::EINVAL);
    // The file type is the server's to judge (EPERM for all but FIFOs).
    assert!(Request::decode(
        Opcode::Mknod as u32,
        &mknod(libc::S_IFCHR | 0o666).to_bytes()
    )
    .is_ok());

    let unlink = Request::Unlink {
        dir: fid,
        name: name("x"),
        flags: libc::AT_SYMLINK_NOFOLLOW as u32,
    };
    assert_eq!(decode_errno(&unlink), Errno::EINVAL);
    let rename = |flags| Request::Rename {
        old_dir: fid,
        old_name: name("a"),
        new_dir: fid,
        new_name: name("b"),
        flags,
    };
    assert_eq!(
        decode_errno(&rename(RENAME_EXCHANGE | RENAME_NOREPLACE)),
        Errno::EINVAL
    );
    assert_eq!(decode_errno(&rename(libc::RENAME_WHITEOUT)), Errno::EINVAL);
    assert_eq!(
        decode_errno(&Request::Fsync { fid, flags: 2 }),
        Errno::EINVAL
    );
    let past_off_t = 1u64 << 63;
    assert_eq!(
        decode_errno(&Request::Read {
            fid,
            offset: past_off_t,
            len: 1
        }),
        Errno::EINVAL
    );
    assert_eq!(
        decode_errno(&Request::Write {
            fid,
            offset: past_off_t,
            data: vec![1]
        }),
        Errno::EINVAL
    );
    assert_eq!(
        decode_errno(&Request::Getdents {
            fid,
            cookie: past_off_t,
            max: 100
        }),
        Errno::EINVAL
    );
}

#[test]
fn setattr_fields_are_checked_only_when_masked_in() {
    let setattr = |attr: SetAttr| Request::SetAttr { fid: Fid(1), attr };
    let ignored = SetAttr {
        mask: 0,
        mode: u32::MAX,
        uid: u32::MAX,
        gid: u32::MAX,
        size: u64::MAX,
        atime: Timespec { sec: 0, nsec: -1 },
        mtime: Timespec { sec: 0, nsec: -1 },
    };
    assert!(Request::decode(Opcode::SetAttr as u32, &setattr(ignored).to_bytes()).is_ok());
    for mask in [
        setattr::MODE,
        setattr::UID,
        setattr::GID,
        setattr::SIZE,
        setattr::ATIME,
        setattr::MTIME,
        1 << 6,
    ] {
        let attr = SetAttr { mask, ..ignored };
        assert_eq!(
            decode_errno(&setattr(attr)),
            Errno::EINVAL,
            "mask {mask:#x}"
        );
    }
    let billion = SetAttr {
        mask: setattr::MTIME,
        mtime: Timespec {
            sec: 0,
            nsec: 1_000_000_000,
        },
        ..Default::default()
    };
    assert_eq!(decode_errno(&setattr(billion)), Errno::EINVAL);
    let omit = SetAttr {
        mask: setattr::ATIME | setattr::MTIME,
        atime: Timespec::OMIT,
        mtime: Timespec::NOW,
        ..Default::default()
    };
    assert!(Request::decode(Opcode::SetAttr as u32, &setattr(omit).to_bytes()).is_ok());
}

#[test]
fn reserved_fields_must_be_zero() {
    // (request, byte offset of a reserved field)
    let cases = [
        (Request::Version { version: 1 }, 4),
        (
            Request::Walk {
                dir: Fid(1),
                names: vec![],
            },
            12,
        ),
        (
            Request::Open {
                fid: Fid(1),
                flags: 0,
            },
            12,
        ),
        (
            Request::Read {
                fid: Fid(1),
                offset: 0,
                len: 1,
            },
            20,
        ),
        (
            Request::Getdents {
                fid: Fid(1),
                cookie: 0,
                max: 1,
            },
            20,
        ),
        (
            Request::Fsync {
                fid: Fid(1),
                flags: 0,
            },
            12,
        ),
    ];
    for (request, offset) in cases {
        let mut bytes = request.to_bytes();
        bytes[offset] = 1;
        assert!(
            matches!(
                Request::decode(request.opcode() as u32, &bytes),
                Err(DecodeError::Reserved(_))
            ),
            "{request:?}"
        );
    }
}

#[test]
fn hostile_responses_are_refused() {
    // A walk error that is no errno, and a count that disagrees with the payload.
    let mut walk = Response::Walk {
        nodes: vec![FidAttr::default()],
        error: None,
    }
    .to_bytes();
    walk[4..8].copy_from_slice(&70_000u32.to_ne_bytes());
    assert!(Response::decode(Opcode::Walk, &walk).is_err());
    walk[4..8].copy_from_slice(&0u32.to_ne_bytes());
    walk[0..4].copy_from_slice(&u32::MAX.to_ne_bytes());
    assert!(Response::decode(Opcode::Walk, &walk).is_err());
    // A directory entry named "..", or with a slash.
    for bad in [&b".."[..], b"a/b", b""] {
        let mut dirents = Response::Dirents(vec![Dirent {
            ino: 1,
            kind: 0,
            name: name("ab"),
            next_cookie: 1,
        }])
        .to_bytes();
        let hdr = size_of::<GetdentsRsp>();
        dirents[hdr + 17] = bad.len() as u8;
        dirents.truncate(hdr + size_of::<DirentHdr>());
        dirents.extend_from_slice(bad);
        assert!(
            Response::decode(Opcode::Getdents, &dirents).is_err(),
            "{bad:?}"
        );
    }
    // A huge entry count with no entries behind it.
    let mut many = Response::Dirents(vec![]).to_bytes();
    many[0..4].copy_from_slice(&u32::MAX.to_ne_bytes());
    assert!(Response::decode(Opcode::Getdents, &many).is_err());
}

#[test]
fn statuses() {
    assert_eq!(status_to_result(0), Ok(()));
    assert_eq!(status_to_result(2), Err(Some(Errno::ENOENT)));
    assert_eq!(status_to_result(4095), Err(Some(Errno::from_raw(4095))));
    assert_eq!(status_to_result(4096), Err(None));
    assert_eq!(status_to_result(u32::MAX), Err(None));
    assert_eq!(errno_status(Errno::EROFS), libc::EROFS as u32);
    assert_eq!(errno_status(Errno::UnknownErrno), libc::EIO as u32);
}

struct XorShift(u64);

impl XorShift {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

#[test]
fn random_payloads_never_panic() {
    let mut rng = XorShift(0x2545_f491_4f6c_dd1d);
    let mut seeds: Vec<Vec<u8>> = sample_requests().iter().map(Request::to_bytes).collect();
    seeds.extend(sample_responses().iter().map(|(_, r)| r.to_bytes()));
    for round in 0..20_000 {
        let mut bytes = seeds[round % seeds.len()].clone();
        // Flip, cut or extend a few bytes of a valid message, or make noise.
        match rng.next() % 4 {
            0 => {
                for _ in 0..1 + rng.next() % 4 {
                    if !bytes.is_empty() {
                        let i = (rng.next() as usize) % bytes.len();
                        bytes[i] = rng.next() as u8;
                    }
                }
            }
            1 => bytes.truncate((rng.next() as usize) % (bytes.len() + 1)),
            2 => bytes.extend((0..rng.next() % 300).map(|_| rng.next() as u8)),
            _ => bytes = (0..rng.next() % 600).map(|_| rng.next() as u8).collect(),
        }
        let opcode = (rng.next() % 23) as u32;
        let _ = Request::decode(opcode, &bytes);
        if let Some(op) = Opcode::from_u32(opcode) {
            let _ = Response::decode(op, &bytes);
        }
    }
}

#[test]
fn limits_fit_the_slot() {
    let p = MIN_PAYLOAD;
    assert_eq!(max_read(p), p);
    assert_eq!(max_write(p) as usize + size_of::<WriteReq>(), p as usize);
    let walk = Response::Walk {
        nodes: vec![FidAttr::default(); max_walk(p)],
        error: None,
    };
    assert!(walk.to_bytes().len() <= p as usize);
    assert!(max_walk(p) >= 8);
    // The longest symlink request fits the smallest slot.
    let symlink = Request::Symlink {
        dir: Fid(1),
        name: name(&"n".repeat(NAME_MAX)),
        target: vec![b't'; PATH_MAX - 1],
        uid: 0,
        gid: 0,
    };
    assert!(symlink.to_bytes().len() <= p as usize);
    assert_eq!(
        dirent_size(3),
        Response::Dirents(vec![Dirent {
            ino: 0,
            kind: 0,
            name: name("abc"),
            next_cookie: 0
        }])
        .to_bytes()
        .len()
            - size_of::<GetdentsRsp>()
    );
}
