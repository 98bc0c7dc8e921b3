//! The front end of a ring: the side that sends requests (the Sentry).

use std::time::Duration;

use super::sync::{fence, Ordering};
use super::{
    check_descriptor, crosses_event, deadline, read_descriptor, remaining, write_entry, Error,
    Index, Notifier, RequestId, Result, RingConfig, RingMemory,
};

/// A response taken off the ring by [`FrontEnd::call`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Response {
    pub status: u32,
    pub payload: Vec<u8>,
}

/// The requesting side of a ring. Single-threaded (`&mut self`): a client shared by many
/// threads wraps it in a lock and routes responses by [`RequestId`].
pub struct FrontEnd<M, N> {
    mem: M,
    config: RingConfig,
    /// Wakes the back end: requests are waiting.
    kick: N,
    /// Woken by the back end: responses are waiting.
    wake: N,
    /// Requests written (free-running); those past `req_prod` are not yet published.
    req_prod_pvt: u32,
    /// `req_prod` as last published by `push`.
    req_prod: u32,
    /// Responses consumed (free-running).
    rsp_cons: u32,
    /// Ids not in flight. An id, its data slot and one ring slot are owned by the back end
    /// from `submit` until its response is consumed.
    free_ids: Vec<u32>,
    in_flight: Vec<bool>,
    /// Private copy of a response payload, so that the back end cannot change it under the
    /// caller's feet.
    scratch: Vec<u8>,
}

impl<M: RingMemory, N: Notifier> FrontEnd<M, N> {
    /// Takes over a fresh ring in `mem` and initialises its shared indexes. The back end must
    /// attach only after this (it starts from the same zero indexes).
    pub fn new(mem: M, config: RingConfig, kick: N, wake: N) -> Result<Self> {
        config.validate()?;
        mem.store(Index::ReqProd, 0, Ordering::Relaxed)?;
        mem.store(Index::RspProd, 0, Ordering::Relaxed)?;
        // As Xen's SHARED_RING_INIT: each side wants to hear about the first entry.
        mem.store(Index::ReqEvent, 1, Ordering::Relaxed)?;
        mem.store(Index::RspEvent, 1, Ordering::Relaxed)?;
        Ok(FrontEnd {
            mem,
            config,
            kick,
            wake,
            req_prod_pvt: 0,
            req_prod: 0,
            rsp_cons: 0,
            // Popped from the end: hand out id 0 first.
            free_ids: (0..config.slots).rev().collect(),
            in_flight: vec![false; config.slots as usize],
            scratch: vec![0; config.data_slot_size as usize],
        })
    }

    pub fn config(&self) -> RingConfig {
        self.config
    }

    /// The notifier the back end kicks when responses are ready; poll it to wait elsewhere
    /// (after [`FrontEnd::final_check_for_responses`] returned false).
    pub fn wake_notifier(&self) -> &N {
        &self.wake
    }

    /// Requests submitted whose responses have not been consumed yet.
    pub fn outstanding(&self) -> u32 {
        self.req_prod_pvt.wrapping_sub(self.rsp_cons)
    }

    /// Queues a request. It reaches the back end at the next [`FrontEnd::push`] (or
    /// `wait_responses`/`call`, which push first). Fails with [`Error::Full`] when
    /// `slots` requests are in flight: consume responses to make room.
    pub fn submit(&mut self, opcode: u32, payload: &[u8]) -> Result<RequestId> {
        if payload.len() > self.config.data_slot_size as usize {
            return Err(Error::PayloadTooLarge {
                len: payload.len(),
                max: self.config.data_slot_size as usize,
            });
        }
        // The ring slot at req_prod_pvt is free once the response that last used it has been
        // consumed, i.e. when fewer than `slots` requests are outstanding.
        let id = match self.free_ids.last() {
            Some(&id) if self.outstanding() < self.config.slots => id,
            _ => return Err(Error::Full(self.config.slots)),
        };
        write_entry(
            &self.mem,
            &self.config,
            self.req_prod_pvt,
            id,
            opcode,
            payload,
        )?;
        self.free_ids.pop();
        self.in_flight[id as usize] = true;
        self.req_prod_pvt = self.req_prod_pvt.wrapping_add(1);
        Ok(RequestId(id))
    }

    /// Publishes the submitted requests and notifies the back end if it asked to be woken
    /// (Xen's `RING_PUSH_REQUESTS_AND_CHECK_NOTIFY`). Returns whether it notified.
    pub fn push(&mut self) -> Result<bool> {
        let old = self.req_prod;
        let new = self.req_prod_pvt;
        if old == new {
            return Ok(false);
        }
        // Release: the back end reads req_prod with Acquire, then the descriptors and payloads
        // written before this store.
        self.mem.store(Index::ReqProd, new, Ordering::Release)?;
        self.req_prod = new;
        // Store-load barrier (Xen's mb()). The back end, going to sleep, stores req_event, fences
        // and re-reads req_prod. Without a full fence on both sides our read of req_event could
        // be satisfied before our req_prod store is visible, each side would miss the other's
        // store, and the back end would sleep on requests that nobody announces.
        fence(Ordering::SeqCst);
        let event = self.mem.load(Index::ReqEvent, Ordering::Relaxed)?;
        let notify = crosses_event(old, new, event);
        if notify {
            self.kick.notify()?;
        }
        Ok(notify)
    }

