//! When to try a request to Northflank again. Northflank allows 1,000 requests an
//! hour and answers a 429 with `x-ratelimit-*` headers; a deploy polls for up to
//! half an hour, so a rate limit, a 5xx or a dropped connection must not end it
//! while the run goes on. Retries are bounded in count and in total wait.

use std::time::Duration;

use reqwest::StatusCode;
use reqwest::header::{HeaderMap, RETRY_AFTER};

/// How often and how long one request is retried.
#[derive(Debug, Clone, Copy)]
pub struct RetryPolicy {
    /// Retries after the first attempt.
    pub retries: u32,
    /// The wait before the first retry, doubled for each further one.
    pub first_delay: Duration,
    /// The most time spent waiting between the attempts of one request.
    pub budget: Duration,
}

/// Whether sending a request twice has the effect of sending it once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Idempotence {
    /// Reads, full updates, aborts.
    Idempotent,
    /// Creating a template or starting a run: a second one is a second resource.
    NotIdempotent,
}

/// Why a request is not retried again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GiveUp {
    NoRetriesLeft { retries: u32 },
    OverBudget { wait: Duration, budget: Duration },
}

impl std::fmt::Display for GiveUp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match *self {
            GiveUp::NoRetriesLeft { retries } => write!(f, "no retries left (--retries {retries})"),
            GiveUp::OverBudget { wait, budget } => write!(
                f,
                "waiting another {}s would pass the retry budget of {}s (--retry-budget)",
                wait.as_secs_f64().ceil(),
                budget.as_secs()
            ),
        }
    }
}

impl RetryPolicy {
    /// The wait before retry number `retry` (from 1), given the wait the server
    /// asked for and the time already waited for this request.
    pub fn wait(
        &self,
        retry: u32,
        asked: Option<Duration>,
        waited: Duration,
    ) -> Result<Duration, GiveUp> {
        if retry > self.retries {
            return Err(GiveUp::NoRetriesLeft {
                retries: self.retries,
            });
        }
        let backoff = self
            .first_delay
            .saturating_mul(1 << (retry.saturating_sub(1)).min(16));
        let wait = asked.unwrap_or(backoff);
        if waited + wait > self.budget {
            return Err(GiveUp::OverBudget {
                wait,
                budget: self.budget,
            });
        }
        Ok(wait)
    }
}

/// Whether an answer is worth another attempt. A 429 or 503 says the request was
/// not processed; another 5xx may come after it was, so only an idempotent request
/// is sent again.
pub fn transient_status(status: StatusCode, idempotence: Idempotence) -> bool {
    status == StatusCode::TOO_MANY_REQUESTS
        || status == StatusCode::SERVICE_UNAVAILABLE
        || (status.is_server_error() && idempotence == Idempotence::Idempotent)
}

/// Whether a request that got no answer is worth another attempt: one that never
/// connected always is; one cut off or timed out only when sending it twice is harmless.
pub fn transient_network(error: &reqwest::Error, idempotence: Idempotence) -> bool {
    error.is_connect() || idempotence == Idempotence::Idempotent
}

/// The wait the server asked for: `Retry-After` in seconds or, on a 429,
/// Northflank's `x-ratelimit-reset` (seconds until the hourly limit resets).
/// A `Retry-After` date is not read; the backoff applies then.
pub fn asked_wait(status: StatusCode, headers: &HeaderMap) -> Option<Duration> {
    let seconds = |name: &str| {
        let value = headers.get(name)?.to_str().ok()?;
        value.trim().parse::<u64>().ok().map(Duration::from_secs)
    };
    seconds(RETRY_AFTER.as_str()).or_else(|| {
        (status == StatusCode::TOO_MANY_REQUESTS)
            .then(|| seconds("x-ratelimit-reset"))
            .flatten()
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::header::HeaderValue;

    const POLICY: RetryPolicy = RetryPolicy {
        retries: 3,
        first_delay: Duration::from_secs(1),
        budget: Duration::from_secs(10),
    };

    #[test]
    fn backoff_doubles_within_count_and_budget() {
        let zero = Duration::ZERO;
        assert_eq!(POLICY.wait(1, None, zero), Ok(Duration::from_secs(1)));
        assert_eq!(POLICY.wait(2, None, zero), Ok(Duration::from_secs(2)));
        assert_eq!(POLICY.wait(3, None, zero), Ok(Duration::from_secs(4)));
        assert_eq!(
            POLICY.wait(4, None, zero),
            Err(GiveUp::NoRetriesLeft { retries: 3 })
        );
        assert_eq!(
            POLICY.wait(3, None, Duration::from_secs(7)),
            Err(GiveUp::OverBudget {
                wait: Duration::from_secs(4),
                budget: Duration::from_secs(10)
            })
        );
    }

    #[test]
    fn the_servers_wait_wins_but_not_over_the_budget() {
        let zero = Duration::ZERO;
        let asked = Some(Duration::from_secs(5));
        assert_eq!(POLICY.wait(1, asked, zero), Ok(Duration::from_secs(5)));
        let hour = Some(Duration::from_secs(3600));
        assert!(matches!(
            POLICY.wait(1, hour, zero),
            Err(GiveUp::OverBudget { .. })
        ));
    }

    #[test]
    fn retry_after_then_ratelimit_reset_on_429_only() {
        let mut headers = HeaderMap::new();
        headers.insert("x-ratelimit-reset", HeaderValue::from_static("7"));
        let limited = StatusCode::TOO_MANY_REQUESTS;
        assert_eq!(asked_wait(limited, &headers), Some(Duration::from_secs(7)));
        assert_eq!(asked_wait(StatusCode::SERVICE_UNAVAILABLE, &headers), None);
        headers.insert(RETRY_AFTER, HeaderValue::from_static("2"));
        assert_eq!(asked_wait(limited, &headers), Some(Duration::from_secs(2)));
        headers.insert(
            RETRY_AFTER,
            HeaderValue::from_static("Wed, 21 Oct 2015 07:28:00 GMT"),
        );
        assert_eq!(asked_wait(limited, &headers), Some(Duration::from_secs(7)));
    }

    #[test]
    fn which_statuses_are_retried() {
        use Idempotence::*;
        assert!(transient_status(
            StatusCode::TOO_MANY_REQUESTS,
            NotIdempotent
        ));
        assert!(transient_status(
            StatusCode::SERVICE_UNAVAILABLE,
            NotIdempotent
        ));
        assert!(transient_status(StatusCode::BAD_GATEWAY, Idempotent));
        assert!(!transient_status(StatusCode::BAD_GATEWAY, NotIdempotent));
        assert!(!transient_status(StatusCode::NOT_FOUND, Idempotent));
        assert!(!transient_status(StatusCode::FORBIDDEN, Idempotent));
    }
}
