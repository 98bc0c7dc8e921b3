//! Ring tests on real shared memory and eventfds: the protocol step by step, a hostile
//! peer, several threads, and a back end in another process.

use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::process::{Command, Stdio};
use std::time::Duration;

use zerocopy::IntoBytes;

use super::sync::Ordering;
use super::*;

const CONFIG: RingConfig = RingConfig {
    slots: 8,
    data_slot_size: 64,
};
/// Long enough never to fire on a loaded 2-vCPU machine, short enough that a lost wake-up
/// fails the test instead of hanging it.
const TIMEOUT: Option<Duration> = Some(Duration::from_secs(30));

fn pair(config: RingConfig) -> (ShmFrontEnd, ShmBackEnd) {
    let (front, fds) = ShmFrontEnd::create(config).unwrap();
    let back = ShmBackEnd::attach(config, fds).unwrap();
    (front, back)
}

/// A pair plus a third mapping of the ring memory, to play a hostile peer with.
fn pair_with_intruder(config: RingConfig) -> (ShmFrontEnd, ShmBackEnd, ShmRing) {
    let (front, fds) = ShmFrontEnd::create(config).unwrap();
    let intruder = ShmRing::attach(config, fds.memory.try_clone().unwrap()).unwrap();
    let back = ShmBackEnd::attach(config, fds).unwrap();
    (front, back, intruder)
}

fn put_descriptor(mem: &ShmRing, pos: u32, desc: Descriptor) {
    mem.write(CONFIG.descriptor_offset(pos), desc.as_bytes())
        .unwrap();
}

fn well_formed(id: u32, len: u32) -> Descriptor {
    Descriptor {
        id,
        code: 7,
        data_offset: CONFIG.data_slot(id),
        data_len: len,
        reserved: [0; 4],
    }
}

fn is_protocol_error<T: std::fmt::Debug>(r: Result<T>) -> bool {
    matches!(r, Err(Error::Protocol(_)))
}

#[test]
fn requests_and_responses_round_trip_out_of_order() {
    let (mut front, mut back) = pair(CONFIG);
    let a = front.submit(1, b"first").unwrap();
    let b = front.submit(2, b"").unwrap();
    let c = front.submit(3, &[0xab; 64]).unwrap();
    assert_eq!((a, b, c), (RequestId(0), RequestId(1), RequestId(2)));
    assert_eq!(
        back.next_request().unwrap(),
        None,
        "nothing is published before push"
    );
    assert!(
        front.push().unwrap(),
        "the back end starts out wanting a notification"
    );

    let mut got = Vec::new();
    while let Some(req) = back.next_request().unwrap() {
        got.push(req);
    }
    assert_eq!(
        got,
        vec![
            Request {
                id: a,
                opcode: 1,
                payload: b"first".to_vec()
            },
            Request {
                id: b,
                opcode: 2,
                payload: vec![]
            },
            Request {
                id: c,
                opcode: 3,
                payload: vec![0xab; 64]
            },
        ]
    );
    back.respond(c, 30, b"third").unwrap();
    back.respond(a, 10, &[1; 64]).unwrap();
    back.respond(b, 20, b"second").unwrap();
    assert!(back.push_responses().unwrap());

    let mut responses = Vec::new();
    let n = front
        .poll_responses(|id, status, payload| responses.push((id, status, payload.to_vec())))
        .unwrap();
    assert_eq!(n, 3);
    assert_eq!(
        responses,
        vec![
            (c, 30, b"third".to_vec()),
            (a, 10, vec![1; 64]),
            (b, 20, b"second".to_vec())
        ]
    );
    assert_eq!(front.outstanding(), 0);
    assert_eq!(front.poll_responses(|_, _, _| panic!()).unwrap(), 0);
}

