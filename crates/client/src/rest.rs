//! The scheduler's REST API (served on its gRPC port): liveness, registered
//! executors, and the progress of jobs, read into Ballista's own response
//! types (`ballista-api-types`) where it has them.

use std::time::{Duration, Instant};

use ballista_api_types::dto::{
    JobResponse, QueryStageSummary, QueryStagesResponse, TaskStatus, TaskSummary,
};
use etl::report::StageReport;
use serde::Deserialize;

use crate::error::ClusterError;
use cluster::shuffle::{JobShuffle, StageShuffle};

/// How often registration is checked while waiting for executors: after
/// the first pause, each is twice the last, up to the longest. An executor
/// in the client's own process registers within milliseconds of its start,
/// and the run waits on it.
const FIRST_REGISTRATION_POLL: Duration = Duration::from_millis(5);
const LONGEST_REGISTRATION_POLL: Duration = Duration::from_millis(200);

/// A client of one scheduler's REST API.
#[derive(Clone, Debug)]
pub struct SchedulerRest {
    address: String,
    http: reqwest::Client,
}

/// An executor as `/api/executors` lists it.
#[derive(Clone, Debug, Deserialize)]
pub struct ExecutorInfo {
    pub id: String,
    #[serde(default)]
    pub host: String,
    #[serde(default)]
    pub port: u32,
    #[serde(default)]
    pub specification: serde_json::Value,
}

impl ExecutorInfo {
    /// Task slots the executor advertises (1 if it does not say).
    pub fn vcores(&self) -> usize {
        fn find(value: &serde_json::Value) -> Option<u64> {
            match value {
                serde_json::Value::Object(map) => map
                    .get("vcores")
                    .and_then(serde_json::Value::as_u64)
                    .or_else(|| map.values().find_map(find)),
                serde_json::Value::Array(items) => items.iter().find_map(find),
                _ => None,
            }
        }
        find(&self.specification).map_or(1, |v| v.max(1) as usize)
    }
}

/// Which scheduler process answers: a restarted scheduler has a new start
/// time, and has forgotten every job the old one ran.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
pub struct SchedulerIdentity {
    pub scheduler_id: String,
    pub started: u128,
}

/// A stage as the run report shows it, with what it wrote for the next
/// stage (nothing when the scheduler does not say).
pub fn stage_report(stage: &QueryStageSummary, shuffle: Option<&StageShuffle>) -> StageReport {
    let (shuffle_blocks, shuffle_bytes) = shuffle.map_or((0, 0), |s| (s.blocks, s.bytes));
    let tasks: Vec<&TaskSummary> = stage.tasks.iter().flatten().collect();
    let first = tasks.iter().map(|t| t.start_exec_time).min().unwrap_or(0);
    let last = tasks.iter().map(|t| t.end_exec_time).max().unwrap_or(0);
    StageReport {
        stage: stage.stage_id.clone(),
        tasks: tasks.len(),
        seconds: last.saturating_sub(first) as f64 / 1000.0,
        input_rows: stage.input_rows as u64,
        output_rows: stage.output_rows as u64,
        shuffle_blocks,
        shuffle_bytes,
        task_ms: tasks.iter().map(|t| t.exec_duration).collect(),
    }
}

/// Tasks finished and tasks known (started), over all stages of a job.
pub fn task_counts(stages: &QueryStagesResponse) -> (usize, usize) {
    tasks(stages).fold((0, 0), |(done, all), t| {
        let done_now = matches!(t.status, TaskStatus::Successful);
        (done + usize::from(done_now), all + 1)
    })
}

/// Tasks running now, over all stages of a job.
pub fn running_tasks(stages: &QueryStagesResponse) -> usize {
    tasks(stages)
        .filter(|t| matches!(t.status, TaskStatus::Running))
        .count()
}

/// Every task the scheduler has started, over all stages.
fn tasks(stages: &QueryStagesResponse) -> impl Iterator<Item = &TaskSummary> {
    stages.stages.iter().flat_map(|s| s.tasks.iter().flatten())
}

