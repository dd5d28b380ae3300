//! The one readiness poll: `wait_for(what, timeout, check)`.

use std::time::{Duration, Instant};

use crate::error::{Error, Result};

/// First pause between two checks; it doubles up to [`MAX_POLL`], so a
/// daemon that is ready at once costs little and a long wait does not keep
/// the (shared, small) machine busy.
const FIRST_POLL: Duration = Duration::from_millis(25);
const MAX_POLL: Duration = Duration::from_millis(500);

/// What a check returns: done with a value, or not yet (with what it saw).
/// Implemented for `Option<T>` (nothing to report) and `Result<T, E>` (the
/// error is what was last seen, put into the timeout error).
pub trait Attempt {
    type Output;
    fn into_result(self) -> std::result::Result<Self::Output, String>;
}

impl<T> Attempt for Option<T> {
    type Output = T;
    fn into_result(self) -> std::result::Result<T, String> {
        self.ok_or_else(|| "not yet".to_string())
    }
}

impl<T, E: std::fmt::Display> Attempt for std::result::Result<T, E> {
    type Output = T;
    fn into_result(self) -> std::result::Result<T, String> {
        self.map_err(|e| e.to_string())
    }
}

/// Call `check` until it returns a value (`Some` / `Ok`), at most for
/// `timeout` (it is called at least once, and once more at the deadline).
/// On timeout the error names `what` and the last thing `check` saw.
pub fn wait_for<A: Attempt>(
    what: &str,
    timeout: Duration,
    mut check: impl FnMut() -> A,
) -> Result<A::Output> {
    let start = Instant::now();
    let mut pause = FIRST_POLL;
    loop {
        let last = match check().into_result() {
            Ok(v) => return Ok(v),
            Err(last) => last,
        };
        let elapsed = start.elapsed();
        if elapsed >= timeout {
            return Err(Error::Timeout {
                what: what.to_string(),
                after: timeout,
                last,
            });
        }
        std::thread::sleep(pause.min(timeout - elapsed));
        pause = (pause * 2).min(MAX_POLL);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn returns_the_first_value() {
        let mut n = 0;
        let v = wait_for("three calls", Duration::from_secs(5), || {
            n += 1;
            (n == 3).then_some(n * 10)
        })
        .unwrap();
        assert_eq!((v, n), (30, 3));
    }

    #[test]
    fn timeout_reports_the_last_state_seen() {
        let mut n = 0;
        let err = wait_for("never", Duration::from_millis(120), || {
            n += 1;
            Err::<(), _>(format!("state {n}"))
        })
        .unwrap_err();
        match err {
            Error::Timeout { what, last, .. } => {
                assert_eq!(what, "never");
                assert_eq!(last, format!("state {n}"));
                assert!(n >= 2, "checked {n} times");
            }
            other => panic!("{other}"),
        }
    }

    #[test]
    fn zero_timeout_still_checks_once() {
        assert_eq!(wait_for("now", Duration::ZERO, || Some(1)).unwrap(), 1);
        assert!(wait_for("now", Duration::ZERO, || None::<u8>).is_err());
    }
}
