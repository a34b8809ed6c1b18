//! asyncio's event loop as a place where time passes: one thread, so one
//! step of Python runs at a time, and each costs what the real interpreter
//! takes ([`super::cost`]).
//!
//! The rest of the model runs in no virtual time between two awaits. Here
//! the process has a CPU ledger, `busy_until`, kept to the nanosecond:
//!
//! * [`charge`] — a step of Python code that takes time. Its cost is drawn
//!   from the run's `server-cost/<incarnation>` stream within the step's
//!   calibrated bounds, multiplied by the host's load (a `slow` fault), and
//!   queued behind whatever the loop is already busy with; the task resumes
//!   when its step is done, and only then does what the step does. Other
//!   tasks' steps wait their turn — the loop runs one at a time.
//! * [`settle`] — something from outside the loop (bytes or a close from the
//!   network, a connection) is handled only once the step running now, and
//!   those already queued, are done: asyncio runs a callback when the
//!   current step yields.
//! * [`sleep`] — an asyncio timer: it fires late by the selector's
//!   rounding (epoll waits in whole milliseconds, rounded up: a timer wakes
//!   up to 1 ms after its time), and then waits for the loop like any
//!   callback.
//!
//! **Time below the tick.** Virtual time moves in ticks of 1 ms (tokio's
//! timer counts whole milliseconds; a finer turmoil tick broke virtual time,
//! FINDINGS §11), while most steps cost tens or hundreds of microseconds. The
//! ledger keeps the exact sum, so work never gets lost or inflated by
//! rounding: a step that ends inside the current tick lets its task go on in
//! that tick, and the next step starts where the ledger says, not at the
//! tick. Where a task must wait for a later tick, the end of its work is
//! rounded to a tick boundary *stochastically*, up with a probability equal
//! to how far into the tick it ends (a draw from the same stream): an end at
//! 2.3 ticks wakes the task at tick 3 three times in ten and at tick 2
//! seven times in ten, so on average every step takes exactly its cost and
//! no systematic early or late bias builds up across a request's steps.
//!
//! **Which loop.** Python finds its running loop implicitly
//! (`asyncio.get_running_loop()`); so does the model: a process runs inside
//! [`EventLoop::run`], and every task the model starts through [`spawn`]
//! inherits its loop. Outside any loop (unit tests of the anyio model)
//! nothing costs time. With `cost = "zero"` nothing costs time either, no
//! draw is made and no await added: the model runs exactly as it did before
//! it had costs.

use std::cell::{Cell, RefCell};
use std::collections::{BTreeMap, BTreeSet};
use std::future::Future;
use std::rc::Rc;
use std::time::Duration;

use rand::RngExt;
use rand_chacha::ChaCha8Rng;
use tokio::task::JoinHandle;
use tokio::time::Instant;

use super::cost::{self, Step};
use super::release::Release;
use crate::servers::{CostMode, Load, Processing};

tokio::task_local! {
    static RUNNING: Rc<EventLoop>;
}

/// One process's event loop: its CPU ledger and its draws.
pub struct EventLoop {
    release: Release,
    mode: CostMode,
    rng: RefCell<ChaCha8Rng>,
    tick: Duration,
    load: Load,
    /// When the loop is done with every step queued so far (`None`: it has
    /// never been busy).
    busy_until: Cell<Option<Instant>>,
    /// A task resumed in this tick (the first field) from work that really
    /// ended earlier (the second): its end was rounded up to the tick. Until
    /// the tick is over, the loop goes on from there, not from the tick, so
    /// a chain of steps loses nothing to rounding.
    resumed: Cell<Option<(Instant, Instant)>>,
    /// The rounding threshold of each tick interval (by its start) still
    /// ahead: an end in that interval further into it than the threshold
    /// rounds up. One draw per interval, so that rounding keeps order: a
    /// step that ends earlier never wakes its task later than one that ends
    /// after it.
    thresholds: RefCell<BTreeMap<Instant, u64>>,
    /// Tasks asleep until a tick that their work, rounded up, ended before:
    /// by the tick they wake at. Their steps were done before that tick
    /// began, so they go before anything that arrives at it.
    rounded_up: RefCell<BTreeMap<Instant, u32>>,
    /// Steps that have run once in this process: the first of each kind
    /// pays its cold cost (imports, pydantic building its validators).
    warm: RefCell<BTreeSet<Step>>,
}

impl EventLoop {
    /// The loop of a process of `release`.
    pub fn new(release: Release, processing: Processing) -> Rc<Self> {
        Rc::new(Self {
            release,
            mode: processing.mode,
            rng: RefCell::new(processing.rng),
            tick: processing.tick.max(Duration::from_nanos(1)),
            load: processing.load,
            busy_until: Cell::new(None),
            resumed: Cell::new(None),
            thresholds: RefCell::new(BTreeMap::new()),
            rounded_up: RefCell::new(BTreeMap::new()),
            warm: RefCell::new(BTreeSet::new()),
        })
    }

