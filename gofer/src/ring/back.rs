//! The back end of a ring: the side that serves requests (the gofer).

use std::time::Duration;

use super::sync::{fence, Ordering};
use super::{
    check_descriptor, crosses_event, deadline, read_descriptor, remaining, write_entry, Error,
    Index, Notifier, RequestId, Result, RingConfig, RingMemory,
};

/// A request taken off the ring. The payload is a private copy, so it can be validated
/// without the front end changing it meanwhile.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Request {
    pub id: RequestId,
    pub opcode: u32,
    pub payload: Vec<u8>,
}

/// The serving side of a ring. Single-threaded (`&mut self`).
pub struct BackEnd<M, N> {
    mem: M,
    config: RingConfig,
    /// Wakes the front end: responses are waiting.
    kick: N,
    /// Woken by the front end: requests are waiting.
    wake: N,
    /// Requests consumed (free-running).
    req_cons: u32,
    /// Responses written (free-running); those past `rsp_prod` are not yet published.
    rsp_prod_pvt: u32,
    /// `rsp_prod` as last published by `push_responses`.
    rsp_prod: u32,
    /// Ids received by `next_request` and not answered yet.
    pending: Vec<bool>,
}

impl<M: RingMemory, N: Notifier> BackEnd<M, N> {
    /// Attaches to a ring that the front end has initialised ([`super::FrontEnd::new`]).
    pub fn new(mem: M, config: RingConfig, kick: N, wake: N) -> Result<Self> {
        config.validate()?;
        Ok(BackEnd {
            mem,
            config,
            kick,
            wake,
            req_cons: 0,
            rsp_prod_pvt: 0,
            rsp_prod: 0,
            pending: vec![false; config.slots as usize],
        })
    }

    pub fn config(&self) -> RingConfig {
        self.config
    }

    /// The notifier the front end kicks when requests are ready; poll it to wait elsewhere
    /// (after [`BackEnd::final_check_for_requests`] returned false).
    pub fn wake_notifier(&self) -> &N {
        &self.wake
    }

    /// Takes the next request off the ring, or `None` if there is none.
    ///
    /// A malformed request (bad id, an id already in flight, a payload outside its slot) is
    /// consumed and reported as [`Error::Protocol`]; it gets no response.
    pub fn next_request(&mut self) -> Result<Option<Request>> {
        // Acquire: pairs with the front end's Release store of req_prod, so the descriptors and
        // payloads it wrote before are visible.
        let prod = self.mem.load(Index::ReqProd, Ordering::Acquire)?;
        // The front end may have at most `slots` requests unanswered, counting those we have
        // consumed but not answered (Xen's RING_REQUEST_PROD_OVERFLOW and
        // RING_REQUEST_CONS_OVERFLOW). Anything further would lie on slots still ours.
        let unanswered = self.req_cons.wrapping_sub(self.rsp_prod_pvt);
        let available = prod.wrapping_sub(self.req_cons);
        let free = self.config.slots.saturating_sub(unanswered);
        if available > free {
            return Err(Error::Protocol(format!(
                "req_prod {prod} is more than the {free} free slots past req_cons {}",
                self.req_cons
            )));
        }
        if available == 0 {
            return Ok(None);
        }
        let desc = read_descriptor(&self.mem, &self.config, self.req_cons)?;
        self.req_cons = self.req_cons.wrapping_add(1);
        check_descriptor(&self.config, &desc, "request")?;
        if self.pending[desc.id as usize] {
            return Err(Error::Protocol(format!(
                "request id {} reused while still in flight",
                desc.id
            )));
        }
        let mut payload = vec![0; desc.data_len as usize];
        self.mem
            .read(self.config.payload_offset(desc.data_offset), &mut payload)?;
        self.pending[desc.id as usize] = true;
        Ok(Some(Request {
            id: RequestId(desc.id),
            opcode: desc.code,
            payload,
        }))
    }

    /// Queues the response to request `id`, in any order. It reaches the front end at the
    /// next [`BackEnd::push_responses`] (or `wait_for_requests`, which pushes first).
    pub fn respond(&mut self, id: RequestId, status: u32, payload: &[u8]) -> Result<()> {
        if !self.pending.get(id.0 as usize).copied().unwrap_or(false) {
            return Err(Error::NotPending(id.0));
        }
        if payload.len() > self.config.data_slot_size as usize {
            return Err(Error::PayloadTooLarge {
                len: payload.len(),
                max: self.config.data_slot_size as usize,
            });
        }
        // The ring slot at rsp_prod_pvt held a request we have already consumed: every pending
        // id was consumed and is unanswered, so rsp_prod_pvt < req_cons.
        write_entry(
            &self.mem,
            &self.config,
            self.rsp_prod_pvt,
            id.0,
            status,
            payload,
        )?;
        self.pending[id.0 as usize] = false;
        self.rsp_prod_pvt = self.rsp_prod_pvt.wrapping_add(1);
        Ok(())
    }

    /// Publishes the queued responses and notifies the front end if it asked to be woken
    /// (Xen's `RING_PUSH_RESPONSES_AND_CHECK_NOTIFY`). Returns whether it notified.
    pub fn push_responses(&mut self) -> Result<bool> {
        let old = self.rsp_prod;
        let new = self.rsp_prod_pvt;
        if old == new {
            return Ok(false);
        }
        // Release: the front end reads rsp_prod with Acquire, then the descriptors and payloads
        // written before this store.
        self.mem.store(Index::RspProd, new, Ordering::Release)?;
        self.rsp_prod = new;
        // Store-load barrier (Xen's mb()), the other half of the one in the front end's
        // final_check_for_responses: either it sees our rsp_prod, or we see its rsp_event.
        fence(Ordering::SeqCst);
        let event = self.mem.load(Index::RspEvent, Ordering::Relaxed)?;
        let notify = crosses_event(old, new, event);
        if notify {
            self.kick.notify()?;
        }
        Ok(notify)
    }

    /// True if requests are waiting (Xen's `RING_HAS_UNCONSUMED_REQUESTS`).
    fn has_requests(&self) -> Result<bool> {
        Ok(self.mem.load(Index::ReqProd, Ordering::Acquire)? != self.req_cons)
    }

    /// Asks the front end to notify on the next request, then checks once more for requests
    /// (Xen's `RING_FINAL_CHECK_FOR_REQUESTS`). If this returns false, the next request will
    /// be notified on the wake notifier, so it is safe to sleep on it.
    pub fn final_check_for_requests(&mut self) -> Result<bool> {
        if self.has_requests()? {
            return Ok(true);
        }
        self.mem.store(
            Index::ReqEvent,
            self.req_cons.wrapping_add(1),
            Ordering::Relaxed,
        )?;
        // Store-load barrier, the other half of the one in the front end's push: either it sees
        // our new req_event and notifies, or we see its new req_prod here.
        fence(Ordering::SeqCst);
        self.has_requests()
    }

    /// Pushes queued responses, then blocks until a request is waiting (take it with
    /// [`BackEnd::next_request`]). Fails with [`Error::TimedOut`] after `timeout`.
    pub fn wait_for_requests(&mut self, timeout: Option<Duration>) -> Result<()> {
        self.push_responses()?;
        let deadline = deadline(timeout);
        loop {
            if self.final_check_for_requests()? {
                return Ok(());
            }
            let left = remaining(deadline)?;
            self.wake.wait(left)?;
        }
    }
}
