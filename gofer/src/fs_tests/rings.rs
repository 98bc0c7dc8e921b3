//! One server, several rings: one fid table shared by all of them, one thread per ring, and a
//! client that spreads its calls over the rings.

use std::sync::atomic::AtomicUsize;
use std::sync::Barrier;

use super::*;

/// A server for `tree` over `rings` rings on a thread; it hands itself back when it stops,
/// so that tests can look at its fid table.
type Serving = JoinHandle<(Result<(), ServerError>, Server)>;

fn serve_rings(tree: &Tree, options: ServerOptions, rings: usize) -> (Vec<ShmFrontEnd>, Serving) {
    let mut fronts = Vec::new();
    let mut backs = Vec::new();
    for _ in 0..rings {
        let (front, fds) = ShmFrontEnd::create(CONFIG).unwrap();
        fronts.push(front);
        backs.push(ShmBackEnd::attach(CONFIG, fds).unwrap());
    }
    let mut server = Server::with_rings(backs, tree.open_root(), options).unwrap();
    let serving = std::thread::spawn(move || (server.serve(), server));
    (fronts, serving)
}

fn start_rings(tree: &Tree, options: ServerOptions, rings: usize) -> (Client, Serving) {
    let (fronts, serving) = serve_rings(tree, options, rings);
    let client = Client::connect_rings(fronts, ClientOptions::default()).unwrap();
    assert_eq!(client.rings(), rings);
    (client, serving)
}

/// Shuts the server down; checks that every ring's thread stopped cleanly and that the
/// client holds exactly `fids` fids.
fn stop(client: &Client, serving: Serving, fids: usize) {
    client.shutdown().unwrap();
    let (result, server) = serving.join().unwrap();
    result.unwrap();
    assert_eq!(server.fids_held(), fids);
}

fn raw(client: &Client, ring: usize, request: &Request) -> Result<Response, Errno> {
    let (status, payload) = client
        .call_raw_on(ring, request.opcode() as u32, &request.to_bytes())
        .unwrap();
    match proto::status_to_result(status) {
        Ok(()) => Ok(Response::decode(request.opcode(), &payload).unwrap()),
        Err(errno) => Err(errno.unwrap()),
    }
}

fn name(s: &str) -> Name {
    Name::new(s.as_bytes()).unwrap()
}

#[test]
fn a_fid_from_one_ring_is_valid_on_every_ring() {
    let tree = Tree::new("rings-share");
    let (client, serving) = start_rings(&tree, ServerOptions::default(), 3);
    let root = client.root().fid;
    // Walk on ring 0, stat on ring 1, open on ring 2, read on ring 0.
    let Ok(Response::Walk { nodes, error: None }) = raw(
        &client,
        0,
        &Request::Walk {
            dir: root,
            names: vec![name("dir"), name("inner.txt")],
        },
    ) else {
        panic!("walk failed")
    };
    let file = nodes[1].fid;
    let Ok(Response::Attr(attr)) = raw(&client, 1, &Request::Stat { fid: file }) else {
        panic!("stat on another ring failed")
    };
    assert_eq!(attr.size, 5);
    let Ok(Response::Opened(open)) = raw(
        &client,
        2,
        &Request::Open {
            fid: file,
            flags: OFlag::O_RDONLY.bits() as u32,
        },
    ) else {
        panic!("open on another ring failed")
    };
    let read = Request::Read {
        fid: open,
        offset: 0,
        len: 100,
    };
    assert_eq!(
        raw(&client, 0, &read),
        Ok(Response::Data(b"inner".to_vec()))
    );
    // Closed on one ring, gone on all.
    assert_eq!(
        raw(&client, 1, &Request::Close { fid: open }),
        Ok(Response::Empty)
    );
    for ring in 0..3 {
        assert_eq!(raw(&client, ring, &read), Err(Errno::EBADF), "ring {ring}");
    }
    // A node renamed through one ring opens under its new name through another.
    let Ok(Response::Walk { nodes, error: None }) = raw(
        &client,
        2,
        &Request::Walk {
            dir: root,
            names: vec![name("file.txt")],
        },
    ) else {
        panic!("walk failed")
    };
    let moved = nodes[0].fid;
    let rename = Request::Rename {
        old_dir: root,
        old_name: name("file.txt"),
        new_dir: nodes_dir(&client, root),
        new_name: name("moved.txt"),
        flags: 0,
    };
    assert_eq!(raw(&client, 1, &rename), Ok(Response::Empty));
    let Ok(Response::Opened(open)) = raw(
        &client,
        0,
        &Request::Open {
            fid: moved,
            flags: OFlag::O_RDONLY.bits() as u32,
        },
    ) else {
        panic!("opening a node renamed through another ring failed")
    };
    assert_eq!(read_all(&client, open), b"hello world");
    // One handshake per server, whichever ring it comes on.
    assert_eq!(
        raw(
            &client,
            2,
            &Request::Version {
                version: proto::VERSION
            }
        ),
        Err(Errno::EPROTO)
    );
    // root, dir, inner.txt, file.txt (now dir/moved.txt), dir again, its open fid.
    stop(&client, serving, 6);
}