#[test]
fn a_full_ring_pushes_back_until_a_response_is_consumed() {
    let (mut front, mut back) = pair(CONFIG);
    for i in 0..CONFIG.slots {
        assert_eq!(front.submit(0, &[i as u8]).unwrap(), RequestId(i));
    }
    assert!(matches!(front.submit(0, b"x"), Err(Error::Full(8))));
    front.push().unwrap();
    // Serving requests frees nothing until the front end consumes the responses.
    let first = back.next_request().unwrap().unwrap();
    back.respond(first.id, 0, b"").unwrap();
    assert!(matches!(front.submit(0, b"x"), Err(Error::Full(_))));
    back.push_responses().unwrap();
    assert!(matches!(front.submit(0, b"x"), Err(Error::Full(_))));
    assert_eq!(front.poll_responses(|_, _, _| {}).unwrap(), 1);
    assert_eq!(front.outstanding(), 7);
    // The freed id is reused, in a new ring slot (position 8 wraps to slot 0).
    assert_eq!(front.submit(9, b"again").unwrap(), first.id);
    assert!(matches!(front.submit(0, b"x"), Err(Error::Full(_))));
    front.push().unwrap();
    for i in 1..CONFIG.slots {
        let req = back.next_request().unwrap().unwrap();
        assert_eq!((req.id, req.payload), (RequestId(i), vec![i as u8]));
    }
    let again = back.next_request().unwrap().unwrap();
    assert_eq!((again.id, again.opcode), (first.id, 9));
    assert_eq!(again.payload, b"again");
    assert_eq!(back.next_request().unwrap(), None);
}

#[test]
fn sizes_and_ids_are_checked_on_the_honest_side_too() {
    let (mut front, mut back) = pair(CONFIG);
    assert!(matches!(
        front.submit(0, &[0; 65]),
        Err(Error::PayloadTooLarge { len: 65, max: 64 })
    ));
    assert_eq!(front.outstanding(), 0, "a refused submit takes no slot");
    assert!(matches!(
        back.respond(RequestId(0), 0, b""),
        Err(Error::NotPending(0))
    ));
    assert!(matches!(
        back.respond(RequestId(u32::MAX), 0, b""),
        Err(Error::NotPending(u32::MAX))
    ));
    let id = front.submit(0, b"q").unwrap();
    front.push().unwrap();
    let req = back.next_request().unwrap().unwrap();
    assert!(matches!(
        back.respond(req.id, 0, &[0; 65]),
        Err(Error::PayloadTooLarge { .. })
    ));
    back.respond(id, 0, b"a").unwrap();
    assert!(matches!(
        back.respond(id, 0, b"a"),
        Err(Error::NotPending(_))
    ));
}

#[test]
fn notifications_only_when_the_other_side_asked() {
    let (mut front, mut back) = pair(CONFIG);
    front.submit(0, b"1").unwrap();
    assert!(front.push().unwrap(), "initial req_event is 1");
    assert!(!front.push().unwrap(), "nothing new to push");
    back.next_request().unwrap().unwrap();
    // The back end is busy (has not re-armed): a batch goes without a notification.
    for _ in 0..5 {
        front.submit(0, b"more").unwrap();
    }
    assert!(!front.push().unwrap());
    for _ in 0..5 {
        back.next_request().unwrap().unwrap();
    }
    assert!(
        !back.final_check_for_requests().unwrap(),
        "the ring is empty"
    );
    // Now it sleeps with req_event = req_cons + 1: the next request wakes it, once.
    front.submit(0, b"wake").unwrap();
    front.submit(0, b"same batch").unwrap();
    assert!(front.push().unwrap());
    assert!(back.final_check_for_requests().unwrap());

    for id in 0..6 {
        back.respond(RequestId(id), 0, b"").unwrap();
    }
    assert!(back.push_responses().unwrap(), "initial rsp_event is 1");
    assert_eq!(front.poll_responses(|_, _, _| {}).unwrap(), 6);
    back.next_request().unwrap().unwrap();
    back.respond(RequestId(6), 0, b"").unwrap();
    assert!(
        !back.push_responses().unwrap(),
        "the front end has not asked again"
    );
    assert!(front.final_check_for_responses().unwrap(), "but it sees it");
    assert_eq!(front.poll_responses(|_, _, _| {}).unwrap(), 1);
    assert!(!front.final_check_for_responses().unwrap());
    back.next_request().unwrap().unwrap();
    back.respond(RequestId(7), 0, b"").unwrap();
    assert!(back.push_responses().unwrap());
}

