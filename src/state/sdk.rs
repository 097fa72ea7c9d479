//! Async calls from the synchronous state layer (the S3 and PostgreSQL backends, KMS
//! master keys): a small runtime of its own, driven from a scoped thread so a call works from any thread
//! or async context, and taken apart without blocking.

/// A runtime for SDK calls.
pub(super) struct Rt(Option<tokio::runtime::Runtime>);

impl Rt {
    /// A one-worker runtime.
    pub(super) fn new() -> std::io::Result<Rt> {
        Ok(Rt(Some(
            tokio::runtime::Builder::new_multi_thread()
                .worker_threads(1)
                .enable_all()
                .build()?,
        )))
    }

    /// Runs `f` to completion on this runtime.
    pub(super) fn call<T: Send, F: std::future::Future<Output = T> + Send>(&self, f: F) -> T {
        let rt = self
            .0
            .as_ref()
            .expect("the runtime lives as long as its owner");
        std::thread::scope(|s| {
            s.spawn(|| rt.block_on(f))
                .join()
                .expect("an SDK call panicked")
        })
    }

    /// The AWS configuration of the standard chain, in `region` when given.
    pub(super) fn aws_config(&self, region: Option<&str>) -> aws_config::SdkConfig {
        self.call(async {
            let mut loader = aws_config::defaults(aws_config::BehaviorVersion::latest());
            if let Some(r) = region {
                loader = loader.region(aws_config::Region::new(r.to_string()));
            }
            loader.load().await
        })
    }
}

impl Drop for Rt {
    fn drop(&mut self) {
        if let Some(rt) = self.0.take() {
            rt.shutdown_background();
        }
    }
}
