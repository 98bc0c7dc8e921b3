//! The gofer ring on its own: a front end and an echoing back end on two threads of this
//! process, over a real shared-memory ring with eventfd notification.

use std::time::{Duration, Instant};

use gofer::ring::{RingConfig, ShmBackEnd, ShmFrontEnd};

const CONFIG: RingConfig = RingConfig {
    slots: 64,
    data_slot_size: 4096,
};
const TIMEOUT: Option<Duration> = Some(Duration::from_secs(10));

/// Nanoseconds per request for `rounds` rounds of `batch` requests (64 bytes each) that are
/// submitted, pushed with one notification, and all answered before the next round.
fn run(batch: usize, rounds: usize) -> Result<f64, gofer::ring::Error> {
    let (mut front, fds) = ShmFrontEnd::create(CONFIG)?;
    let mut back = ShmBackEnd::attach(CONFIG, fds)?;
    let total = batch * rounds;
    let server = std::thread::spawn(move || -> Result<(), gofer::ring::Error> {
        let mut served = 0;
        while served < total {
            while let Some(request) = back.next_request()? {
                back.respond(request.id, 0, &request.payload)?;
                served += 1;
            }
            back.push_responses()?;
            if served < total && !back.final_check_for_requests()? {
                back.wait_for_requests(TIMEOUT)?;
            }
        }
        Ok(())
    });
    let payload = [7u8; 64];
    let start = Instant::now();
    for _ in 0..rounds {
        for _ in 0..batch {
            front.submit(1, &payload)?;
        }
        let mut answered = 0;
        while answered < batch {
            answered += front.wait_responses(TIMEOUT, |_, _, _| {})?;
        }
    }
    let elapsed = start.elapsed();
    server
        .join()
        .map_err(|_| gofer::ring::Error::Config("the echo thread panicked".into()))??;
    Ok(elapsed.as_nanos() as f64 / total as f64)
}

/// The ring section of the report: round trip (batch 1) and batched cost (batch 64).
pub fn report(reps: usize) -> String {
    let mut out = String::from(
        "\n## gofer ring (two threads of one process, eventfd notification)\n\n\
         | variant | ns/request |\n|---|---:|\n",
    );
    for (name, batch, rounds) in [
        ("round trip, 1 request per notification", 1, 20_000),
        ("64 requests per notification", 64, 2_000),
    ] {
        let mut samples: Vec<f64> = (0..reps).filter_map(|_| run(batch, rounds).ok()).collect();
        if samples.is_empty() {
            out.push_str(&format!("| {name} | failed |\n"));
            continue;
        }
        samples.sort_by(f64::total_cmp);
        out.push_str(&format!("| {name} | {:.0} |\n", samples[samples.len() / 2]));
    }
    out.push_str(
        "\nUnpinned threads: a round trip that wakes a sleeping thread on the other CPU costs \
         tens of microseconds on these machines (platform-limits.md §7); batching spreads one \
         wake-up over many requests.\n",
    );
    out
}