#[test]
fn waits_time_out() {
    let (mut front, mut back) = pair(CONFIG);
    assert_eq!(
        front.wait_responses(TIMEOUT, |_, _, _| {}).unwrap(),
        0,
        "nothing in flight: no wait"
    );
    let short = Some(Duration::from_millis(20));
    assert!(matches!(
        back.wait_for_requests(short),
        Err(Error::TimedOut)
    ));
    front.submit(0, b"x").unwrap();
    assert!(matches!(
        front.wait_responses(short, |_, _, _| {}),
        Err(Error::TimedOut)
    ));
    // The push inside wait_responses woke the back end.
    back.wait_for_requests(short).unwrap();
    assert!(back.next_request().unwrap().is_some());
    assert!(matches!(front.call(0, b"y", short), Err(Error::Busy(1))));
}

#[test]
fn call_blocks_until_a_server_thread_answers() {
    let (mut front, mut back) = pair(CONFIG);
    let server = std::thread::spawn(move || serve(&mut back, 1));
    for i in 0..50u32 {
        let payload = request_payload(u64::from(i), CONFIG.data_slot_size);
        let r = front.call(i, &payload, TIMEOUT).unwrap();
        assert_eq!(r, expected_response(i, &payload, CONFIG.data_slot_size));
    }
    front.call(QUIT, b"", TIMEOUT).unwrap();
    assert_eq!(server.join().unwrap().unwrap(), 51);
}

#[test]
fn bad_configurations_are_refused() {
    for (slots, size) in [
        (0, 1),
        (3, 64),
        (MAX_SLOTS * 2, 64),
        (8, 0),
        (4096, 1 << 20),
    ] {
        let config = RingConfig {
            slots,
            data_slot_size: size,
        };
        assert!(
            matches!(ShmFrontEnd::create(config), Err(Error::Config(_))),
            "{config:?}"
        );
    }
    let (_front, fds) = ShmFrontEnd::create(CONFIG).unwrap();
    let other = RingConfig {
        slots: 16,
        data_slot_size: 64,
    };
    assert!(matches!(
        ShmBackEnd::attach(other, fds),
        Err(Error::Config(_))
    ));
}

#[test]
fn hostile_requests_are_errors_not_panics() {
    let (_front, mut back, evil) = pair_with_intruder(CONFIG);
    let publish = |n: u32| evil.store(Index::ReqProd, n, Ordering::Release).unwrap();

    // An index far past what the ring can hold, and one that moved backwards.
    publish(1000);
    assert!(is_protocol_error(back.next_request()));
    publish(u32::MAX);
    assert!(is_protocol_error(back.next_request()));

    // Each malformed descriptor is consumed and reported.
    put_descriptor(&evil, 0, well_formed(8, 1)); // id out of range
    put_descriptor(&evil, 1, well_formed(0, 65)); // longer than a data slot
    put_descriptor(&evil, 2, well_formed(u32::MAX, u32::MAX));
    let mut misplaced = well_formed(1, 4);
    misplaced.data_offset = CONFIG.data_slot(2); // another id's slot
    put_descriptor(&evil, 3, misplaced);
    misplaced.data_offset = u32::MAX - 2; // past the end of memory
    put_descriptor(&evil, 4, misplaced);
    publish(5);
    for _ in 0..5 {
        assert!(is_protocol_error(back.next_request()));
    }
    assert_eq!(back.next_request().unwrap(), None);

    // An id reused while the first request with it awaits its response.
    evil.write(CONFIG.payload_offset(CONFIG.data_slot(3)), b"abc")
        .unwrap();
    put_descriptor(&evil, 5, well_formed(3, 3));
    put_descriptor(&evil, 6, well_formed(3, 3));
    publish(7);
    let req = back.next_request().unwrap().unwrap();
    assert_eq!(
        (req.id, req.opcode, &req.payload[..]),
        (RequestId(3), 7, &b"abc"[..])
    );
    assert!(is_protocol_error(back.next_request()));

    // Unanswered requests count against the ring: 7 consumed, 0 answered, so at most one
    // more may be published.
    publish(9);
    assert!(is_protocol_error(back.next_request()));
    back.respond(req.id, 0, b"ok").unwrap();
    back.push_responses().unwrap();
    put_descriptor(&evil, 7, well_formed(4, 0));
    put_descriptor(&evil, 8, well_formed(5, 0));
    assert_eq!(back.next_request().unwrap().unwrap().id, RequestId(4));
    assert_eq!(back.next_request().unwrap().unwrap().id, RequestId(5));
    assert_eq!(back.next_request().unwrap(), None);
}

