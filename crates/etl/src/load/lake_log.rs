//! The lake's own log of runs, `<output>/_runs/_log/`: which run may commit
//! next, and which table versions each committed run made.
//!
//! Five Delta tables cannot be committed in one atomic step, so runs take
//! turns. Before its first table commit a run claims the next sequence
//! number, `<seq>.claim`, with a put-if-absent: of two runs that read the
//! same last number, exactly one gets it. Once its tables are committed it
//! writes `<seq>.json`, the record of the versions it made; a claim with
//! its record is settled. A run may claim only the number after the one it
//! saw when it started, and only once that one is settled (or its claim is
//! older than `--claim-timeout`, when its run is taken as dead: the new
//! run replaces every table anyway).
//!
//! Plain Parquet output (`--table-format parquet`) has no table log to
//! decide between two writers, so a Parquet run holds a [`Lease`] instead:
//! it claims the next number before it writes anything and settles it when
//! it has published or failed. A second run meanwhile refuses to start,
//! and no run deletes another's folder while that one may still publish.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use futures::TryStreamExt;
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt, PutMode, PutOptions, PutPayload};
use serde::{Deserialize, Serialize};

use crate::error::{EtlError, Result};
use crate::location::Location;

/// The folder of the log, under the output.
pub const LOG_DIR: &str = "_runs/_log";

/// Who holds a sequence number, written when it is claimed.
#[derive(Debug, Serialize, Deserialize)]
pub struct Claim {
    pub run_id: String,
    /// RFC 3339.
    pub claimed_at: String,
}

/// What a settled run did to the lake.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct RunRecord {
    pub seq: u64,
    pub run_id: String,
    /// `run` for a run of the ETL, `rollback to <run id>` for a rollback.
    pub action: String,
    pub committed_at: String,
    /// Each table's Delta version after this run, in commit order.
    pub tables: BTreeMap<String, u64>,
}

/// How the run before this one ended its hold on the lake.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Settled {
    /// It recorded its commits.
    Recorded,
    /// It died holding its claim, longer than `--claim-timeout` ago.
    Abandoned,
}

/// The log of one output.
#[derive(Clone)]
pub struct LakeLog {
    store: Arc<dyn ObjectStore>,
    dir: Location,
}

impl LakeLog {
    pub fn new(store: Arc<dyn ObjectStore>, output: &Location) -> Self {
        Self {
            store,
            dir: output.join(LOG_DIR),
        }
    }

    fn path(&self, seq: u64, extension: &str) -> Path {
        self.dir
            .object_path()
            .join(format!("{seq:020}.{extension}"))
    }

    /// The highest sequence number claimed so far, if any.
    pub async fn last_claimed(&self) -> Result<Option<u64>> {
        let names: Vec<Path> = self
            .store
            .list(Some(&self.dir.object_path()))
            .map_ok(|meta| meta.location)
            .try_collect()
            .await
            .map_err(|e| EtlError::store(format!("listing {}", self.dir), e))?;
        Ok(names
            .iter()
            .filter_map(|p| p.filename()?.strip_suffix(".claim")?.parse().ok())
            .max())
    }

    /// Takes `seq` for `run_id`, or fails with [`EtlError::ConcurrentRun`]
    /// naming the run that took it first.
    pub async fn claim(&self, seq: u64, run_id: &str) -> Result<()> {
        let claim = Claim {
            run_id: run_id.to_string(),
            claimed_at: chrono::Utc::now().to_rfc3339(),
        };
        let options = PutOptions::from(PutMode::Create);
        let bytes = serde_json::to_vec(&claim).expect("a claim serialises");
        match self
            .store
            .put_opts(&self.path(seq, "claim"), PutPayload::from(bytes), options)
            .await
        {
            Ok(_) => Ok(()),
            Err(object_store::Error::AlreadyExists { .. }) => {
                let winner = self.read_claim(seq).await?;
                if winner.run_id == run_id {
                    // Our own put, retried after its answer was lost.
                    return Ok(());
                }
                Err(EtlError::ConcurrentRun(format!(
                    "run {} committed to {} while this run ran",
                    winner.run_id,
                    self.output()
                )))
            }
            Err(e) => Err(EtlError::store(format!("claiming {}", self.dir), e)),
        }
    }

