//! Model check of the ring protocol with loom: every interleaving (up to a preemption bound)
//! of a front end and a back end on a tiny ring.
//!
//! Run with:
//!
//! ```text
//! CARGO_TARGET_DIR=/work/loom-target RUSTFLAGS="--cfg loom" \
//!     cargo test -p gofer --release --lib ring::loom_tests
//! ```
//!
//! (`LOOM_MAX_PREEMPTIONS=N` changes the bound, default 3 here.) What each model catches:
//!
//! * a lost wake-up: a side asleep on its notifier with nobody left to wake it is a
//!   deadlock, which loom reports;
//! * a slot reused before it is consumed: descriptors and data slots live in
//!   `loom::cell::UnsafeCell`s, so a write that is not ordered after the other side's read of
//!   the same slot (or a read not ordered after the write) is a causality violation;
//! * a lost or garbled response: the front end checks it got every response, with the right
//!   contents, for the right id.
// The stand-in for shared memory has to dereference loom's UnsafeCell pointers.
#![allow(unsafe_code)]

use std::time::Duration;

use loom::cell::UnsafeCell;
use loom::sync::atomic::AtomicU32;
use loom::sync::{Arc, Notify};

use super::sync::Ordering;
use super::*;

/// Cell granularity: one descriptor, or one data slot of the models below.
const CHUNK: usize = DESCRIPTOR_SIZE;

const CONFIG: RingConfig = RingConfig {
    slots: 2,
    data_slot_size: CHUNK as u32,
};

struct Memory {
    indexes: [AtomicU32; 4],
    chunks: Vec<UnsafeCell<[u8; CHUNK]>>,
}

/// Ring memory for loom: atomics for the indexes, one tracked cell per descriptor and per
/// data slot.
#[derive(Clone)]
struct LoomRing(Arc<Memory>);

impl LoomRing {
    fn new(config: RingConfig) -> LoomRing {
        let chunks = config.body_size().div_ceil(CHUNK);
        LoomRing(Arc::new(Memory {
            indexes: std::array::from_fn(|_| AtomicU32::new(0)),
            chunks: (0..chunks).map(|_| UnsafeCell::new([0; CHUNK])).collect(),
        }))
    }

    fn index(&self, index: Index) -> &AtomicU32 {
        &self.0.indexes[index as usize]
    }

    /// Calls `f(chunk, range within it, range within the caller's buffer)` for each chunk that
    /// `[offset, offset + len)` touches.
    fn chunks(
        &self,
        offset: usize,
        len: usize,
        mut f: impl FnMut(&UnsafeCell<[u8; CHUNK]>, std::ops::Range<usize>, std::ops::Range<usize>),
    ) -> Result<()> {
        let mut done = 0;
        while done < len {
            let at = offset + done;
            let chunk = self
                .0
                .chunks
                .get(at / CHUNK)
                .ok_or_else(|| Error::Protocol(format!("model memory has no offset {at}")))?;
            let within = at % CHUNK;
            let n = (CHUNK - within).min(len - done);
            f(chunk, within..within + n, done..done + n);
            done += n;
        }
        Ok(())
    }
}

impl RingMemory for LoomRing {
    fn load(&self, index: Index, order: Ordering) -> Result<u32> {
        Ok(self.index(index).load(order))
    }

    fn store(&self, index: Index, value: u32, order: Ordering) -> Result<()> {
        self.index(index).store(value, order);
        Ok(())
    }

    fn read(&self, offset: usize, buf: &mut [u8]) -> Result<()> {
        self.chunks(offset, buf.len(), |cell, from, to| {
            // SAFETY: the pointer is valid while `cell` lives; loom checks that no write to the
            // cell races with this read.
            cell.with(|p| buf[to].copy_from_slice(&unsafe { &*p }[from]))
        })
    }

    fn write(&self, offset: usize, data: &[u8]) -> Result<()> {
        self.chunks(offset, data.len(), |cell, to, from| {
            // SAFETY: as in `read`; loom checks that no other access to the cell races with
            // this write.
            cell.with_mut(|p| unsafe { &mut *p }[to].copy_from_slice(&data[from]))
        })
    }
}

/// An eventfd stand-in: a notification sent while nobody waits is kept.
#[derive(Clone)]
struct LoomNotifier(Arc<Notify>);

impl Notifier for LoomNotifier {
    fn notify(&self) -> Result<()> {
        self.0.notify();
        Ok(())
    }

    fn wait(&self, timeout: Option<Duration>) -> Result<bool> {
        assert!(timeout.is_none(), "the models never time out");
        self.0.wait();
        Ok(true)
    }
}

type Front = FrontEnd<LoomRing, LoomNotifier>;
type Back = BackEnd<LoomRing, LoomNotifier>;

