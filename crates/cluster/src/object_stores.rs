//! The object stores every role resolves locations with: the client when it
//! lists input and commits a run, the scheduler when it decodes plans, the
//! executors when they read and write. One registry, so that `s3://bucket`
//! means the same store, with the same credentials and endpoint, everywhere.
//!
//! S3 is configured from the standard AWS environment variables
//! (`AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`, `AWS_SESSION_TOKEN`,
//! `AWS_REGION`/`AWS_DEFAULT_REGION`, `AWS_ENDPOINT_URL`), never from plan
//! settings, which travel between processes and could end up in logs. An
//! `http://` endpoint turns on plain HTTP, which S3-compatible servers need.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use datafusion::common::{DataFusionError, Result};
use datafusion::execution::object_store::ObjectStoreRegistry;
use etl::allowed::AllowedLocations;
use object_store::aws::AmazonS3Builder;
use object_store::local::LocalFileSystem;
use object_store::{ClientOptions, ObjectStore, RetryConfig};
use url::Url;

/// Stores by `scheme://authority`, built on first use and then shared, so
/// that connections are pooled across every plan of a process.
#[derive(Debug, Default)]
pub struct LakeObjectStores {
    stores: RwLock<HashMap<String, Arc<dyn ObjectStore>>>,
    /// Stores are handed out only for these locations' buckets: the fence
    /// DataFusion's own scans meet ([`etl::allowed`]).
    allowed: AllowedLocations,
}

impl LakeObjectStores {
    /// Every store, for the client.
    pub fn new() -> Self {
        Self::default()
    }

    /// Only the stores holding `allowed` locations, for a scheduler or
    /// executor started with `--allowed-locations`.
    pub fn fenced(allowed: AllowedLocations) -> Self {
        Self {
            stores: RwLock::default(),
            allowed,
        }
    }
}

fn key(url: &Url) -> String {
    format!("{}://{}", url.scheme(), url.authority())
}

impl ObjectStoreRegistry for LakeObjectStores {
    fn register_store(
        &self,
        url: &Url,
        store: Arc<dyn ObjectStore>,
    ) -> Option<Arc<dyn ObjectStore>> {
        self.stores
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .insert(key(url), store)
    }

    fn get_store(&self, url: &Url) -> Result<Arc<dyn ObjectStore>> {
        let key = key(url);
        if !self.allowed.allows_store(&key) {
            return Err(DataFusionError::Plan(format!(
                "plan refused: it reaches {key}, outside the allowed locations ({})",
                self.allowed
            )));
        }
        if let Some(store) = self
            .stores
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(&key)
        {
            return Ok(Arc::clone(store));
        }
        let store: Arc<dyn ObjectStore> = match url.scheme() {
            // Deleting a run's files also removes the folders they leave
            // empty, as deleting the objects of a prefix does on S3.
            "file" => Arc::new(LocalFileSystem::new().with_automatic_cleanup(true)),
            "s3" => Arc::new(s3_store(url)?),
            other => {
                return Err(DataFusionError::Configuration(format!(
                    "no object store for '{other}://' locations (use a local path, file:// or s3://)"
                )));
            }
        };
        let mut stores = self.stores.write().unwrap_or_else(|e| e.into_inner());
        Ok(Arc::clone(stores.entry(key).or_insert(store)))
    }
}

/// An S3 bucket, configured from the environment.
fn s3_store(url: &Url) -> Result<object_store::aws::AmazonS3> {
    let bucket = url.host_str().unwrap_or_default();
    let mut builder = AmazonS3Builder::from_env()
        .with_bucket_name(bucket)
        .with_retry(retry_policy())
        .with_client_options(client_options());
    if endpoint_is_plain_http() {
        builder = builder.with_allow_http(true);
    }
    if let Some(why) = no_credentials() {
        return Err(DataFusionError::Configuration(format!(
            "no AWS credentials for S3 bucket '{bucket}': set AWS_ACCESS_KEY_ID and \
             AWS_SECRET_ACCESS_KEY ({why})"
        )));
    }
    builder
        .build()
        .map_err(|e| DataFusionError::Configuration(format!("S3 bucket '{bucket}': {e}")))
}

/// Why no credentials can be found, when that is certain before any
/// request: no static keys, no web identity or container credentials, and
/// no instance metadata to fall back to (an S3-compatible endpoint has
/// none, and `AWS_EC2_METADATA_DISABLED` says so). Without this check the
/// first request would wait out the metadata service's timeouts.
fn no_credentials() -> Option<&'static str> {
    let set = |name: &str| std::env::var(name).is_ok_and(|v| !v.is_empty());
    let other_sources = [
        "AWS_ACCESS_KEY_ID",
        "AWS_WEB_IDENTITY_TOKEN_FILE",
        "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
        "AWS_CONTAINER_CREDENTIALS_FULL_URI",
    ];
    if other_sources.iter().any(|name| set(name)) {
        return None;
    }
    if std::env::var("AWS_EC2_METADATA_DISABLED").is_ok_and(|v| v.eq_ignore_ascii_case("true")) {
        return Some("AWS_EC2_METADATA_DISABLED is true");
    }
    endpoint()
        .is_some()
        .then_some("an S3-compatible endpoint has no instance metadata to take them from")
}

/// The S3-compatible endpoint the environment names, if any.
fn endpoint() -> Option<String> {
    ["AWS_ENDPOINT_URL", "AWS_ENDPOINT", "AWS_ENDPOINT_URL_S3"]
        .iter()
        .filter_map(|name| std::env::var(name).ok())
        .find(|endpoint| !endpoint.is_empty())
}

fn endpoint_is_plain_http() -> bool {
    endpoint().is_some_and(|endpoint| endpoint.starts_with("http://"))
}

/// Transient failures (5xx, throttling, dropped connections, timeouts) are
/// retried with exponential backoff for up to two minutes per request.
fn retry_policy() -> RetryConfig {
    RetryConfig {
        max_retries: 10,
        retry_timeout: Duration::from_secs(120),
        ..RetryConfig::default()
    }
}

fn client_options() -> ClientOptions {
    ClientOptions::new()
        .with_connect_timeout(Duration::from_secs(5))
        .with_timeout(Duration::from_secs(60))
        .with_pool_max_idle_per_host(64)
}