    /// Fails with [`EtlError::ConcurrentRun`] while the run holding `seq`
    /// has not recorded its commits and its claim is younger than
    /// `timeout`; an older unsettled claim is a dead run's, and is logged.
    pub async fn check_settled(&self, seq: u64, timeout: Duration) -> Result<Settled> {
        if self.record(seq).await?.is_some() {
            return Ok(Settled::Recorded);
        }
        let claim = self.read_claim(seq).await?;
        let age = chrono::DateTime::parse_from_rfc3339(&claim.claimed_at)
            .map(|at| chrono::Utc::now().signed_duration_since(at))
            .ok()
            .and_then(|age| age.to_std().ok())
            .unwrap_or_default();
        if age < timeout {
            return Err(EtlError::ConcurrentRun(format!(
                "run {} holds {} (claimed {}s ago); a run killed while holding it releases it after --claim-timeout {}",
                claim.run_id,
                self.output(),
                age.as_secs(),
                humantime::format_duration(timeout)
            )));
        }
        tracing::warn!(
            "run {} claimed {} {}s ago and never finished its commits; this run replaces its tables",
            claim.run_id,
            self.output(),
            age.as_secs()
        );
        Ok(Settled::Abandoned)
    }

    /// Holds the output for `run_id` from now until the lease is settled;
    /// fails with [`EtlError::ConcurrentRun`] while another run holds it.
    pub async fn lease(&self, run_id: &str, timeout: Duration) -> Result<Lease> {
        let base = self.last_claimed().await?;
        if let Some(base) = base {
            self.check_settled(base, timeout).await?;
        }
        let seq = base.map_or(1, |b| b + 1);
        self.claim(seq, run_id).await?;
        Ok(Lease {
            log: self.clone(),
            seq,
            run_id: run_id.to_string(),
        })
    }

    /// Records what the run holding `record.seq` committed.
    pub async fn write_record(&self, record: &RunRecord) -> Result<()> {
        let bytes = serde_json::to_vec_pretty(record).expect("a record serialises");
        self.store
            .put(&self.path(record.seq, "json"), PutPayload::from(bytes))
            .await
            .map(|_| ())
            .map_err(|e| EtlError::store(format!("writing {}", self.dir), e))
    }

    /// The record of `seq`, if its run settled.
    pub async fn record(&self, seq: u64) -> Result<Option<RunRecord>> {
        let Some(bytes) = self.read(&self.path(seq, "json")).await? else {
            return Ok(None);
        };
        serde_json::from_slice(&bytes).map(Some).map_err(|e| {
            EtlError::Delta(format!(
                "{}/{seq:020}.json is not a run record: {e}",
                self.dir
            ))
        })
    }

    /// Every settled run, oldest first.
    pub async fn records(&self) -> Result<Vec<RunRecord>> {
        let mut records = Vec::new();
        let Some(last) = self.last_claimed().await? else {
            return Ok(records);
        };
        for seq in 1..=last {
            records.extend(self.record(seq).await?);
        }
        Ok(records)
    }

    async fn read_claim(&self, seq: u64) -> Result<Claim> {
        let bytes = self
            .read(&self.path(seq, "claim"))
            .await?
            .unwrap_or_default();
        serde_json::from_slice(&bytes).map_err(|e| {
            EtlError::Delta(format!("{}/{seq:020}.claim is not a claim: {e}", self.dir))
        })
    }

    async fn read(&self, path: &Path) -> Result<Option<bytes::Bytes>> {
        let context = || format!("reading {}", self.dir);
        match self.store.get(path).await {
            Ok(got) => got
                .bytes()
                .await
                .map(Some)
                .map_err(|e| EtlError::store(context(), e)),
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(EtlError::store(context(), e)),
        }
    }

    fn output(&self) -> String {
        let url = self.dir.url();
        url.trim_end_matches('/')
            .strip_suffix(LOG_DIR)
            .unwrap_or(&url)
            .trim_end_matches('/')
            .to_string()
    }
}

/// A run's hold on an output, from its claim until it settles.
pub struct Lease {
    log: LakeLog,
    seq: u64,
    run_id: String,
}

