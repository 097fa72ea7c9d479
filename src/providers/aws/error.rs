//! Classifying SDK errors into the engine's kinds: throttling (with `Retry-After`), 5xx and
//! transport failures are retryable, access errors are
//! authentication failures, missing and existing objects are named as such; the message
//! keeps the operation and the service's code and words.

use aws_sdk_s3::config::http::HttpResponse;
use aws_sdk_s3::error::{ProvideErrorMetadata, SdkError};

use crate::providers::ProviderError;

/// Error codes asking the caller to slow down.
const THROTTLED: &[&str] = &[
    "Throttling",
    "ThrottlingException",
    "ThrottledException",
    "RequestLimitExceeded",
    "TooManyRequestsException",
    "PriorRequestNotComplete",
    "SlowDown",
    "RequestThrottled",
];

/// Error codes of temporary failures.
const RETRYABLE: &[&str] = &[
    "ServiceUnavailable",
    "InternalError",
    "InternalFailure",
    "RequestTimeout",
];

const AUTH: &[&str] = &[
    "AccessDenied",
    "AccessDeniedException",
    "InvalidClientTokenId",
    "SignatureDoesNotMatch",
    "UnrecognizedClientException",
    "ExpiredToken",
    "InvalidAccessKeyId",
];

/// The service error code, if the call reached the service.
pub(crate) fn code<E: ProvideErrorMetadata>(e: &SdkError<E, HttpResponse>) -> Option<&str> {
    match e {
        SdkError::ServiceError(se) => se.err().code(),
        _ => None,
    }
}

/// HTTP status of a service error.
pub(crate) fn status<E>(e: &SdkError<E, HttpResponse>) -> Option<u16> {
    match e {
        SdkError::ServiceError(se) => Some(se.raw().status().as_u16()),
        _ => None,
    }
}

/// Maps an SDK error of `what` (e.g. `s3 CreateBucket`) to a provider error.
pub(crate) fn classify<E: ProvideErrorMetadata + std::error::Error + 'static>(
    what: &str,
    e: SdkError<E, HttpResponse>,
) -> ProviderError {
    match &e {
        // The SDK's own timeouts are connect and attempt timeouts: the engine's call
        // timeout, not these, decides that an outcome is unknown.
        SdkError::DispatchFailure(df) if df.is_io() => {
            ProviderError::unreachable(format!("{what}: {}", crate::providers::with_causes(&e)))
        }
        SdkError::TimeoutError(_) | SdkError::DispatchFailure(_) | SdkError::ResponseError(_) => {
            ProviderError::transient(format!("{what}: {}", crate::providers::with_causes(&e)))
        }
        SdkError::ServiceError(se) => {
            let code = se.err().code().unwrap_or("");
            let msg = se.err().message().unwrap_or("");
            let status = se.raw().status().as_u16();
            let text = if code.is_empty() {
                format!("{what}: HTTP {status} {msg}")
            } else {
                format!("{what}: {code}: {msg}")
            };
            service_error(code, msg, status, text, retry_after(se.raw()))
        }
        _ => ProviderError::failed(format!("{what}: {}", crate::providers::with_causes(&e))),
    }
}

/// Error codes meaning the object is not there.
const NOT_FOUND: &[&str] = &[
    "NoSuchHostedZone",
    "NoSuchBucket",
    "NoSuchKey",
    "NotFoundException",
    "ResourceNotFoundException",
    "NoSuchTagSet",
];

/// Error codes meaning the object is there already.
const ALREADY_EXISTS: &[&str] = &[
    "HostedZoneAlreadyExists",
    "BucketAlreadyOwnedByYou",
    "AlreadyExistsException",
    "ResourceExistsException",
];

/// The kind of a service error from its code, message and HTTP status.
fn service_error(
    code: &str,
    msg: &str,
    status: u16,
    text: String,
    retry_after: Option<std::time::Duration>,
) -> ProviderError {
    // Route 53 answers a whole change batch with one code; the message tells which case.
    let batch = code == "InvalidChangeBatch";
    if status == 429 || THROTTLED.contains(&code) {
        ProviderError::throttled(text, retry_after)
    } else if status >= 500 || RETRYABLE.contains(&code) {
        ProviderError::transient(text)
    } else if AUTH.contains(&code) || status == 403 {
        ProviderError::auth(text)
    } else if NOT_FOUND.contains(&code) || (batch && msg.contains("not found")) {
        ProviderError::not_found(text)
    } else if ALREADY_EXISTS.contains(&code) || (batch && msg.contains("already exists")) {
        ProviderError::already_exists(text)
    } else {
        ProviderError::failed(text)
    }
}

/// The `Retry-After` seconds of a response, when it sends one.
fn retry_after(raw: &HttpResponse) -> Option<std::time::Duration> {
    raw.headers()
        .get("retry-after")
        .and_then(|v| v.trim().parse::<u64>().ok())
        .map(std::time::Duration::from_secs)
}
