//! Per-service resilience: the retry policy and budget, and the circuit
//! breaker. Semantics follow Envoy's retry budgets, Google SRE's retry
//! guidance and resilience4j's count-based circuit breaker (see
//! [`crate::RetryConfig`] and [`crate::BreakerConfig`]).

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use rand::Rng;
use tokio::time::Instant;

use crate::{BreakerConfig, DownstreamError, RetryConfig, Service};

/// Buckets the retry-budget window is divided into.
const BUDGET_BUCKETS: usize = 10;

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // Every update below keeps the state consistent at each step, so a
    // panic elsewhere cannot leave it half-done.
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Whether a failed try may be retried (the method must be idempotent too):
/// connection errors, 502/503/504 and per-try timeouts.
pub(crate) fn is_retryable(error: &DownstreamError) -> bool {
    match error {
        DownstreamError::Unavailable { status, .. } => {
            matches!(status, None | Some(502..=504))
        }
        DownstreamError::Timeout { .. } => true,
        _ => false,
    }
}

/// Whether an outcome counts against the service's health: it could not be
/// reached, answered 5xx, or took too long. Refusals (4xx) are the caller's.
pub(crate) fn is_failure(error: &DownstreamError) -> bool {
    matches!(
        error,
        DownstreamError::Unavailable { .. } | DownstreamError::Timeout { .. }
    )
}

/// The retry settings of one service plus its budget.
#[derive(Debug)]
pub(crate) struct RetryPolicy {
    pub(crate) max_retries: u32,
    pub(crate) per_try_timeout: Option<Duration>,
    base_backoff: Duration,
    max_backoff: Duration,
    budget: RetryBudget,
}

impl RetryPolicy {
    pub(crate) fn new(config: &RetryConfig) -> Self {
        Self {
            max_retries: config.max_retries,
            per_try_timeout: config.per_try_timeout_ms.map(Duration::from_millis),
            base_backoff: Duration::from_millis(config.base_backoff_ms),
            max_backoff: Duration::from_millis(config.max_backoff_ms),
            budget: RetryBudget::new(config),
        }
    }

    /// Counts one call (its first try) towards the budget.
    pub(crate) fn record_call(&self) {
        self.budget.record(false);
    }

    /// Takes one retry from the budget, if it has one left.
    pub(crate) fn try_withdraw(&self) -> bool {
        self.budget.try_withdraw()
    }

    /// Full-jitter exponential back-off before retry number `retry` (1-based).
    pub(crate) fn backoff(&self, retry: u32) -> Duration {
        let exponent = retry.saturating_sub(1).min(16);
        let cap = self
            .base_backoff
            .saturating_mul(1 << exponent)
            .min(self.max_backoff);
        let cap_us = u64::try_from(cap.as_micros()).unwrap_or(u64::MAX);
        Duration::from_micros(rand::rng().random_range(0..=cap_us))
    }
}

/// Envoy-style retry budget: over a sliding window, retries may be at most
/// `percent` of calls plus `min_retries`.
#[derive(Debug)]
struct RetryBudget {
    percent: u64,
    min_retries: u64,
    bucket_len: Duration,
    origin: Instant,
    buckets: Mutex<[Bucket; BUDGET_BUCKETS]>,
}

#[derive(Debug, Default, Clone, Copy)]
struct Bucket {
    epoch: u64,
    calls: u64,
    retries: u64,
}

impl RetryBudget {
    fn new(config: &RetryConfig) -> Self {
        let window = Duration::from_millis(config.budget_window_ms.max(BUDGET_BUCKETS as u64));
        Self {
            percent: u64::from(config.budget_percent),
            min_retries: u64::from(config.budget_min_retries),
            bucket_len: window / BUDGET_BUCKETS as u32,
            origin: Instant::now(),
            buckets: Mutex::new([Bucket::default(); BUDGET_BUCKETS]),
        }
    }

    fn epoch(&self) -> u64 {
        let elapsed = self.origin.elapsed().as_nanos() / self.bucket_len.as_nanos().max(1);
        // Epoch 0 marks an unused bucket.
        u64::try_from(elapsed).unwrap_or(u64::MAX - 1) + 1
    }

    /// The current bucket (reset if it is from an earlier turn of the ring)
    /// and the totals of the window.
    fn current(&self, buckets: &mut [Bucket; BUDGET_BUCKETS]) -> (usize, u64, u64) {
        let epoch = self.epoch();
        let index = (epoch % BUDGET_BUCKETS as u64) as usize;
        if buckets[index].epoch != epoch {
            buckets[index] = Bucket {
                epoch,
                ..Bucket::default()
            };
        }
        let live = buckets
            .iter()
            .filter(|b| b.epoch != 0 && epoch - b.epoch < BUDGET_BUCKETS as u64);
        let (calls, retries) = live.fold((0, 0), |(c, r), b| (c + b.calls, r + b.retries));
        (index, calls, retries)
    }

