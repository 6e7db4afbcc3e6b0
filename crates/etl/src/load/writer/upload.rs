//! One writer task's uploads to an object store: how many may be in
//! flight, and the call that makes one.

use std::sync::Arc;

use datafusion::common::{DataFusionError, Result};
use object_store::ObjectStore;
use object_store::buffered::BufWriter;
use object_store::path::Path;

/// How much one task uploads at once (one upload of any size may always
/// start).
#[derive(Clone, Copy, Debug)]
pub(super) struct UploadLimits {
    pub(super) files: usize,
    pub(super) bytes: usize,
}

impl UploadLimits {
    /// Small partition files are latency-bound on S3, so many must be in
    /// the air to keep a task busy: at 20 ms a request, 128 uploads move
    /// 6,400 small files a second per task. Files of up to the target size
    /// (128 MiB by default) must not pile up in memory behind a slow store,
    /// hence the bytes.
    pub(super) const DEFAULT: Self = Self {
        files: 128,
        bytes: 256 * 1024 * 1024,
    };

    /// Whether one more upload of `bytes` must wait for one of the `files`
    /// uploads of `in_flight` bytes already going.
    pub(super) fn must_wait(&self, files: usize, in_flight: usize, bytes: usize) -> bool {
        files > 0 && (files >= self.files || in_flight + bytes > self.bytes)
    }
}

/// One PUT for a small file, a multipart upload for a large one.
pub(super) async fn upload(
    store: Arc<dyn ObjectStore>,
    path: Path,
    url: &str,
    bytes: Vec<u8>,
) -> Result<()> {
    use tokio::io::AsyncWriteExt;
    let failed =
        |e: &dyn std::fmt::Display| DataFusionError::External(format!("writing {url}: {e}").into());
    let mut writer = BufWriter::with_capacity(store, path, 16 * 1024 * 1024);
    writer.put(bytes.into()).await.map_err(|e| failed(&e))?;
    writer.shutdown().await.map_err(|e| failed(&e))
}

#[cfg(test)]
pub(super) use tests::HeldPuts;

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// A store whose puts each wait for a permit, counting the bytes of
    /// the puts that have started and not finished.
    #[derive(Debug)]
    pub(crate) struct HeldPuts {
        pub(crate) inner: object_store::memory::InMemory,
        pub(crate) permits: tokio::sync::Semaphore,
        pub(crate) put_started: tokio::sync::Notify,
        pub(crate) started: AtomicUsize,
        pub(crate) in_flight: AtomicUsize,
        pub(crate) peak: AtomicUsize,
    }

    impl HeldPuts {
        pub(crate) fn new() -> Self {
            Self {
                inner: object_store::memory::InMemory::new(),
                permits: tokio::sync::Semaphore::new(0),
                put_started: tokio::sync::Notify::new(),
                started: AtomicUsize::new(0),
                in_flight: AtomicUsize::new(0),
                peak: AtomicUsize::new(0),
            }
        }
    }

    impl std::fmt::Display for HeldPuts {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            write!(f, "HeldPuts")
        }
    }

    #[async_trait::async_trait]
    impl ObjectStore for HeldPuts {
        async fn put_opts(
            &self,
            location: &Path,
            payload: object_store::PutPayload,
            opts: object_store::PutOptions,
        ) -> object_store::Result<object_store::PutResult> {
            let bytes = payload.content_length();
            let now = self.in_flight.fetch_add(bytes, Ordering::SeqCst) + bytes;
            self.peak.fetch_max(now, Ordering::SeqCst);
            self.started.fetch_add(1, Ordering::SeqCst);
            self.put_started.notify_one();
            self.permits.acquire().await.expect("never closed").forget();
            self.in_flight.fetch_sub(bytes, Ordering::SeqCst);
            self.inner.put_opts(location, payload, opts).await
        }

        async fn put_multipart_opts(
            &self,
            location: &Path,
            opts: object_store::PutMultipartOptions,
        ) -> object_store::Result<Box<dyn object_store::MultipartUpload>> {
            self.inner.put_multipart_opts(location, opts).await
        }

        async fn get_opts(
            &self,
            location: &Path,
            options: object_store::GetOptions,
        ) -> object_store::Result<object_store::GetResult> {
            self.inner.get_opts(location, options).await
        }

        fn delete_stream(
            &self,
            locations: futures::stream::BoxStream<'static, object_store::Result<Path>>,
        ) -> futures::stream::BoxStream<'static, object_store::Result<Path>> {
            self.inner.delete_stream(locations)
        }

        fn list(
            &self,
            prefix: Option<&Path>,
        ) -> futures::stream::BoxStream<'static, object_store::Result<object_store::ObjectMeta>>
        {
            self.inner.list(prefix)
        }

        async fn list_with_delimiter(
            &self,
            prefix: Option<&Path>,
        ) -> object_store::Result<object_store::ListResult> {
            self.inner.list_with_delimiter(prefix).await
        }

        async fn copy_opts(
            &self,
            from: &Path,
            to: &Path,
            options: object_store::CopyOptions,
        ) -> object_store::Result<()> {
            self.inner.copy_opts(from, to, options).await
        }
    }

    #[test]
    fn an_upload_waits_at_either_limit_but_one_always_starts() {
        let limits = UploadLimits {
            files: 2,
            bytes: 100,
        };
        assert!(!limits.must_wait(0, 0, 1_000));
        assert!(!limits.must_wait(1, 40, 60));
        assert!(limits.must_wait(1, 40, 61));
        assert!(limits.must_wait(2, 2, 2));
    }
}