#[test]
fn hostile_responses_are_errors_not_panics() {
    let (mut front, _back, evil) = pair_with_intruder(CONFIG);
    let publish = |n: u32| evil.store(Index::RspProd, n, Ordering::Release).unwrap();
    let mut seen = 0;
    let mut count = |_: RequestId, _: u32, _: &[u8]| seen += 1;

    // Responses before any request was published.
    front.submit(0, b"unpublished").unwrap();
    publish(1);
    assert!(is_protocol_error(front.poll_responses(&mut count)));
    front.push().unwrap();
    front.submit(0, b"second").unwrap();
    front.push().unwrap();
    publish(3);
    assert!(is_protocol_error(front.poll_responses(&mut count)));
    publish(u32::MAX);
    assert!(is_protocol_error(front.poll_responses(&mut count)));

    put_descriptor(&evil, 0, well_formed(5, 0)); // id not in flight
    put_descriptor(&evil, 1, well_formed(1, 65)); // longer than a data slot
    publish(2);
    assert!(is_protocol_error(front.poll_responses(&mut count)));
    assert!(is_protocol_error(front.poll_responses(&mut count)));
    assert_eq!(front.poll_responses(&mut count).unwrap(), 0);
    assert_eq!(seen, 0);
    assert_eq!(front.outstanding(), 0, "both ring slots were consumed");
}

// --- Concurrency: a server that answers out of order, a client that checks every byte. ---

/// The request that ends `serve`.
const QUIT: u32 = u32::MAX;

struct XorShift(u64);