    fn record(&self, retry: bool) {
        let mut buckets = lock(&self.buckets);
        let (index, _, _) = self.current(&mut buckets);
        if retry {
            buckets[index].retries += 1;
        } else {
            buckets[index].calls += 1;
        }
    }

    fn try_withdraw(&self) -> bool {
        let mut buckets = lock(&self.buckets);
        let (index, calls, retries) = self.current(&mut buckets);
        let allowed = (retries + 1) * 100 <= calls * self.percent + self.min_retries * 100;
        if allowed {
            buckets[index].retries += 1;
        }
        allowed
    }
}

/// State of a circuit breaker.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BreakerState {
    Closed,
    Open,
    HalfOpen,
}

impl BreakerState {
    pub fn name(self) -> &'static str {
        match self {
            BreakerState::Closed => "closed",
            BreakerState::Open => "open",
            BreakerState::HalfOpen => "half_open",
        }
    }
}

/// The circuit breaker of one service. Cheap to clone (shared).
#[derive(Debug, Clone)]
pub(crate) struct CircuitBreaker {
    inner: Arc<BreakerInner>,
}

#[derive(Debug)]
struct BreakerInner {
    service: Service,
    enabled: bool,
    window_size: usize,
    minimum_calls: usize,
    failure_rate_percent: usize,
    slow_call: Duration,
    open_for: Duration,
    half_open_calls: u32,
    state: Mutex<Phase>,
    /// Whether the state gauge was set since a call was first made (the
    /// metrics recorder may be installed after the breaker is built).
    gauge_set: AtomicBool,
}

#[derive(Debug)]
enum Phase {
    Closed {
        /// The last `window_size` outcomes, `true` for a failure.
        window: VecDeque<bool>,
        failures: usize,
    },
    Open {
        until: Instant,
    },
    HalfOpen {
        /// Probes let through and not finished yet.
        in_flight: u32,
        /// Probes that succeeded.
        succeeded: u32,
    },
}

impl Phase {
    fn closed() -> Self {
        Phase::Closed {
            window: VecDeque::new(),
            failures: 0,
        }
    }

    fn state(&self) -> BreakerState {
        match self {
            Phase::Closed { .. } => BreakerState::Closed,
            Phase::Open { .. } => BreakerState::Open,
            Phase::HalfOpen { .. } => BreakerState::HalfOpen,
        }
    }
}

/// Leave to make one try. Report how it went with [`Permit::record`];
/// dropping it unrecorded (a cancelled call) frees its probe slot without
/// counting an outcome.
#[derive(Debug)]
pub(crate) struct Permit {
    breaker: CircuitBreaker,
    probe: bool,
    started: Instant,
    recorded: bool,
}

impl CircuitBreaker {
    pub(crate) fn new(service: Service, config: &BreakerConfig) -> Self {
        Self {
            inner: Arc::new(BreakerInner {
                service,
                enabled: config.enabled,
                window_size: config.window_size.max(1) as usize,
                minimum_calls: config.minimum_calls.max(1) as usize,
                failure_rate_percent: config.failure_rate_percent as usize,
                slow_call: Duration::from_millis(config.slow_call_ms),
                open_for: Duration::from_millis(config.open_ms),
                half_open_calls: config.half_open_calls.max(1),
                state: Mutex::new(Phase::closed()),
                gauge_set: AtomicBool::new(false),
            }),
        }
    }

    #[cfg(test)]
    fn state(&self) -> BreakerState {
        lock(&self.inner.state).state()
    }

    /// Leave to call the service, or `None` when the breaker is open (or
    /// half-open with all its probes out).
    pub(crate) fn try_acquire(&self) -> Option<Permit> {
        let permit = |probe| Permit {
            breaker: self.clone(),
            probe,
            started: Instant::now(),
            recorded: false,
        };
        if !self.inner.enabled {
            return Some(permit(false));
        }
        let mut phase = lock(&self.inner.state);
        if !self.inner.gauge_set.swap(true, Ordering::Relaxed) {
            crate::telemetry::breaker_state(self.inner.service, phase.state());
        }
        match &mut *phase {
            Phase::Closed { .. } => Some(permit(false)),
            Phase::Open { until } if Instant::now() >= *until => {
                self.transition(
                    &mut phase,
                    Phase::HalfOpen {
                        in_flight: 1,
                        succeeded: 0,
                    },
                );
                Some(permit(true))
            }
            Phase::Open { .. } => None,
            Phase::HalfOpen {
                in_flight,
                succeeded,
            } if *in_flight + *succeeded < self.inner.half_open_calls => {
                *in_flight += 1;
                Some(permit(true))
            }
            Phase::HalfOpen { .. } => None,
        }
    }

