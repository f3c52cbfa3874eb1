// SPDX-License-Identifier: GPL-2.0

//! Where a destination says why it refused a stream: the device's log, at a
//! bounded rate.
//!
//! Every refusal is user space's doing (any process that may open the
//! device can write streams), so the lines it logs are rate limited per
//! device: at most [`BURST`] in each [`WINDOW_MS`] window, and a line
//! saying how many were left out when the next window opens. A session
//! logs at most one refusal: the first ends it (see
//! [`super::receiver::Receiver`]).

use kernel::{
    device::Device as KDevice,
    new_mutex,
    prelude::*,
    sync::Mutex,
    time::{Instant, Monotonic},
};

/// Refusals logged per window.
pub const BURST: u32 = 10;
/// The window's length.
pub const WINDOW_MS: i64 = 5000;

/// The rate limit's window.
struct Window {
    start: Option<Instant<Monotonic>>,
    logged: u32,
    left_out: u32,
}

/// A device's refusal rate limit.
#[pin_data]
pub struct RefusalRate {
    #[pin]
    window: Mutex<Window>,
}

impl RefusalRate {
    /// No refusal logged yet.
    pub fn new() -> impl PinInit<Self> {
        pin_init!(Self {
            window <- new_mutex!(Window {
                start: None,
                logged: 0,
                left_out: 0,
            }),
        })
    }

    /// Whether one more line may be logged now; the count of lines left out
    /// in the window that just closed, if any.
    fn admit(&self) -> (bool, u32) {
        let mut w = self.window.lock();
        let mut closed = 0;
        let expired = w.start.is_none_or(|s| s.elapsed().as_millis() >= WINDOW_MS);
        if expired {
            closed = w.left_out;
            *w = Window {
                start: Some(Instant::now()),
                logged: 0,
                left_out: 0,
            };
        }
        if w.logged < BURST {
            w.logged += 1;
            (true, closed)
        } else {
            w.left_out = w.left_out.saturating_add(1);
            (false, closed)
        }
    }
}

/// Where one device's refusals are said.
#[derive(Clone, Copy)]
pub struct RefusalLog<'a> {
    dev: &'a KDevice,
    rate: &'a RefusalRate,
}

impl<'a> RefusalLog<'a> {
    /// Refusals logged on `dev` within `rate`.
    pub fn new(dev: &'a KDevice, rate: &'a RefusalRate) -> Self {
        Self { dev, rate }
    }

    /// Logs "migration: stream refused: `why`" (if the rate allows) and
    /// returns `err`.
    pub fn refuse(&self, err: Error, why: core::fmt::Arguments<'_>) -> Error {
        let (log, left_out) = self.rate.admit();
        if left_out > 0 {
            dev_err!(
                self.dev,
                "migration: {} more stream refusals were not logged\n",
                left_out
            );
        }
        if log {
            dev_err!(self.dev, "migration: stream refused: {}\n", why);
        }
        err
    }
}