impl Lease {
    /// Fails with [`EtlError::ConcurrentRun`] when a later run claimed the
    /// output: this run's claim outlived `--claim-timeout` and was taken
    /// as dead's, so it must not publish over the newer run.
    pub async fn check_held(&self) -> Result<()> {
        match self.log.last_claimed().await? {
            Some(last) if last != self.seq => {
                let newer = self.log.read_claim(last).await?;
                Err(EtlError::ConcurrentRun(format!(
                    "run {} took {} after this run held it longer than --claim-timeout",
                    newer.run_id,
                    self.log.output()
                )))
            }
            _ => Ok(()),
        }
    }

    /// Ends the hold: `action` says what the run did (`run` when it
    /// published, `failed` when it stopped).
    pub async fn settle(&self, action: &str) -> Result<()> {
        self.log
            .write_record(&RunRecord {
                seq: self.seq,
                run_id: self.run_id.clone(),
                action: action.to_string(),
                committed_at: chrono::Utc::now().to_rfc3339(),
                tables: BTreeMap::new(),
            })
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn local_log() -> (tempfile::TempDir, LakeLog) {
        let dir = tempfile::tempdir().unwrap();
        let output = Location::parse(dir.path().to_str().unwrap()).unwrap();
        let store: Arc<dyn ObjectStore> = Arc::new(object_store::local::LocalFileSystem::new());
        (dir, LakeLog::new(store, &output))
    }

    #[tokio::test]
    async fn of_two_runs_claiming_one_number_exactly_one_gets_it() {
        let (_dir, log) = local_log();
        assert_eq!(log.last_claimed().await.unwrap(), None);
        let (a, b) = futures::join!(log.claim(1, "run-a"), log.claim(1, "run-b"));
        let (won, lost) = match (a, b) {
            (Ok(()), Err(lost)) => ("run-a", lost),
            (Err(lost), Ok(())) => ("run-b", lost),
            other => panic!("exactly one claim succeeds: {other:?}"),
        };
        assert!(matches!(lost, EtlError::ConcurrentRun(_)));
        assert!(
            lost.to_string()
                .starts_with(&format!("run {won} committed to file://")),
            "{lost}"
        );
        assert_eq!(log.last_claimed().await.unwrap(), Some(1));
    }

    #[tokio::test]
    async fn a_lease_keeps_a_second_run_out_until_it_settles() {
        let (_dir, log) = local_log();
        let hour = Duration::from_secs(3600);
        let lease = log.lease("run-a", hour).await.unwrap();
        let refused = log.lease("run-b", hour).await.err().unwrap();
        assert!(matches!(refused, EtlError::ConcurrentRun(_)), "{refused}");
        lease.check_held().await.unwrap();
        lease.settle("failed").await.unwrap();
        let next = log.lease("run-b", hour).await.unwrap();
        // A dead run's lease lapses; the run that outlived it must not publish.
        let stale = log.lease("run-c", Duration::ZERO).await.unwrap();
        let lost = next.check_held().await.unwrap_err();
        assert!(lost.to_string().starts_with("run run-c took"), "{lost}");
        stale.check_held().await.unwrap();
    }

    #[tokio::test]
    async fn an_unsettled_claim_blocks_until_it_is_recorded_or_times_out() {
        let (_dir, log) = local_log();
        log.claim(1, "run-a").await.unwrap();
        let hour = Duration::from_secs(3600);
        let blocked = log.check_settled(1, hour).await.unwrap_err();
        assert!(
            blocked.to_string().contains("run run-a holds file://"),
            "{blocked}"
        );
        assert_eq!(
            log.check_settled(1, Duration::ZERO).await.unwrap(),
            Settled::Abandoned
        );

        let record = RunRecord {
            seq: 1,
            run_id: "run-a".into(),
            action: "run".into(),
            committed_at: "2026-12-05T00:00:00Z".into(),
            tables: BTreeMap::from([("songs".to_string(), 0)]),
        };
        log.write_record(&record).await.unwrap();
        assert_eq!(log.check_settled(1, hour).await.unwrap(), Settled::Recorded);
        assert_eq!(log.records().await.unwrap(), vec![record]);
    }
}