    /// True if responses are waiting (Xen's `RING_HAS_UNCONSUMED_RESPONSES`).
    fn has_responses(&self) -> Result<bool> {
        Ok(self.mem.load(Index::RspProd, Ordering::Acquire)? != self.rsp_cons)
    }

    /// Asks the back end to notify on the next response, then checks once more for responses
    /// (Xen's `RING_FINAL_CHECK_FOR_RESPONSES`). If this returns false, the next response
    /// will be notified on the wake notifier, so it is safe to sleep on it.
    pub fn final_check_for_responses(&mut self) -> Result<bool> {
        if self.has_responses()? {
            return Ok(true);
        }
        self.mem.store(
            Index::RspEvent,
            self.rsp_cons.wrapping_add(1),
            Ordering::Relaxed,
        )?;
        // Store-load barrier, the other half of the one in the back end's push: either it sees
        // our new rsp_event and notifies, or we see its new rsp_prod here.
        fence(Ordering::SeqCst);
        self.has_responses()
    }

    /// Consumes every response on the ring without blocking, calling `f(id, status, payload)`
    /// for each. The id is free for reuse once `f` is called. Returns how many were consumed.
    pub fn poll_responses(&mut self, mut f: impl FnMut(RequestId, u32, &[u8])) -> Result<usize> {
        // Acquire: pairs with the back end's Release store of rsp_prod, so the descriptors and
        // payloads it wrote before are visible.
        let prod = self.mem.load(Index::RspProd, Ordering::Acquire)?;
        // The back end can answer only published requests.
        let awaiting = self.req_prod.wrapping_sub(self.rsp_cons);
        if prod.wrapping_sub(self.rsp_cons) > awaiting {
            return Err(Error::Protocol(format!(
                "rsp_prod {prod} is more than the {awaiting} published requests past rsp_cons {}",
                self.rsp_cons
            )));
        }
        let mut consumed = 0;
        while self.rsp_cons != prod {
            let desc = read_descriptor(&self.mem, &self.config, self.rsp_cons)?;
            // The ring slot is ours again whatever the descriptor says.
            self.rsp_cons = self.rsp_cons.wrapping_add(1);
            check_descriptor(&self.config, &desc, "response for request")?;
            if !self.in_flight[desc.id as usize] {
                return Err(Error::Protocol(format!(
                    "response for request {}, which is not in flight",
                    desc.id
                )));
            }
            let payload = &mut self.scratch[..desc.data_len as usize];
            self.mem
                .read(self.config.payload_offset(desc.data_offset), payload)?;
            self.in_flight[desc.id as usize] = false;
            self.free_ids.push(desc.id);
            f(RequestId(desc.id), desc.code, payload);
            consumed += 1;
        }
        Ok(consumed)
    }

    /// Pushes submitted requests, then blocks until at least one response has arrived and
    /// consumes all that have, as [`FrontEnd::poll_responses`]. Returns 0 at once when nothing
    /// is in flight; fails with [`Error::TimedOut`] after `timeout`.
    pub fn wait_responses(
        &mut self,
        timeout: Option<Duration>,
        mut f: impl FnMut(RequestId, u32, &[u8]),
    ) -> Result<usize> {
        self.push()?;
        if self.outstanding() == 0 {
            return Ok(0);
        }
        let deadline = deadline(timeout);
        loop {
            let consumed = self.poll_responses(&mut f)?;
            if consumed > 0 {
                return Ok(consumed);
            }
            if self.final_check_for_responses()? {
                continue;
            }
            let left = remaining(deadline)?;
            self.wake.wait(left)?;
        }
    }

    /// Sends one request and waits for its response: for a ring with nothing else in flight
    /// ([`Error::Busy`] otherwise). After [`Error::TimedOut`] the request stays in flight, and
    /// its response must be consumed with `poll_responses` or `wait_responses`.
    pub fn call(
        &mut self,
        opcode: u32,
        payload: &[u8],
        timeout: Option<Duration>,
    ) -> Result<Response> {
        if self.outstanding() != 0 {
            return Err(Error::Busy(self.outstanding()));
        }
        let id = self.submit(opcode, payload)?;
        let mut response = None;
        // With one request in flight, the first response is its response (poll_responses
        // rejects any other id).
        self.wait_responses(timeout, |got, status, payload| {
            if got == id {
                response = Some(Response {
                    status,
                    payload: payload.to_vec(),
                });
            }
        })?;
        response.ok_or_else(|| Error::Protocol(format!("no response to request {id}")))
    }
}
