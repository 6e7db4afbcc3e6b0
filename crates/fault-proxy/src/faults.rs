//! Which requests fail, and the counts the proxy reports.

use std::sync::Mutex;
use std::time::Instant;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde::Serialize;

/// What the proxy does with one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Forward,
    /// Answer 503 SlowDown without asking the upstream server.
    Error,
    /// Close the connection without an answer.
    Drop,
}

/// The shares of requests answered with an error and dropped.
#[derive(Debug, Clone, Copy)]
pub struct FaultRates {
    error: f64,
    drop: f64,
}

impl FaultRates {
    /// Rates between 0 and 1 whose sum is at most 1.
    pub fn new(error: f64, drop: f64) -> anyhow::Result<Self> {
        let share = 0.0..=1.0;
        anyhow::ensure!(
            share.contains(&error) && share.contains(&drop) && share.contains(&(error + drop)),
            "--error-rate and --drop-rate must be between 0 and 1, and together at most 1"
        );
        Ok(Self { error, drop })
    }
}

/// What `GET /_proxy/stats` answers.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Stats {
    /// Requests received, stats requests aside.
    pub requests: u64,
    pub forwarded: u64,
    pub errors_injected: u64,
    pub connections_dropped: u64,
    /// The most requests in flight at once.
    pub peak_in_flight: u64,
    /// Requests in flight on average over the time any was: with a fixed
    /// latency, a client that keeps N requests going shows a mean near N.
    pub mean_in_flight: f64,
}

/// The seeded draws and the counts, shared by every connection.
pub struct Faults {
    rates: FaultRates,
    state: Mutex<State>,
}

struct State {
    random: StdRng,
    stats: Stats,
    in_flight: u64,
    /// The integral of requests in flight over time, and the time any was.
    in_flight_seconds: f64,
    busy_seconds: f64,
    last_change: Instant,
}

impl Faults {
    pub fn new(rates: FaultRates, seed: u64) -> Self {
        Self {
            rates,
            state: Mutex::new(State {
                random: StdRng::seed_from_u64(seed),
                stats: Stats::default(),
                in_flight: 0,
                in_flight_seconds: 0.0,
                busy_seconds: 0.0,
                last_change: Instant::now(),
            }),
        }
    }

    /// Draws what to do with the next request, and counts it. One draw per
    /// request in arrival order, so a seed gives the same faults to the
    /// same sequence of requests.
    pub fn decide(&self) -> Action {
        let mut state = self.lock();
        let draw: f64 = state.random.random();
        let stats = &mut state.stats;
        stats.requests += 1;
        if draw < self.rates.error {
            stats.errors_injected += 1;
            Action::Error
        } else if draw < self.rates.error + self.rates.drop {
            stats.connections_dropped += 1;
            Action::Drop
        } else {
            stats.forwarded += 1;
            Action::Forward
        }
    }

    /// Counts a request in flight until the returned guard is dropped.
    pub fn in_flight(&self) -> InFlight<'_> {
        self.change_in_flight(true);
        InFlight(self)
    }

    pub fn snapshot(&self) -> Stats {
        let state = self.lock();
        let mean = if state.busy_seconds > 0.0 {
            state.in_flight_seconds / state.busy_seconds
        } else {
            0.0
        };
        Stats {
            mean_in_flight: (mean * 100.0).round() / 100.0,
            ..state.stats.clone()
        }
    }

    fn change_in_flight(&self, starts: bool) {
        let mut state = self.lock();
        let now = Instant::now();
        if state.in_flight > 0 {
            let elapsed = now.duration_since(state.last_change).as_secs_f64();
            state.in_flight_seconds += state.in_flight as f64 * elapsed;
            state.busy_seconds += elapsed;
        }
        state.last_change = now;
        if starts {
            state.in_flight += 1;
            state.stats.peak_in_flight = state.stats.peak_in_flight.max(state.in_flight);
        } else {
            state.in_flight -= 1;
        }
    }

    /// The counts stay usable after a panic elsewhere: they are plain numbers.
    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// A request in flight; it is answered when this is dropped.
pub struct InFlight<'a>(&'a Faults);

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.change_in_flight(false);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn actions(error: f64, drop: f64, seed: u64, n: usize) -> Vec<Action> {
        let faults = Faults::new(FaultRates::new(error, drop).unwrap(), seed);
        (0..n).map(|_| faults.decide()).collect()
    }

    #[test]
    fn a_seed_gives_the_same_faults_and_rates_set_their_shares() {
        let drawn = actions(0.1, 0.05, 7, 10_000);
        assert_eq!(drawn, actions(0.1, 0.05, 7, 10_000));
        assert_ne!(drawn, actions(0.1, 0.05, 8, 10_000));
        let share = |a| drawn.iter().filter(|&&d| d == a).count() as f64 / 10_000.0;
        assert!(
            (share(Action::Error) - 0.1).abs() < 0.015,
            "{}",
            share(Action::Error)
        );
        assert!(
            (share(Action::Drop) - 0.05).abs() < 0.01,
            "{}",
            share(Action::Drop)
        );
    }

    #[test]
    fn without_rates_every_request_is_forwarded_and_counted() {
        let faults = Faults::new(FaultRates::new(0.0, 0.0).unwrap(), 1);
        assert!((0..100).all(|_| faults.decide() == Action::Forward));
        let stats = faults.snapshot();
        assert_eq!(
            (stats.requests, stats.forwarded, stats.errors_injected),
            (100, 100, 0)
        );
    }

    #[test]
    fn rates_outside_zero_to_one_are_refused() {
        assert!(FaultRates::new(-0.1, 0.0).is_err());
        assert!(FaultRates::new(0.7, 0.4).is_err());
        assert!(FaultRates::new(0.6, 0.4).is_ok());
    }

    #[test]
    fn requests_in_flight_are_counted_at_their_peak_and_on_average() {
        let faults = Faults::new(FaultRates::new(0.0, 0.0).unwrap(), 1);
        let first = faults.in_flight();
        let second = faults.in_flight();
        std::thread::sleep(std::time::Duration::from_millis(20));
        drop(second);
        std::thread::sleep(std::time::Duration::from_millis(20));
        drop(first);
        let stats = faults.snapshot();
        assert_eq!(stats.peak_in_flight, 2);
        // Two for a part of the busy time, one for the rest: strictly
        // between, whatever the sleeps' real lengths.
        assert!(
            stats.mean_in_flight > 1.0 && stats.mean_in_flight < 2.0,
            "{stats:?}"
        );
        let idle = faults.in_flight();
        drop(idle);
        assert_eq!(faults.snapshot().peak_in_flight, 2);
    }
}