    fn transition(&self, phase: &mut Phase, next: Phase) {
        let (from, to) = (phase.state(), next.state());
        *phase = next;
        if from != to {
            tracing::info!(service = %self.inner.service, from = from.name(), to = to.name(), "circuit breaker");
            crate::telemetry::breaker_transition(self.inner.service, to);
        }
    }

    fn record(&self, probe: bool, failed: Option<bool>) {
        if !self.inner.enabled {
            return;
        }
        let inner = &self.inner;
        let mut phase = lock(&inner.state);
        match (&mut *phase, probe) {
            (Phase::Closed { window, failures }, false) => {
                let Some(failed) = failed else { return };
                window.push_back(failed);
                *failures += usize::from(failed);
                if window.len() > inner.window_size && window.pop_front() == Some(true) {
                    *failures -= 1;
                }
                if window.len() >= inner.minimum_calls
                    && *failures * 100 >= inner.failure_rate_percent * window.len()
                {
                    let until = Instant::now() + inner.open_for;
                    self.transition(&mut phase, Phase::Open { until });
                }
            }
            (
                Phase::HalfOpen {
                    in_flight,
                    succeeded,
                },
                true,
            ) => {
                *in_flight = in_flight.saturating_sub(1);
                match failed {
                    None => {}
                    Some(true) => {
                        let until = Instant::now() + inner.open_for;
                        self.transition(&mut phase, Phase::Open { until });
                    }
                    Some(false) => {
                        *succeeded += 1;
                        if *succeeded >= inner.half_open_calls {
                            self.transition(&mut phase, Phase::closed());
                        }
                    }
                }
            }
            // The outcome of a call admitted in an earlier state.
            _ => {}
        }
    }
}

impl Permit {
    /// Records the outcome of the try: `Err` with [`is_failure`] errors, and
    /// slow answers, count as failures.
    pub(crate) fn record<T>(mut self, outcome: &Result<T, DownstreamError>) {
        let slow = self.started.elapsed() >= self.breaker.inner.slow_call;
        let failed = slow || outcome.as_ref().err().is_some_and(is_failure);
        self.recorded = true;
        self.breaker.record(self.probe, Some(failed));
    }
}

