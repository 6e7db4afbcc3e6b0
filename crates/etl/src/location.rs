//! Where input is read from and output written to: a local path, a
//! `file://` URL or an `s3://bucket/prefix` URL, normalised into one URL form
//! that every role of the cluster resolves to the same object store.

use std::fmt;
use std::path::Path as FsPath;
use std::sync::Arc;

use datafusion::error::DataFusionError;
use datafusion::execution::TaskContext;
use datafusion::execution::object_store::ObjectStoreUrl;
use object_store::ObjectStore;
use object_store::path::Path;
use url::Url;

use crate::error::{EtlError, Result};

/// A folder in an object store.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Location {
    url: Url,
}

impl Location {
    /// Parses what a user typed. Relative local paths are taken from the
    /// current directory; a local path need not exist yet.
    pub fn parse(text: &str) -> Result<Self> {
        let text = text.trim();
        if text.is_empty() {
            return Err(EtlError::Location("empty location".into()));
        }
        let url = if text.contains("://") {
            Url::parse(text)
                .map_err(|e| EtlError::Location(format!("'{text}' is not a valid URL: {e}")))?
        } else {
            let path = std::path::absolute(FsPath::new(text))
                .map_err(|e| EtlError::Location(format!("'{text}' is not a usable path: {e}")))?;
            Url::from_directory_path(normalise(&path))
                .map_err(|()| EtlError::Location(format!("'{text}' is not a usable path")))?
        };
        Self::from_url(url, text)
    }

    fn from_url(mut url: Url, text: &str) -> Result<Self> {
        match url.scheme() {
            "file" => {}
            "s3" => {
                if url.host_str().is_none_or(str::is_empty) {
                    return Err(EtlError::Location(format!(
                        "'{text}' names no bucket (want s3://bucket/prefix)"
                    )));
                }
            }
            other => {
                return Err(EtlError::Location(format!(
                    "'{text}': unsupported scheme '{other}' (use a local path, file:// or s3://)"
                )));
            }
        }
        if !url.path().ends_with('/') {
            let path = format!("{}/", url.path());
            url.set_path(&path);
        }
        // Checked here, once: a path object_store cannot take (an empty
        // segment, `a//b`) would otherwise become the store's root.
        Path::from_url_path(url.path())
            .map_err(|e| EtlError::Location(format!("'{text}' has an unusable path: {e}")))?;
        Ok(Self { url })
    }

    /// A location as a plan carries it, read back inside a task: a URL
    /// the client checked with [`Location::parse`] before sending it.
    pub fn of_plan(url: &str) -> datafusion::common::Result<Self> {
        Self::parse(url).map_err(|e| DataFusionError::Configuration(e.to_string()))
    }

    /// DataFusion's key for the store of this location.
    pub fn object_store_url(&self) -> ObjectStoreUrl {
        ObjectStoreUrl::parse(self.store_url()).expect("scheme://authority is a store URL")
    }

    /// The store a task reaches this location through, as its runtime
    /// registered it.
    pub fn task_store(
        &self,
        context: &TaskContext,
    ) -> datafusion::common::Result<Arc<dyn ObjectStore>> {
        context.runtime_env().object_store(self.object_store_url())
    }

    /// `file://` or `s3://bucket`: the key of the object store.
    pub fn store_url(&self) -> String {
        format!("{}://{}", self.url.scheme(), self.url.authority())
    }

    /// The folder's path within its store.
    pub fn object_path(&self) -> Path {
        Path::from_url_path(self.url.path()).expect("checked when parsed")
    }

    /// A sub-folder.
    pub fn join(&self, relative: &str) -> Self {
        let url = self
            .url
            .join(&format!("{}/", relative.trim_matches('/')))
            .expect("relative path joins");
        Self { url }
    }

    /// The URL of an object in the same store, given its object path.
    pub fn object_url(&self, path: &str) -> String {
        format!("{}/{}", self.store_url(), path.trim_start_matches('/'))
    }

    /// The folder's URL without the trailing slash, as shown and as sent in plans.
    pub fn url(&self) -> String {
        self.url.as_str().trim_end_matches('/').to_string()
    }

    /// Whether this folder is `root` or lies under it.
    pub fn is_within(&self, root: &Location) -> bool {
        self.url.as_str().starts_with(root.url.as_str())
    }

    pub fn is_local(&self) -> bool {
        self.url.scheme() == "file"
    }
}

/// Resolves `.` and `..` without touching the disk: the path need not exist.
fn normalise(path: &FsPath) -> std::path::PathBuf {
    use std::path::Component;
    let mut out = std::path::PathBuf::new();
    for component in path.components() {
        match component {
            Component::CurDir => {}
            Component::ParentDir => {
                out.pop();
            }
            other => out.push(other),
        }
    }
    out
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.url())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn s3_urls_keep_bucket_and_prefix() {
        let location = Location::parse("s3://lake/raw/sparkify").unwrap();
        assert_eq!(location.store_url(), "s3://lake");
        assert_eq!(location.object_path().as_ref(), "raw/sparkify");
        assert_eq!(
            location.join("song_data").url(),
            "s3://lake/raw/sparkify/song_data"
        );
        assert_eq!(location.object_url("raw/x.json"), "s3://lake/raw/x.json");
    }

    #[test]
    fn relative_paths_become_absolute_file_urls() {
        let location = Location::parse("sample-data").unwrap();
        let expected = std::env::current_dir().unwrap().join("sample-data");
        assert_eq!(location.url(), format!("file://{}", expected.display()));
        assert_eq!(location.store_url(), "file://");
        assert_eq!(
            location.object_url(location.object_path().as_ref()),
            location.url()
        );
    }

    #[test]
    fn dot_dot_is_resolved() {
        let location = Location::parse("/data/lake/../shared/./raw").unwrap();
        assert_eq!(location.url(), "file:///data/shared/raw");
    }

    #[test]
    fn malformed_locations_are_named() {
        for (text, expect) in [
            ("s3://", "names no bucket"),
            ("gs://bucket/x", "unsupported scheme 'gs'"),
            ("s3://bu cket/x", "not a valid URL"),
            ("", "empty location"),
            ("file:///some/dir//o", "unusable path"),
            ("s3://lake//o", "unusable path"),
        ] {
            let error = Location::parse(text).unwrap_err().to_string();
            assert!(error.contains(expect), "{text}: {error}");
        }
    }
}