impl XorShift {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

/// The payload of request number `seq`: its length and bytes both depend on `seq`.
fn request_payload(seq: u64, max: u32) -> Vec<u8> {
    let len = (seq.wrapping_mul(0x9e37_79b9) % (u64::from(max) + 1)) as usize;
    (0..len)
        .map(|i| (seq.wrapping_mul(31).wrapping_add(i as u64 * 7) >> 1) as u8)
        .collect()
}

/// What the server answers: a function of the whole request, of a different length.
fn expected_response(opcode: u32, payload: &[u8], max: u32) -> Response {
    let mut out: Vec<u8> = payload.iter().rev().map(|b| b ^ 0xa5).collect();
    if out.len() < max as usize {
        out.push(opcode as u8);
    }
    Response {
        status: opcode.rotate_left(7) ^ 0x5555,
        payload: out,
    }
}

/// Serves requests until [`QUIT`], answering each batch in a random order and holding some
/// back while more keep coming. Returns how many requests it answered.
fn serve(back: &mut ShmBackEnd, seed: u64) -> Result<u64> {
    let max = back.config().data_slot_size;
    let mut rng = XorShift(seed | 1);
    let mut held: Vec<Request> = Vec::new();
    let mut served = 0;
    let mut quitting = false;
    loop {
        let mut arrived = false;
        while let Some(req) = back.next_request()? {
            quitting |= req.opcode == QUIT;
            held.push(req);
            arrived = true;
        }
        if held.is_empty() {
            if quitting {
                back.push_responses()?;
                return Ok(served);
            }
            back.wait_for_requests(TIMEOUT)?;
            continue;
        }
        // Never sleep on held requests: the client may be waiting for them.
        let answer = if arrived {
            1 + rng.below(held.len())
        } else {
            held.len()
        };
        for _ in 0..answer {
            let req = held.swap_remove(rng.below(held.len()));
            let r = expected_response(req.opcode, &req.payload, max);
            back.respond(req.id, r.status, &r.payload)?;
            served += 1;
        }
        if rng.below(4) != 0 {
            back.push_responses()?;
        }
    }
}

/// Sends `total` requests in random batches, checking every response against the request
/// it answers, then stops the server.
fn drive(front: &mut ShmFrontEnd, total: u64, seed: u64) -> Result<()> {
    let config = front.config();
    let mut rng = XorShift(seed | 1);
    // What each id in flight must get back.
    let mut expected: Vec<Option<Response>> = vec![None; config.slots as usize];
    let (mut sent, mut received) = (0u64, 0u64);
    while received < total {
        let batch = 1 + rng.below(2 * config.slots as usize);
        for _ in 0..batch {
            if sent == total {
                break;
            }
            let opcode = (sent as u32) & 0xfff;
            let payload = request_payload(sent, config.data_slot_size);
            match front.submit(opcode, &payload) {
                Ok(id) => {
                    let slot = &mut expected[id.0 as usize];
                    assert!(slot.is_none(), "id {id} handed out twice");
                    *slot = Some(expected_response(opcode, &payload, config.data_slot_size));
                    sent += 1;
                }
                Err(Error::Full(_)) => break,
                Err(e) => return Err(e),
            }
        }
        let check = |id: RequestId, status: u32, payload: &[u8]| {
            let want = expected[id.0 as usize].take();
            assert_eq!(
                Some(Response {
                    status,
                    payload: payload.to_vec()
                }),
                want,
                "response to request {id}"
            );
            received += 1;
        };
        if rng.below(3) == 0 {
            front.push()?;
            front.poll_responses(check)?;
        } else {
            front.wait_responses(TIMEOUT, check)?;
        }
    }
    assert!(expected.iter().all(Option::is_none));
    let bye = front.call(QUIT, b"", TIMEOUT)?;
    assert_eq!(bye, expected_response(QUIT, b"", config.data_slot_size));
    Ok(())
}

#[test]
fn stress_two_rings_four_threads() {
    const REQUESTS: u64 = 20_000;
    let shapes = [
        RingConfig {
            slots: 4,
            data_slot_size: 24,
        },
        RingConfig {
            slots: 32,
            data_slot_size: 256,
        },
    ];
    let mut servers = Vec::new();
    let mut clients = Vec::new();
    for (i, config) in shapes.into_iter().enumerate() {
        let (mut front, mut back) = pair(config);
        let seed = 0x1234_5678 + i as u64;
        servers.push(std::thread::spawn(move || serve(&mut back, seed)));
        clients.push(std::thread::spawn(move || {
            drive(&mut front, REQUESTS, seed)
        }));
    }
    for client in clients {
        client.join().unwrap().unwrap();
    }
    for server in servers {
        assert_eq!(server.join().unwrap().unwrap(), REQUESTS + 1);
    }
}

// --- Two processes: the back end runs in a child that maps the memfd itself. ---

const CHILD_RING: &str = "GOFER_RING_TEST_CHILD_MEMFD";
const CHILD_CONFIG: RingConfig = RingConfig {
    slots: 16,
    data_slot_size: 128,
};

#[test]
fn two_processes_share_a_ring() {
    const REQUESTS: u64 = 5_000;
    let (mut front, fds) = ShmFrontEnd::create(CHILD_CONFIG).unwrap();
    // The child reopens the memfd through our /proc entry, and gets the eventfds as its
    // stdin (requests) and stderr (responses): standard descriptors are the only ones safe
    // Rust can take over in the child. Its stdout keeps the test harness's report.
    let memfd = format!("/proc/{}/fd/{}", std::process::id(), fds.memory.as_raw_fd());
    let child = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "ring::tests::child_serves_ring",
            "--ignored",
            "--test-threads=1",
        ])
        .env(CHILD_RING, memfd)
        .stdin(Stdio::from(fds.requests))
        .stderr(Stdio::from(fds.responses))
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    drive(&mut front, REQUESTS, 99).unwrap();
    let out = child.wait_with_output().unwrap();
    let report = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "child failed: {report}");
    assert!(
        report.contains("1 passed"),
        "the child did not run the server: {report}"
    );
    drop(fds.memory);
}

#[test]
#[ignore = "the back end of two_processes_share_a_ring, which runs it in a child process"]
fn child_serves_ring() {
    let Ok(memfd) = std::env::var(CHILD_RING) else {
        return;
    };
    let memory: OwnedFd = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(memfd)
        .unwrap()
        .into();
    let fds = RingFds {
        memory,
        requests: std::io::stdin().as_fd().try_clone_to_owned().unwrap(),
        responses: std::io::stderr().as_fd().try_clone_to_owned().unwrap(),
    };
    let mut back = ShmBackEnd::attach(CHILD_CONFIG, fds).unwrap();
    assert_eq!(serve(&mut back, 7).unwrap(), 5_001);
}
