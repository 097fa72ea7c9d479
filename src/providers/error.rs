//! The one error type every provider call returns: a kind the engine decides on, the
//! service's message, and the resource address the engine attaches.
//!
//! Decisions (retry, keep the intent, adopt instead of create) are made on the kind only;
//! the message is for people.

use std::time::Duration;

use crate::addr::ResourceAddr;

/// What kind of failure a provider call met; the engine decides on this alone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ErrorKind {
    /// The configuration cannot be applied (bad value, missing field, path outside root).
    Invalid,
    /// A temporary failure (5xx, busy, connection reset): worth retrying.
    Transient,
    /// The endpoint did not answer at all (connection refused, name unresolvable, host
    /// unreachable): retried once, then reported at once with the endpoint and the OS error.
    Unreachable,
    /// The service asked us to slow down, optionally saying for how long.
    Throttled {
        /// The wait the service asked for (`Retry-After`), when it named one.
        retry_after: Option<Duration>,
    },
    /// The call did not answer in time: it may still have happened.
    TimedOut,
    /// The object does not exist.
    NotFound,
    /// The object already exists.
    AlreadyExists,
    /// The object exists and belongs to someone else, or changed concurrently.
    Conflict,
    /// Credentials were refused.
    Auth,
    /// The provider task panicked: a bug, the outcome of its calls is unknown.
    Panicked,
    /// Any other failure, not retried.
    Failed,
}

/// A provider call that failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}{message}", prefix(kind))]
pub struct ProviderError {
    /// What the engine decides on.
    pub kind: ErrorKind,
    /// What went wrong, with the operation and the service's own words.
    pub message: String,
    /// The resource the call was for, once the engine knows it.
    pub address: Option<ResourceAddr>,
}

fn prefix(kind: &ErrorKind) -> &'static str {
    match kind {
        ErrorKind::Invalid => "invalid configuration: ",
        ErrorKind::Transient => "temporary failure: ",
        ErrorKind::Unreachable => "cannot reach the service: ",
        ErrorKind::Throttled { .. } => "throttled: ",
        ErrorKind::Auth => "authentication failed: ",
        ErrorKind::Conflict => "conflict: ",
        ErrorKind::Panicked => "provider bug (panicked): ",
        ErrorKind::TimedOut
        | ErrorKind::NotFound
        | ErrorKind::AlreadyExists
        | ErrorKind::Failed => "",
    }
}

impl ProviderError {
    /// An error of `kind` with `message`.
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        ProviderError {
            kind,
            message: message.into(),
            address: None,
        }
    }
    /// A configuration that cannot be applied.
    pub fn invalid(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Invalid, message)
    }
    /// A temporary failure, retried by the engine.
    pub fn transient(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Transient, message)
    }
    /// An endpoint that does not answer, retried once.
    pub fn unreachable(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Unreachable, message)
    }
    /// A throttled call, retried after `retry_after` (or the engine's backoff).
    pub fn throttled(message: impl Into<String>, retry_after: Option<Duration>) -> Self {
        Self::new(ErrorKind::Throttled { retry_after }, message)
    }
    /// A call that did not answer in time.
    pub fn timed_out(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::TimedOut, message)
    }
    /// A missing object.
    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::NotFound, message)
    }
    /// An object that already exists.
    pub fn already_exists(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::AlreadyExists, message)
    }
    /// An object owned by someone else or changed concurrently.
    pub fn conflict(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Conflict, message)
    }
    /// Refused credentials.
    pub fn auth(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Auth, message)
    }
    /// Any other failure.
    pub fn failed(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Failed, message)
    }

    /// The same error, for the resource at `address` (kept when one is set already).
    pub fn at(mut self, address: &ResourceAddr) -> Self {
        if self.address.is_none() {
            self.address = Some(address.clone());
        }
        self
    }

    /// The same kind with `context: ` before the message.
    pub fn context(mut self, context: &str) -> Self {
        self.message = format!("{context}: {}", self.message);
        self
    }

    /// Whether the engine should retry the call.
    pub fn is_retryable(&self) -> bool {
        matches!(
            self.kind,
            ErrorKind::Transient | ErrorKind::Unreachable | ErrorKind::Throttled { .. }
        )
    }

    /// Whether the call may have changed the object although it failed, so the intent
    /// is kept for the next run to reconcile.
    pub fn outcome_unknown(&self) -> bool {
        matches!(self.kind, ErrorKind::TimedOut | ErrorKind::Panicked)
    }

    /// The wait the service asked for before a retry.
    pub fn retry_after(&self) -> Option<Duration> {
        match self.kind {
            ErrorKind::Throttled { retry_after } => retry_after,
            _ => None,
        }
    }

    /// Maps an I/O error: interrupted/would-block/timed-out are transient, the rest fatal.
    pub fn io(what: &str, e: &std::io::Error) -> Self {
        use std::io::ErrorKind as K;
        let message = format!("{what}: {e}");
        match e.kind() {
            K::Interrupted | K::WouldBlock | K::TimedOut => Self::transient(message),
            K::NotFound => Self::not_found(message),
            K::AlreadyExists => Self::already_exists(message),
            K::PermissionDenied => Self::auth(message),
            _ => Self::failed(message),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_transient_and_throttled_are_retried() {
        assert!(ProviderError::transient("503").is_retryable());
        assert!(ProviderError::throttled("slow down", None).is_retryable());
        for e in [
            ProviderError::invalid("x"),
            ProviderError::timed_out("x"),
            ProviderError::conflict("x"),
            ProviderError::auth("x"),
            ProviderError::already_exists("x"),
        ] {
            assert!(!e.is_retryable(), "{e:?}");
        }
    }

    #[test]
    fn a_timeout_or_a_panic_keeps_the_intent_other_failures_do_not() {
        assert!(ProviderError::timed_out("after 5s").outcome_unknown());
        assert!(ProviderError::new(ErrorKind::Panicked, "boom").outcome_unknown());
        assert!(!ProviderError::failed("refused").outcome_unknown());
        assert!(!ProviderError::transient("503").outcome_unknown());
    }

    #[test]
    fn the_message_keeps_its_kind_prefix_and_the_address_is_set_once() {
        let a: ResourceAddr = "acme/aws_s3_bucket.assets".parse().unwrap();
        let b: ResourceAddr = "acme/aws_s3_bucket.other".parse().unwrap();
        let e = ProviderError::invalid("bad name").at(&a).at(&b);
        assert_eq!(e.to_string(), "invalid configuration: bad name");
        assert_eq!(e.address, Some(a));
        let t = ProviderError::throttled("SlowDown", Some(Duration::from_secs(3)));
        assert_eq!(t.retry_after(), Some(Duration::from_secs(3)));
        assert_eq!(t.to_string(), "throttled: SlowDown");
    }
}
