//! An HTTP client for Azure Resource Manager calls that makes each request (the SDK's
//! retries and operation polls included) wait for a token of the subscription's read or
//! write budget, and reports `429` answers to it.

use std::sync::Arc;

use async_trait::async_trait;
use azure_core::{HttpClient, Method, Request, Response};

use crate::providers::budget::Budgets;

/// Wraps the transport of one subscription's ARM clients.
#[derive(Debug)]
pub(super) struct BudgetHttp {
    pub(super) inner: Arc<dyn HttpClient>,
    pub(super) budgets: Arc<Budgets>,
    pub(super) subscription: String,
}

#[async_trait]
impl HttpClient for BudgetHttp {
    async fn execute_request(&self, request: &Request) -> azure_core::Result<Response> {
        let service = if *request.method() == Method::Get {
            "arm-read"
        } else {
            "arm-write"
        };
        let bucket = self.budgets.bucket("azure", &self.subscription, service);
        if let Some(b) = &bucket {
            b.acquire().await;
        }
        let resp = self.inner.execute_request(request).await?;
        if let Some(b) = &bucket {
            if u16::from(resp.status()) == 429 {
                b.throttled();
            } else if resp.status().is_success() {
                b.succeeded();
            }
        }
        Ok(resp)
    }
}