    /// Run `fut` (a process's main) on this loop.
    pub async fn run<F: Future>(self: Rc<Self>, fut: F) -> F::Output {
        RUNNING.scope(self, fut).await
    }

    fn costs(&self) -> bool {
        self.mode == CostMode::Calibrated
    }

    /// A draw in `[lo, hi]` nanoseconds.
    fn draw(&self, lo: Duration, hi: Duration) -> Duration {
        if hi <= lo {
            return lo;
        }
        let ns = self
            .rng
            .borrow_mut()
            .random_range(lo.as_nanos() as u64..=hi.as_nanos() as u64);
        Duration::from_nanos(ns)
    }

    /// Charge `step`; returns its cost.
    async fn charge(&self, step: Step) -> Duration {
        if !self.costs() {
            return Duration::ZERO;
        }
        let b = cost::bounds(self.release, step);
        let mut c = self.draw(b.lo, b.hi);
        if let Some((lo, hi)) = b.cold
            && self.warm.borrow_mut().insert(step)
        {
            c += self.draw(lo, hi);
        }
        let now = Instant::now();
        let from = match self.resumed.get() {
            Some((tick, exact)) if tick == now => exact,
            _ => now,
        };
        let c = self.load.factor().apply(c);
        let start = self.busy_until.get().map_or(from, |b| b.max(from));
        let end = start + c;
        self.busy_until.set(Some(end));
        self.wait_until(end).await;
        c
    }

    async fn settle(&self) {
        // Something arrived at this tick, from outside. It is handled after
        // the step running now, and after every step of work that really
        // ended before this tick began: the tasks woken at this tick by
        // rounding, and the chain of steps they set off while its ledger
        // stays short of the tick (each turn lets the ready tasks take one
        // step; bounded, for a chain that never ends).
        let mut last = None;
        for _ in 0..256 {
            let now = Instant::now();
            let busy = self.busy_until.get();
            if let Some(end) = busy
                && end > now
            {
                self.wait_until(end).await;
                last = None;
                continue;
            }
            let woken = self.rounded_up.borrow().range(..=now).any(|(_, n)| *n > 0);
            let chain = matches!(self.resumed.get(), Some((tick, _)) if tick == now)
                && (last.is_none() || last != Some(busy));
            if !woken && !chain {
                break;
            }
            last = Some(busy);
            tokio::task::yield_now().await;
        }
    }

    async fn sleep(&self, d: Duration) {
        tokio::time::sleep(d).await;
        if !self.costs() {
            return;
        }
        let b = cost::bounds(self.release, Step::TimerLate);
        let late = self.draw(b.lo, b.hi);
        self.wait_until(Instant::now() + late).await;
        self.settle().await;
    }

    /// Wait until `end`, rounded stochastically to a tick boundary (see the
    /// module docs).
    async fn wait_until(&self, end: Instant) {
        let now = Instant::now();
        if end <= now {
            return;
        }
        let ahead = (end - now).as_nanos();
        let tick = self.tick.as_nanos();
        let mut ticks = ahead / tick;
        let rem = ahead % tick;
        let mut up = false;
        if rem > 0 {
            let floor = now + Duration::from_nanos(u64::try_from(ticks * tick).unwrap_or(u64::MAX));
            let theta = {
                let mut th = self.thresholds.borrow_mut();
                // Intervals that have begun are decided for good.
                while th.first_key_value().is_some_and(|(at, _)| *at < now) {
                    th.pop_first();
                }
                *th.entry(floor)
                    .or_insert_with(|| self.rng.borrow_mut().random_range(0..tick as u64))
            };
            if rem > u128::from(theta) {
                ticks += 1;
                up = true;
            }
        }
        if ticks > 0 {
            let wait = Duration::from_nanos(u64::try_from(ticks * tick).unwrap_or(u64::MAX));
            let _mark = up.then(|| RoundedUp::mark(&self.rounded_up, now + wait));
            tokio::time::sleep(wait).await;
        }
        let woke = Instant::now();
        if woke > end {
            let exact = match self.resumed.get() {
                Some((t, e)) if t == woke => e.max(end),
                _ => end,
            };
            self.resumed.set(Some((woke, exact)));
        }
    }
}

/// A task asleep until a tick its work ended before (see
/// `EventLoop::rounded_up`); unmarked when it wakes, or is dropped.
struct RoundedUp<'a> {
    map: &'a RefCell<BTreeMap<Instant, u32>>,
    at: Instant,
}