impl Drop for Permit {
    fn drop(&mut self) {
        if !self.recorded {
            self.breaker.record(self.probe, None);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn breaker(config: BreakerConfig) -> CircuitBreaker {
        CircuitBreaker::new(Service::Product, &config)
    }

    fn config() -> BreakerConfig {
        BreakerConfig {
            window_size: 10,
            minimum_calls: 5,
            failure_rate_percent: 50,
            open_ms: 1_000,
            half_open_calls: 2,
            ..BreakerConfig::default()
        }
    }

    const FAIL: Result<(), DownstreamError> = Err(DownstreamError::Unavailable {
        service: Service::Product,
        status: Some(503),
    });
    const OK: Result<(), DownstreamError> = Ok(());

    fn call(breaker: &CircuitBreaker, outcome: Result<(), DownstreamError>) -> bool {
        match breaker.try_acquire() {
            Some(permit) => {
                permit.record(&outcome);
                true
            }
            None => false,
        }
    }

    #[tokio::test(start_paused = true)]
    async fn below_the_minimum_number_of_calls_it_stays_closed() {
        let b = breaker(config());
        for _ in 0..4 {
            assert!(call(&b, FAIL));
        }
        assert_eq!(b.state(), BreakerState::Closed);
    }

    #[tokio::test(start_paused = true)]
    async fn at_the_threshold_it_opens() {
        let b = breaker(config());
        // 2 failures of 4, then a 5th call: 3/5 = 60% ≥ 50%.
        for outcome in [OK, FAIL, OK, FAIL] {
            assert!(call(&b, outcome));
        }
        assert_eq!(b.state(), BreakerState::Closed);
        assert!(call(&b, FAIL));
        assert_eq!(b.state(), BreakerState::Open);
        assert!(!call(&b, OK), "open: fails fast");
    }

    #[tokio::test(start_paused = true)]
    async fn below_the_threshold_it_stays_closed() {
        let b = breaker(config());
        // 4 failures of 10 = 40%, and the window slides.
        for _ in 0..3 {
            for outcome in [OK, FAIL, OK, OK, FAIL] {
                assert!(call(&b, outcome));
            }
        }
        assert_eq!(b.state(), BreakerState::Closed);
    }

    #[tokio::test(start_paused = true)]
    async fn exactly_half_failing_opens() {
        let b = breaker(BreakerConfig {
            minimum_calls: 4,
            ..config()
        });
        for outcome in [OK, FAIL, OK, FAIL] {
            assert!(call(&b, outcome));
        }
        assert_eq!(b.state(), BreakerState::Open);
    }

    #[tokio::test(start_paused = true)]
    async fn after_the_cool_down_probes_close_or_reopen_it() {
        let b = breaker(config());
        for _ in 0..5 {
            call(&b, FAIL);
        }
        assert_eq!(b.state(), BreakerState::Open);
        tokio::time::advance(Duration::from_millis(999)).await;
        assert!(b.try_acquire().is_none());
        tokio::time::advance(Duration::from_millis(1)).await;

        // Two probes at most; a third is refused while they are out.
        let first = b.try_acquire().expect("probe");
        assert_eq!(b.state(), BreakerState::HalfOpen);
        let second = b.try_acquire().expect("second probe");
        assert!(b.try_acquire().is_none());
        first.record(&FAIL);
        assert_eq!(b.state(), BreakerState::Open, "a failed probe reopens");
        second.record(&OK);
        assert_eq!(b.state(), BreakerState::Open);

        tokio::time::advance(Duration::from_millis(1_000)).await;
        assert!(call(&b, OK));
        assert_eq!(b.state(), BreakerState::HalfOpen);
        assert!(call(&b, OK));
        assert_eq!(b.state(), BreakerState::Closed, "all probes succeeded");
    }

    #[tokio::test(start_paused = true)]
    async fn a_cancelled_probe_frees_its_slot() {
        let b = breaker(BreakerConfig {
            half_open_calls: 1,
            ..config()
        });
        for _ in 0..5 {
            call(&b, FAIL);
        }
        tokio::time::advance(Duration::from_millis(1_000)).await;
        drop(b.try_acquire().expect("probe"));
        assert_eq!(b.state(), BreakerState::HalfOpen);
        assert!(call(&b, OK));
        assert_eq!(b.state(), BreakerState::Closed);
    }

    #[tokio::test(start_paused = true)]
    async fn slow_successes_count_as_failures() {
        let b = breaker(BreakerConfig {
            slow_call_ms: 100,
            ..config()
        });
        for _ in 0..5 {
            let permit = b.try_acquire().expect("closed");
            tokio::time::advance(Duration::from_millis(100)).await;
            permit.record(&OK);
        }
        assert_eq!(b.state(), BreakerState::Open);
    }

    #[tokio::test(start_paused = true)]
    async fn refusals_are_not_failures() {
        let b = breaker(config());
        let not_found: Result<(), _> = Err(DownstreamError::NotFound {
            service: Service::Product,
        });
        for _ in 0..10 {
            assert!(call(&b, not_found.clone()));
        }
        assert_eq!(b.state(), BreakerState::Closed);
    }

    #[tokio::test(start_paused = true)]
    async fn a_disabled_breaker_never_opens() {
        let b = breaker(BreakerConfig {
            enabled: false,
            ..config()
        });
        for _ in 0..20 {
            assert!(call(&b, FAIL));
        }
        assert_eq!(b.state(), BreakerState::Closed);
    }

    #[tokio::test(start_paused = true)]
    async fn the_budget_allows_ten_percent_of_calls_plus_the_minimum() {
        let policy = RetryPolicy::new(&RetryConfig {
            budget_percent: 10,
            budget_min_retries: 3,
            budget_window_ms: 10_000,
            ..RetryConfig::default()
        });
        for _ in 0..100 {
            policy.record_call();
        }
        let granted = (0..100).filter(|_| policy.try_withdraw()).count();
        assert_eq!(granted, 13);
        // Once the window has passed, the old calls and retries no longer count.
        tokio::time::advance(Duration::from_millis(10_000)).await;
        let granted = (0..100).filter(|_| policy.try_withdraw()).count();
        assert_eq!(granted, 3);
    }

    #[test]
    fn backoff_is_jittered_and_capped() {
        let policy = RetryPolicy::new(&RetryConfig::default());
        for retry in 1..10 {
            let cap = Duration::from_millis(25 << (retry - 1)).min(Duration::from_millis(250));
            assert!(policy.backoff(retry) <= cap);
        }
    }
}