impl SchedulerRest {
    /// `address` is the scheduler's `host:port`.
    pub fn new(address: &str) -> Result<Self, ClusterError> {
        let address = address
            .trim_start_matches("http://")
            .trim_end_matches('/')
            .to_string();
        if !address.contains(':') {
            return Err(ClusterError::SchedulerAddress(address));
        }
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(5))
            .timeout(Duration::from_secs(30))
            .build()
            .map_err(|e| ClusterError::unreachable(&address, e))?;
        Ok(Self { address, http })
    }

    /// Checks that the scheduler answers and waits until at least one
    /// executor has registered; returns the registered executors.
    pub async fn connect(
        address: &str,
        executor_timeout: Duration,
    ) -> Result<(Self, Vec<ExecutorInfo>), ClusterError> {
        let rest = Self::new(address)?;
        rest.version().await?;
        let executors = rest.wait_for_executors(executor_timeout).await?;
        Ok((rest, executors))
    }

    /// The URL Ballista's gRPC client takes.
    pub fn grpc_url(&self) -> String {
        format!("http://{}", self.address)
    }

    pub fn address(&self) -> &str {
        &self.address
    }

    async fn get<T: for<'de> Deserialize<'de>>(&self, path: &str) -> Result<T, ClusterError> {
        let url = format!("http://{}{path}", self.address);
        let response = self
            .http
            .get(&url)
            .send()
            .await
            .and_then(|r| r.error_for_status())
            .map_err(|e| ClusterError::unreachable(&self.address, e))?;
        response
            .json()
            .await
            .map_err(|e| ClusterError::unreachable(&self.address, e))
    }

    /// Ballista's version, which doubles as a liveness check.
    pub async fn version(&self) -> Result<serde_json::Value, ClusterError> {
        self.get("/api/version").await
    }

    pub async fn identity(&self) -> Result<SchedulerIdentity, ClusterError> {
        self.get("/api/state").await
    }

    pub async fn executors(&self) -> Result<Vec<ExecutorInfo>, ClusterError> {
        self.get("/api/executors").await
    }

    pub async fn jobs(&self) -> Result<Vec<JobResponse>, ClusterError> {
        self.get("/api/jobs").await
    }

    pub async fn stages(&self, job_id: &str) -> Result<QueryStagesResponse, ClusterError> {
        self.get(&format!("/api/job/{job_id}/stages")).await
    }

    /// Asks the scheduler to cancel job `job_id` (Ballista's `PATCH /api/job/{id}`).
    pub async fn cancel(&self, job_id: &str) -> Result<(), ClusterError> {
        let url = format!("http://{}/api/job/{job_id}", self.address);
        self.http
            .patch(&url)
            .send()
            .await
            .and_then(|r| r.error_for_status())
            .map_err(|e| ClusterError::unreachable(&self.address, e))?;
        Ok(())
    }

    /// What each stage of a finished job wrote (our scheduler's endpoint).
    pub async fn shuffle(&self, job_id: &str) -> Result<JobShuffle, ClusterError> {
        self.get(&format!("/api/job/{job_id}/shuffle")).await
    }

    /// Waits until at least one executor has registered.
    pub async fn wait_for_executors(
        &self,
        timeout: Duration,
    ) -> Result<Vec<ExecutorInfo>, ClusterError> {
        let deadline = Instant::now() + timeout;
        let mut pause = FIRST_REGISTRATION_POLL;
        loop {
            let executors = self.executors().await?;
            if !executors.is_empty() {
                return Ok(executors);
            }
            if Instant::now() >= deadline {
                return Err(ClusterError::NoExecutors {
                    scheduler: self.address.clone(),
                    waited: timeout,
                });
            }
            tokio::time::sleep(pause).await;
            pause = (pause * 2).min(LONGEST_REGISTRATION_POLL);
        }
    }
}