fn pair() -> (Front, Back) {
    let mem = LoomRing::new(CONFIG);
    let requests = LoomNotifier(Arc::new(Notify::new()));
    let responses = LoomNotifier(Arc::new(Notify::new()));
    let front = Front::new(mem.clone(), CONFIG, requests.clone(), responses.clone()).unwrap();
    let back = Back::new(mem, CONFIG, responses, requests).unwrap();
    (front, back)
}

/// Runs `f` under loom and reports how many executions it explored (see with --nocapture).
fn check(name: &str, f: impl Fn() + Sync + Send + 'static) {
    let mut builder = loom::model::Builder::new();
    if builder.preemption_bound.is_none() {
        builder.preemption_bound = Some(3);
    }
    let runs = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counter = runs.clone();
    let start = std::time::Instant::now();
    builder.check(move || {
        counter.fetch_add(1, Ordering::Relaxed);
        f();
    });
    println!(
        "loom: {name}: {} executions, preemption bound {:?}, {:.1?}",
        runs.load(Ordering::Relaxed),
        builder.preemption_bound,
        start.elapsed()
    );
}

fn payload(seq: u32) -> Vec<u8> {
    vec![seq as u8 + 1; seq as usize + 1]
}

fn reply(req: &Request) -> (u32, Vec<u8>) {
    let mut out = req.payload.clone();
    out.push(0xee);
    (req.opcode + 100, out)
}

/// Serves `count` requests in arrival order, answering each as it comes, and pushing
/// responses only when it runs out of requests (inside `wait_for_requests`) or at the end.
fn serve_in_order(mut back: Back, count: u32) {
    let mut served = 0;
    while served < count {
        match back.next_request().unwrap() {
            Some(req) => {
                let (status, payload) = reply(&req);
                back.respond(req.id, status, &payload).unwrap();
                served += 1;
            }
            None => back.wait_for_requests(None).unwrap(),
        }
    }
    back.push_responses().unwrap();
}

/// Three requests through a two-slot ring: the third must wait for a response (back-pressure)
/// and reuses a ring slot and an id, while the back end sleeps and wakes in between.
#[test]
fn back_pressure_and_slot_reuse() {
    check("back_pressure_and_slot_reuse", || {
        let (mut front, back) = pair();
        let server = loom::thread::spawn(move || serve_in_order(back, 3));
        let mut sent: Vec<(RequestId, u32)> = Vec::new();
        let mut got: Vec<(RequestId, u32, Vec<u8>)> = Vec::new();
        let mut seq = 0;
        while seq < 3 {
            match front.submit(seq, &payload(seq)) {
                Ok(id) => {
                    sent.push((id, seq));
                    seq += 1;
                }
                Err(Error::Full(_)) => {
                    front
                        .wait_responses(None, |id, st, p| got.push((id, st, p.to_vec())))
                        .unwrap();
                }
                Err(e) => panic!("{e}"),
            }
        }
        while got.len() < 3 {
            front
                .wait_responses(None, |id, st, p| got.push((id, st, p.to_vec())))
                .unwrap();
        }
        server.join().unwrap();
        // Responses come in request order here; each must match the request its id named
        // when it was sent (ids are reused, so match them up in order).
        assert_eq!(got.len(), 3);
        for ((id, seq), (got_id, status, data)) in sent.iter().zip(&got) {
            let mut want = payload(*seq);
            want.push(0xee);
            assert_eq!((id, seq + 100, &want), (got_id, *status, data));
        }
        assert_eq!(front.outstanding(), 0);
    });
}

/// Two requests pushed separately (so the second push races with the back end going to
/// sleep), answered in reverse order with a push each (so the second response races with
/// the front end going to sleep).
#[test]
fn out_of_order_responses_and_racing_pushes() {
    check("out_of_order_responses_and_racing_pushes", || {
        let (mut front, mut back) = pair();
        let server = loom::thread::spawn(move || {
            let mut held = Vec::new();
            while held.len() < 2 {
                match back.next_request().unwrap() {
                    Some(req) => held.push(req),
                    None => back.wait_for_requests(None).unwrap(),
                }
            }
            for req in held.iter().rev() {
                let (status, payload) = reply(req);
                back.respond(req.id, status, &payload).unwrap();
                back.push_responses().unwrap();
            }
        });
        let a = front.submit(0, &payload(0)).unwrap();
        front.push().unwrap();
        let b = front.submit(1, &payload(1)).unwrap();
        front.push().unwrap();
        let mut got = Vec::new();
        while got.len() < 2 {
            front
                .wait_responses(None, |id, st, p| got.push((id, st, p.to_vec())))
                .unwrap();
        }
        server.join().unwrap();
        let (mut pa, mut pb) = (payload(0), payload(1));
        pa.push(0xee);
        pb.push(0xee);
        assert_eq!(got, vec![(b, 101, pb), (a, 100, pa)]);
    });
}