impl<'a> RoundedUp<'a> {
    fn mark(map: &'a RefCell<BTreeMap<Instant, u32>>, at: Instant) -> Self {
        *map.borrow_mut().entry(at).or_insert(0) += 1;
        RoundedUp { map, at }
    }
}

impl Drop for RoundedUp<'_> {
    fn drop(&mut self) {
        let mut m = self.map.borrow_mut();
        if let Some(n) = m.get_mut(&self.at) {
            *n -= 1;
            if *n == 0 {
                m.remove(&self.at);
            }
        }
    }
}

fn running() -> Option<Rc<EventLoop>> {
    RUNNING.try_with(Rc::clone).ok()
}

/// A step of Python that takes time (see the module docs): wait until the
/// loop has done it. Nothing outside a loop, or with `cost = "zero"`.
pub async fn charge(step: Step) {
    if let Some(l) = running() {
        l.charge(step).await;
    }
}

/// Wait for the loop before handling something that came from outside it.
pub async fn settle() {
    if let Some(l) = running() {
        l.settle().await;
    }
}

/// `await asyncio.sleep(d)` as the loop's timers give it (see the module
/// docs): a plain sleep outside a loop or with `cost = "zero"`.
pub async fn sleep(d: Duration) {
    match running() {
        Some(l) => l.sleep(d).await,
        None => tokio::time::sleep(d).await,
    }
}

/// `await asyncio.sleep(...)` until `at`.
pub async fn sleep_until(at: Instant) {
    sleep(at.saturating_duration_since(Instant::now())).await;
}

/// `loop.create_task(...)`: a task of the running loop (it inherits the
/// loop, as every Python task runs on the loop that made it), with its
/// panics reported ([`crate::task::spawn`]).
pub fn spawn<F>(name: &'static str, fut: F) -> JoinHandle<Option<F::Output>>
where
    F: Future + 'static,
    F::Output: 'static,
{
    match running() {
        Some(l) => crate::task::spawn(
            name,
            RUNNING.scope(l, async move {
                // A new task first runs when the loop gets to it.
                settle().await;
                fut.await
            }),
        ),
        None => crate::task::spawn(name, fut),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::Seeds;

    fn lp(mode: CostMode, tick_ms: u64) -> Rc<EventLoop> {
        EventLoop::new(
            Release::V1_20,
            Processing {
                mode,
                rng: Seeds::new(1).stream("server-cost/0"),
                tick: Duration::from_millis(tick_ms),
                load: Load::default(),
            },
        )
    }

    /// The ledger keeps the exact sum: many sub-tick steps in a row take
    /// their total cost in virtual time, give or take a tick, rounding lost
    /// and added nothing.
    #[test]
    fn sub_tick_costs_add_up_exactly() {
        crate::servers::python_sdk::anyio::block_on(async {
            let l = lp(CostMode::Calibrated, 1);
            let t0 = Instant::now();
            let mut sum = Duration::ZERO;
            for _ in 0..2000 {
                sum += l.charge(Step::RouteMessage).await;
            }
            let elapsed = Instant::now() - t0;
            assert_eq!(l.busy_until.get(), Some(t0 + sum), "the ledger has gaps");
            assert!(
                elapsed.abs_diff(sum) <= Duration::from_millis(1),
                "virtual time {elapsed:?} strays from the work done {sum:?}"
            );
        });
    }

    /// Zero cost: no virtual time, no draw.
    #[test]
    fn zero_cost_takes_no_time() {
        crate::servers::python_sdk::anyio::block_on(async {
            let l = lp(CostMode::Zero, 1);
            let t0 = Instant::now();
            l.clone()
                .run(async {
                    for _ in 0..100 {
                        charge(Step::NewSession).await;
                        settle().await;
                    }
                })
                .await;
            assert_eq!(Instant::now(), t0);
        });
    }

    /// Two tasks' steps do not overlap: the second waits for the first.
    #[test]
    fn steps_run_one_at_a_time() {
        crate::servers::python_sdk::anyio::block_on(async {
            let l = lp(CostMode::Calibrated, 1);
            let t0 = Instant::now();
            l.clone()
                .run(async {
                    let a = spawn("a", async {
                        for _ in 0..50 {
                            charge(Step::NewSession).await;
                        }
                    });
                    let b = spawn("b", async {
                        for _ in 0..50 {
                            charge(Step::NewSession).await;
                        }
                    });
                    let _ = a.await;
                    let _ = b.await;
                })
                .await;
            let b = cost::bounds(Release::V1_20, Step::NewSession);
            let least = b.lo * 100;
            assert!(
                Instant::now() - t0 + Duration::from_millis(1) >= least,
                "100 steps of at least {:?} each took {:?}",
                b.lo,
                Instant::now() - t0
            );
        });
    }
}
