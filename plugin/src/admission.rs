//! What a host request may cost in memory before it is parsed and queued.
//!
//! Parsed JSON costs far more than its text where values are small: a
//! 62 MiB `[0,0,...]` made 2.1 GB of `serde_json::Value` (34x), and every
//! queued request keeps its parsed body until it runs. So, before parsing:
//!
//! - a scan (no allocation) counts the request's JSON values and refuses
//!   more than `max_request_values`, which bounds the parse tree of any one
//!   request to its bytes plus `VALUE_COST` per value;
//! - each request is charged its bytes plus `VALUE_COST` per value against
//!   the instance's `max_inflight_request_bytes` until its job ends; a
//!   request that does not fit now is refused as busy (retryable).

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use crate::error::{ErrorKind, ProviderError};

/// What one parsed JSON value costs, roughly: a 32-byte `Value` plus its
/// share of a growing array or a map node. A request is charged this much
/// per value on top of its bytes.
pub const VALUE_COST: usize = 64;

/// Counts the values of a JSON text, stopping once past `max`: every
/// `[`, `{` and `,` outside strings starts one more (an upper bound that
/// over-counts only by the containers themselves).
pub fn count_values(json: &str, max: usize) -> usize {
    let mut count = 1usize;
    let mut in_string = false;
    let mut escaped = false;
    for &byte in json.as_bytes() {
        if in_string {
            if escaped {
                escaped = false;
            } else if byte == b'\\' {
                escaped = true;
            } else if byte == b'"' {
                in_string = false;
            }
            continue;
        }
        match byte {
            b'"' => in_string = true,
            b'[' | b'{' | b',' => {
                count += 1;
                if count > max {
                    return count;
                }
            }
            _ => {}
        }
    }
    count
}

/// The instance's in-flight request budget.
#[derive(Debug)]
pub struct Budget {
    used: AtomicUsize,
    limit: usize,
}

/// A request's share of the budget, given back when dropped (its job ended,
/// or it was never queued).
#[derive(Debug)]
pub struct Reservation {
    budget: Arc<Budget>,
    amount: usize,
}

impl Drop for Reservation {
    fn drop(&mut self) {
        self.budget.used.fetch_sub(self.amount, Ordering::AcqRel);
    }
}

impl Budget {
    pub fn new(limit: usize) -> Arc<Budget> {
        Arc::new(Budget {
            used: AtomicUsize::new(0),
            limit,
        })
    }

    /// Checks a request's size and shape and reserves its share, before
    /// anything is parsed.
    pub fn admit(
        self: &Arc<Budget>,
        json: &str,
        max_values: usize,
    ) -> Result<Reservation, ProviderError> {
        let values = count_values(json, max_values);
        if values > max_values {
            return Err(ProviderError::invalid_argument(format!(
                "the request has more than {max_values} JSON values (max_request_values)"
            )));
        }
        let amount = json.len().saturating_add(values.saturating_mul(VALUE_COST));
        if amount > self.limit {
            return Err(ProviderError::invalid_argument(format!(
                "the request would take about {amount} bytes once parsed, more than the \
                 instance's max_inflight_request_bytes of {}",
                self.limit
            )));
        }
        let mut used = self.used.load(Ordering::Acquire);
        loop {
            let Some(after) = used.checked_add(amount).filter(|&n| n <= self.limit) else {
                return Err(ProviderError::new(
                    ErrorKind::Busy,
                    "the instance holds as many request bytes as max_inflight_request_bytes \
                     allows; try again later",
                )
                .retryable(true));
            };
            match self
                .used
                .compare_exchange(used, after, Ordering::AcqRel, Ordering::Acquire)
            {
                Ok(_) => break,
                Err(now) => used = now,
            }
        }
        Ok(Reservation {
            budget: self.clone(),
            amount,
        })
    }

    #[cfg(test)]
    pub fn used(&self) -> usize {
        self.used.load(Ordering::Acquire)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_are_counted_outside_strings_only() {
        assert_eq!(count_values("0", 10), 1);
        assert_eq!(count_values("[0,0,0]", 10), 4);
        assert_eq!(count_values(r#"{"a":[1,2],"b":{}}"#, 10), 6);
        assert_eq!(count_values(r#"["a,b,[{", "\",[", "\\"]"#, 10), 4);
        // Stops counting once past the limit.
        assert_eq!(count_values(&format!("[{}0]", "0,".repeat(1000)), 5), 6);
    }

    #[test]
    fn the_budget_is_shared_and_given_back() {
        let budget = Budget::new(1000);
        let first = budget.admit(&"x".repeat(400), 10).unwrap();
        let second = budget.admit(&"x".repeat(400), 10).unwrap();
        let busy = budget.admit(&"x".repeat(400), 10).unwrap_err();
        assert_eq!((busy.kind, busy.retryable), (ErrorKind::Busy, true));
        drop(first);
        let third = budget.admit(&"x".repeat(400), 10).unwrap();
        drop((second, third));
        assert_eq!(budget.used(), 0);
    }

    #[test]
    fn values_are_charged_and_limited() {
        let budget = Budget::new(1 << 20);
        let array = format!("[{}0]", "0,".repeat(99));
        let reservation = budget.admit(&array, 1000).unwrap();
        assert_eq!(budget.used(), array.len() + 101 * VALUE_COST);
        drop(reservation);
        let err = budget.admit(&array, 50).unwrap_err();
        assert_eq!(err.kind, ErrorKind::InvalidArgument);
        assert!(err.message.contains("max_request_values"));
        let huge = format!("[{}0]", "0,".repeat(20_000));
        let err = budget.admit(&huge, 1_000_000).unwrap_err();
        assert_eq!(err.kind, ErrorKind::InvalidArgument, "can never fit");
    }
}
