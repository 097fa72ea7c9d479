//! Classifying SDK errors: throttling, 5xx and transport failures are retryable; access
//! errors are authentication failures; the rest are fatal with the service's message.

use aws_sdk_s3::config::http::HttpResponse;
use aws_sdk_s3::error::{ProvideErrorMetadata, SdkError};

use crate::providers::ProviderError;

const RETRYABLE: &[&str] = &[
    "Throttling",
    "ThrottlingException",
    "ThrottledException",
    "RequestLimitExceeded",
    "TooManyRequestsException",
    "PriorRequestNotComplete",
    "SlowDown",
    "RequestThrottled",
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
        SdkError::TimeoutError(_) | SdkError::DispatchFailure(_) | SdkError::ResponseError(_) => {
            ProviderError::Transient(format!("{what}: {}", aws_smithy_display(&e)))
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
            if status >= 500 || status == 429 || RETRYABLE.contains(&code) {
                ProviderError::Transient(text)
            } else if AUTH.contains(&code) || status == 403 {
                ProviderError::Auth(text)
            } else {
                ProviderError::Failed(text)
            }
        }
        _ => ProviderError::Failed(format!("{what}: {}", aws_smithy_display(&e))),
    }
}

fn aws_smithy_display<E: std::error::Error + 'static>(e: &SdkError<E, HttpResponse>) -> String {
    let mut s = e.to_string();
    let mut src = std::error::Error::source(e);
    while let Some(x) = src {
        s = format!("{s}: {x}");
        src = x.source();
    }
    s
}