/// Walks `dir` from `root` (a fid of its own).
fn nodes_dir(client: &Client, root: Fid) -> Fid {
    client.walk(root, &["dir"]).unwrap().nodes[0].fid
}

#[test]
fn requests_before_the_handshake_fail_on_every_ring() {
    let tree = Tree::new("rings-handshake");
    let (fronts, serving) = serve_rings(&tree, ServerOptions::default(), 2);
    let mut fronts = fronts.into_iter();
    let mut first = fronts.next().unwrap();
    let mut second = fronts.next().unwrap();
    let stat = Request::Stat { fid: Fid(1) };
    let timeout = Some(Duration::from_secs(10));
    for front in [&mut first, &mut second] {
        let response = front
            .call(stat.opcode() as u32, &stat.to_bytes(), timeout)
            .unwrap();
        assert_eq!(
            proto::status_to_result(response.status),
            Err(Some(Errno::EPROTO))
        );
    }
    // The handshake on the second ring serves the first too.
    let version = Request::Version {
        version: proto::VERSION,
    };
    let response = second
        .call(version.opcode() as u32, &version.to_bytes(), timeout)
        .unwrap();
    assert_eq!(response.status, 0);
    let response = first
        .call(stat.opcode() as u32, &stat.to_bytes(), timeout)
        .unwrap();
    assert_eq!(response.status, 0);
    let shutdown = Request::Shutdown;
    first
        .call(shutdown.opcode() as u32, &shutdown.to_bytes(), timeout)
        .unwrap();
    let (result, server) = serving.join().unwrap();
    result.unwrap();
    assert_eq!(server.fids_held(), 1);
}

