//! The locations a scheduler or executor may read and write
//! (`--allowed-locations`). Anyone who reaches a scheduler's port can submit
//! a plan, and a plan names its own input and output URLs: without this
//! fence a plan could scan `file:///etc` on an executor and read the lines
//! back through the reject text, or write into a lake it was not meant for.
//!
//! Our operators are checked when a plan is decoded (the scan's root, the
//! writer's table and attempt folders), so a refused plan fails with one
//! line before any task runs; a scan also reads only files under its root.
//! DataFusion's own file scans are fenced at the object store: a role hands
//! out stores only for the allowed locations' buckets (see the `cluster`
//! crate's object stores).

use std::fmt;

use crate::error::{EtlError, Result};
use crate::location::Location;

/// Folders a role may touch, or anywhere (the client, and roles started
/// without the flag).
#[derive(Clone, Debug, Default)]
pub struct AllowedLocations {
    /// `None`: anywhere.
    roots: Option<Vec<Location>>,
}

impl AllowedLocations {
    /// No fence: the client, which runs what its own user asked for.
    pub fn anywhere() -> Self {
        Self::default()
    }

    /// The folders a flag lists (`s3://lake/raw,s3://lake/sparkify`); an
    /// empty list allows anywhere.
    pub fn parse(list: &[String]) -> Result<Self> {
        let roots = list
            .iter()
            .filter(|text| !text.trim().is_empty())
            .map(|text| {
                Location::parse(text)
                    .map_err(|e| EtlError::Location(format!("--allowed-locations: {e}")))
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(Self {
            roots: (!roots.is_empty()).then_some(roots),
        })
    }

    /// Refuses a plan's location outside every allowed folder; `role` says
    /// what the plan does there (`reads`, `writes`).
    pub fn check(&self, url: &str, role: &str) -> datafusion::common::Result<()> {
        let Some(roots) = &self.roots else {
            return Ok(());
        };
        let location = Location::of_plan(url)?;
        if roots.iter().any(|root| location.is_within(root)) {
            return Ok(());
        }
        Err(datafusion::common::DataFusionError::Plan(format!(
            "plan refused: it {role} {url}, outside the allowed locations ({self})"
        )))
    }

    /// Whether a store (`file://`, `s3://bucket`) holds an allowed folder.
    pub fn allows_store(&self, store_url: &str) -> bool {
        self.roots
            .as_ref()
            .is_none_or(|roots| roots.iter().any(|root| root.store_url() == store_url))
    }
}

impl fmt::Display for AllowedLocations {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        match &self.roots {
            None => f.write_str("anywhere"),
            Some(roots) => {
                let urls: Vec<String> = roots.iter().map(Location::url).collect();
                f.write_str(&urls.join(", "))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn allowed(list: &[&str]) -> AllowedLocations {
        AllowedLocations::parse(&list.iter().map(|s| s.to_string()).collect::<Vec<_>>()).unwrap()
    }

    #[test]
    fn only_folders_under_an_allowed_one_pass() {
        let fence = allowed(&["s3://lake/raw", "s3://lake/sparkify"]);
        assert!(fence.check("s3://lake/raw", "reads").is_ok());
        assert!(fence.check("s3://lake/sparkify/songs", "writes").is_ok());
        let refused = fence.check("s3://lake/rawer", "reads").unwrap_err();
        assert!(
            refused.to_string().contains(
                "plan refused: it reads s3://lake/rawer, outside the allowed locations \
                 (s3://lake/raw, s3://lake/sparkify)"
            ),
            "{refused}"
        );
        assert!(fence.check("file:///etc", "reads").is_err());
        assert!(fence.check("s3://other/raw", "reads").is_err());
    }

    #[test]
    fn stores_are_allowed_by_bucket() {
        let fence = allowed(&["s3://lake/raw"]);
        assert!(fence.allows_store("s3://lake"));
        assert!(!fence.allows_store("s3://other"));
        assert!(!fence.allows_store("file://"));
    }

    #[test]
    fn no_list_allows_anywhere_and_a_bad_entry_is_named() {
        let open = allowed(&[]);
        assert!(open.check("file:///etc", "reads").is_ok());
        assert!(open.allows_store("file://"));
        let bad = AllowedLocations::parse(&["ftp://x".to_string()]).unwrap_err();
        assert!(bad.to_string().contains("--allowed-locations"), "{bad}");
    }
}
