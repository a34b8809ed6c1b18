//! A busy host for a real server: the `slow` fault on `mcpsim drive`'s own
//! server process.
//!
//! In simulation a `slow` fault multiplies every step of the server's
//! processing by a factor. A real process gets the same treatment from its
//! scheduler on a host whose CPU is taken by other work: it runs a share of
//! the time. This does that to the process `drive --server-cmd` started, by
//! duty cycling it with SIGSTOP and SIGCONT — in every period of
//! [`PERIOD`], running `PERIOD / factor` and stopped for the rest — so its
//! work takes `factor` times as long, its timers fire late by up to a
//! period, and bytes wait in the kernel while it is stopped, as on a loaded
//! host. A restart keeps the load (the busy host outlives the process, as in
//! simulation); a factor of 1 ends it and leaves the process running.
//!
//! It runs on a thread of its own: drive's runtime keeps time in whole
//! milliseconds, and a run slice at ×40 is a quarter of one. This is a
//! real-network path; nothing here runs inside a simulation.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::time::Duration;

use crate::servers::Factor;

/// One period of the duty cycle.
pub const PERIOD: Duration = Duration::from_millis(10);

/// The throttle of one server (whatever process it is running now).
pub struct Throttle {
    factor: Arc<AtomicU32>,
    pid: Arc<AtomicU32>,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Default for Throttle {
    fn default() -> Self {
        Self::new()
    }
}

impl Throttle {
    /// No load yet.
    pub fn new() -> Self {
        Self {
            factor: Arc::new(AtomicU32::new(Factor::ONE.0)),
            pid: Arc::new(AtomicU32::new(0)),
            stop: Arc::new(AtomicBool::new(false)),
            thread: None,
        }
    }

    /// The process to throttle now (0: none).
    pub fn set_pid(&self, pid: u32) {
        self.pid.store(pid, Ordering::SeqCst);
    }

    /// Slow the process by `factor` (×1: full speed again).
    pub fn set_factor(&mut self, factor: Factor) {
        self.factor.store(factor.0, Ordering::SeqCst);
        if factor > Factor::ONE && self.thread.is_none() {
            let (f, p, s) = (self.factor.clone(), self.pid.clone(), self.stop.clone());
            self.thread = Some(std::thread::spawn(move || cycle(&f, &p, &s)));
        }
    }

    /// Let the process run (before a signal it must act on, or its end).
    pub fn resume_now(&self) {
        signal(self.pid.load(Ordering::SeqCst), Sig::Cont);
    }
}

impl Drop for Throttle {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        self.resume_now();
    }
}

fn cycle(factor: &AtomicU32, pid: &AtomicU32, stop: &AtomicBool) {
    while !stop.load(Ordering::SeqCst) {
        let f = Factor(factor.load(Ordering::SeqCst));
        let p = pid.load(Ordering::SeqCst);
        if f <= Factor::ONE || p == 0 {
            signal(p, Sig::Cont);
            std::thread::sleep(PERIOD);
            continue;
        }
        let run = PERIOD.mul_f64(100.0 / f64::from(f.0));
        signal(p, Sig::Cont);
        std::thread::sleep(run);
        signal(p, Sig::Stop);
        std::thread::sleep(PERIOD.saturating_sub(run));
    }
    signal(pid.load(Ordering::SeqCst), Sig::Cont);
}

#[derive(Clone, Copy)]
enum Sig {
    Stop,
    Cont,
}

fn signal(pid: u32, sig: Sig) {
    if pid == 0 {
        return;
    }
    #[cfg(unix)]
    {
        let s = match sig {
            Sig::Stop => libc::SIGSTOP,
            Sig::Cont => libc::SIGCONT,
        };
        if let Ok(pid) = libc::pid_t::try_from(pid) {
            // SAFETY: kill(2) with a pid this drive started and a standard
            // signal; a pid that is gone makes it fail with ESRCH, ignored.
            unsafe {
                libc::kill(pid, s);
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = sig;
    }
}