#[test]
fn threads_hammer_shared_fids_over_several_rings() {
    const THREADS: usize = 8;
    const ROUNDS: usize = 150;
    let tree = Tree::new("rings-hammer");
    // Fewer rings than threads, so that calls queue for a ring as well as run at once.
    let (client, serving) = start_rings(&tree, ServerOptions::default(), 3);
    let client = Arc::new(client);
    // Nodes every thread shares: one walk, used and closed by nobody else.
    let shared_dir = walk_all(&client, &["dir"]).fid;
    let shared_file = walk_all(&client, &["file.txt"]).fid;
    let start = Arc::new(Barrier::new(THREADS));
    let threads: Vec<_> = (0..THREADS)
        .map(|t| {
            let (c, start) = (Arc::clone(&client), Arc::clone(&start));
            std::thread::spawn(move || {
                start.wait();
                // A file of its own, written by offset and read back through fresh fids.
                let own = format!("t{t}");
                let created = c
                    .create(c.root().fid, own.as_bytes(), OFlag::O_RDWR, 0o600, me())
                    .unwrap();
                for n in 0..ROUNDS as u64 {
                    let walked = c.walk(shared_dir, &["inner.txt"]).unwrap();
                    assert_eq!(walked.error, None);
                    let inner = walked.nodes[0];
                    assert_eq!(c.stat(inner.fid).unwrap().size, 5);
                    let open = c.open(inner.fid, OFlag::O_RDONLY).unwrap();
                    let mut buf = [0u8; 16];
                    assert_eq!(c.read(open, 0, &mut buf), Ok(5));
                    assert_eq!(&buf[..5], b"inner");
                    c.close(open).unwrap();
                    c.close(inner.fid).unwrap();
                    // Closed for everyone: a second close fails, on whichever ring.
                    assert_eq!(c.close(inner.fid), Err(Errno::EBADF));
                    assert_eq!(c.stat(open), Err(Errno::EBADF));

                    assert_eq!(c.stat(shared_file).unwrap().size, 11);
                    c.write(created.file, n * 8, &(n + t as u64).to_ne_bytes())
                        .unwrap();
                    assert_eq!(c.stat(created.node).unwrap().size, (n + 1) * 8);
                }
                let data = read_all(&c, created.file);
                assert_eq!(data.len(), ROUNDS * 8);
                for (n, word) in data.chunks(8).enumerate() {
                    assert_eq!(word, &(n as u64 + t as u64).to_ne_bytes());
                }
                c.close(created.file).unwrap();
                c.close(created.node).unwrap();
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    assert_eq!(client.failure(), None);
    // Left: the root and the two shared nodes.
    stop(&client, serving, 3);
}

#[test]
fn the_fid_bound_holds_over_all_rings_at_once() {
    const THREADS: usize = 6;
    const MAX: usize = 40;
    let tree = Tree::new("rings-bound");
    let options = ServerOptions {
        max_fids: MAX,
        ..ServerOptions::default()
    };
    let (client, serving) = start_rings(&tree, options, 4);
    let client = Arc::new(client);
    let start = Arc::new(Barrier::new(THREADS));
    let got = Arc::new(AtomicUsize::new(0));
    let threads: Vec<_> = (0..THREADS)
        .map(|_| {
            let (c, start, got) = (Arc::clone(&client), Arc::clone(&start), Arc::clone(&got));
            std::thread::spawn(move || {
                start.wait();
                let mut mine = Vec::new();
                // Walk until the table is full; keep everything.
                loop {
                    let walked = c.walk(c.root().fid, &["dir", "inner.txt"]).unwrap();
                    mine.extend(walked.nodes.iter().map(|n| n.fid));
                    got.fetch_add(walked.nodes.len(), Ordering::SeqCst);
                    match walked.error {
                        None => continue,
                        Some(errno) => {
                            assert_eq!(errno, Errno::EMFILE);
                            break;
                        }
                    }
                }
                // Full for everyone: an open needs a fid too.
                if let Some(&node) = mine.last() {
                    assert_eq!(c.open(node, OFlag::O_RDONLY), Err(Errno::EMFILE));
                }
                mine
            })
        })
        .collect();
    let held: Vec<Vec<Fid>> = threads.into_iter().map(|t| t.join().unwrap()).collect();
    // Exactly the bound, the root included: nobody overshot it, and the table really was
    // full when each thread stopped.
    assert_eq!(got.load(Ordering::SeqCst), MAX - 1);
    // Every fid handed out is distinct.
    let all: BTreeSet<u64> = held.iter().flatten().map(|f| f.0).collect();
    assert_eq!(all.len(), MAX - 1);
    // One closed on some ring makes room for one more on any.
    client.close(Fid(*all.first().unwrap())).unwrap();
    let walked = client
        .walk(client.root().fid, &["dir", "inner.txt"])
        .unwrap();
    assert_eq!(walked.nodes.len(), 1);
    assert_eq!(walked.error, Some(Errno::EMFILE));
    stop(&client, serving, MAX);
}

#[test]
fn shutdown_waits_for_calls_in_flight_on_other_rings() {
    let tree = Tree::new("rings-shutdown");
    let (fronts, serving) = serve_rings(&tree, ServerOptions::default(), 3);
    let options = ClientOptions {
        // A call the server never answered would fail only after this.
        timeout: Duration::from_secs(20),
        server_process: None,
    };
    let client = Arc::new(Client::connect_rings(fronts, options).unwrap());
    let start = Arc::new(Barrier::new(5));
    let threads: Vec<_> = (0..4)
        .map(|_| {
            let (c, start) = (Arc::clone(&client), Arc::clone(&start));
            std::thread::spawn(move || {
                start.wait();
                let mut ok = 0;
                loop {
                    match c.stat(c.root().fid) {
                        Ok(attr) => {
                            assert!(attr.is_dir());
                            ok += 1;
                        }
                        Err(errno) => return (ok, errno),
                    }
                }
            })
        })
        .collect();
    start.wait();
    std::thread::sleep(Duration::from_millis(50));
    let began = Instant::now();
    client.shutdown().unwrap();
    for t in threads {
        let (ok, errno) = t.join().unwrap();
        assert!(ok > 0);
        assert_eq!(errno, Errno::EIO);
    }
    assert!(
        began.elapsed() < Duration::from_secs(5),
        "{:?}",
        began.elapsed()
    );
    let (result, _) = serving.join().unwrap();
    result.unwrap();
    assert!(client.failure().unwrap().contains("shut down"));
}

#[test]
fn a_broken_ring_stops_every_ring() {
    use crate::ring::{EventFdNotifier, Index, Notifier, RingMemory, ShmRing};
    let tree = Tree::new("rings-broken");
    let mut fronts = Vec::new();
    let mut backs = Vec::new();
    let mut intruder = None;
    for i in 0..3 {
        let (front, fds) = ShmFrontEnd::create(CONFIG).unwrap();
        if i == 2 {
            let memory = ShmRing::attach(CONFIG, fds.memory.try_clone().unwrap()).unwrap();
            let kick = EventFdNotifier::from_fd(fds.requests.try_clone().unwrap()).unwrap();
            intruder = Some((memory, kick));
        } else {
            fronts.push(front);
        }
        backs.push(ShmBackEnd::attach(CONFIG, fds).unwrap());
    }
    let mut server = Server::with_rings(backs, tree.open_root(), ServerOptions::default()).unwrap();
    let serving = std::thread::spawn(move || server.serve());
    let client = Client::connect_rings(fronts, ClientOptions::default()).unwrap();
    assert!(client.stat(client.root().fid).is_ok());
    // More requests published on the third ring than it has slots.
    let (memory, kick) = intruder.unwrap();
    memory
        .store(Index::ReqProd, 1000, std::sync::atomic::Ordering::Release)
        .unwrap();
    kick.notify().unwrap();
    let result = serving.join().unwrap();
    assert!(
        matches!(
            result,
            Err(ServerError::Ring(crate::ring::Error::Protocol(_)))
        ),
        "{result:?}"
    );
}

#[test]
fn no_rings_is_an_error() {
    let tree = Tree::new("rings-none");
    assert!(matches!(
        Server::with_rings(Vec::new(), tree.open_root(), ServerOptions::default()),
        Err(ServerError::NoRings)
    ));
    assert_eq!(
        Client::connect_rings(Vec::new(), ClientOptions::default()).map(drop),
        Err(Errno::EINVAL)
    );
}

#[test]
fn a_failed_confinement_serves_nothing() {
    let tree = Tree::new("rings-confine");
    let mut fronts = Vec::new();
    let mut backs = Vec::new();
    for _ in 0..3 {
        let (front, fds) = ShmFrontEnd::create(CONFIG).unwrap();
        fronts.push(front);
        backs.push(ShmBackEnd::attach(CONFIG, fds).unwrap());
    }
    let mut server = Server::with_rings(backs, tree.open_root(), ServerOptions::default()).unwrap();
    let result = server.serve_confined(|| Err("no seccomp here".into()));
    assert!(
        matches!(&result, Err(ServerError::Confine(why)) if why == "no seccomp here"),
        "{result:?}"
    );
    // Before starting threads, the descriptor table was made room in for every fid (and
    // never shrinks): later growth would wait for an RCU grace period each time.
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let fd_size: usize = status
        .lines()
        .find_map(|l| l.strip_prefix("FDSize:"))
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    let (soft, _) =
        nix::sys::resource::getrlimit(nix::sys::resource::Resource::RLIMIT_NOFILE).unwrap();
    let want = (ServerOptions::default().max_fids + 64).min(soft as usize);
    assert!(fd_size >= want, "FDSize {fd_size}, want at least {want}");
    // Nobody answers: the handshake times out.
    let options = ClientOptions {
        timeout: Duration::from_millis(200),
        server_process: None,
    };
    assert_eq!(
        Client::connect_rings(fronts, options).map(drop),
        Err(Errno::EIO)
    );
}
