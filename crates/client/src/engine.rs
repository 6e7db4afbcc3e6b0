//! Running the ETL's jobs on a Ballista scheduler: the client side.
//!
//! The client builds each job's physical plan and submits it as it is
//! (Ballista accepts physical plans), so the plan that runs is exactly the
//! plan `--explain` shows. While a job runs, its progress is read from the
//! scheduler's REST API, served on the same port as its gRPC API.

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use ballista_api_types::dto::JobResponse;
use ballista_core::execution_plans::execute_physical_plan;
use ballista_core::extension::SessionConfigExt;
use datafusion::arrow::array::RecordBatch;
use datafusion::common::Result;
use datafusion::error::DataFusionError;
use datafusion::physical_plan::ExecutionPlan;
use datafusion::prelude::SessionConfig;
use datafusion_proto::protobuf::PhysicalPlanNode;
use etl::report::JobReport;
use etl::run::{Engine, JobOutput};
use futures::TryStreamExt;
use indicatif::{MultiProgress, ProgressBar, ProgressStyle};

use cluster::session::physical_codec;
use cluster::shuffle::JobShuffle;
use etl::allowed::AllowedLocations;

use crate::error::ClusterError;
use crate::rest::{SchedulerIdentity, SchedulerRest, running_tasks, stage_report, task_counts};

/// How often progress is read from the scheduler.
const PROGRESS_INTERVAL: Duration = Duration::from_millis(250);

/// Submits jobs to one scheduler.
pub struct BallistaEngine {
    rest: SchedulerRest,
    /// The scheduler process jobs are submitted to.
    scheduler: SchedulerIdentity,
    config: SessionConfig,
    session_id: String,
    progress: MultiProgress,
}

impl BallistaEngine {
    /// An engine for the scheduler behind `rest`; see [`SchedulerRest::connect`].
    pub async fn new(
        rest: SchedulerRest,
        config: SessionConfig,
        progress: MultiProgress,
    ) -> Result<Self, ClusterError> {
        Ok(Self {
            scheduler: rest.identity().await?,
            rest,
            config,
            session_id: uuid::Uuid::new_v4().to_string(),
            progress,
        })
    }

    /// Why job `name` failed when the scheduler it ran on is gone or was
    /// replaced: Ballista's client then reports only a closed stream.
    async fn scheduler_lost(&self, name: &str) -> Option<ClusterError> {
        let what = match self.rest.identity().await {
            Err(_) => "stopped",
            Ok(identity) if identity != self.scheduler => "restarted",
            Ok(_) => return None,
        };
        Some(ClusterError::SchedulerLost {
            scheduler: self.rest.address().to_string(),
            job: name.to_string(),
            what,
        })
    }

    /// The name a job gets on the scheduler: unique to this client session.
    pub fn job_name(&self, name: &str) -> String {
        format!("{}{name}", self.job_prefix())
    }

    /// The start every job name of this session shares.
    fn job_prefix(&self) -> String {
        format!("sparkify {} ", &self.session_id[..8])
    }

    /// This session's jobs on the scheduler, to cancel those left running.
    pub fn jobs(&self) -> SessionJobs {
        SessionJobs {
            rest: self.rest.clone(),
            prefix: self.job_prefix(),
        }
    }

    /// Shows a job's stages and tasks as they complete, until cancelled.
    async fn follow(rest: SchedulerRest, job_name: String, bar: ProgressBar) {
        let mut interval = tokio::time::interval(PROGRESS_INTERVAL);
        loop {
            interval.tick().await;
            let Ok(jobs) = rest.jobs().await else {
                continue;
            };
            let Some(job) = jobs.into_iter().find(|j| j.job_name == job_name) else {
                continue;
            };
            let tasks = rest
                .stages(&job.job_id)
                .await
                .map(|s| task_counts(&s))
                .unwrap_or_default();
            bar.set_length(job.num_stages as u64);
            bar.set_position(job.completed_stages as u64);
            bar.set_message(format!("{} · tasks {}/{}", job.status, tasks.0, tasks.1));
        }
    }
}

/// Seconds from `from` to `to_ms` (milliseconds since the epoch, by the
/// scheduler's clock); 0 when the clocks say `to_ms` came first.
fn seconds_until(from: SystemTime, to_ms: u64) -> f64 {
    let to = UNIX_EPOCH + Duration::from_millis(to_ms);
    to.duration_since(from)
        .map_or(0.0, |elapsed| elapsed.as_secs_f64())
}

/// Times a job is submitted when its results cannot be fetched.
const JOB_ATTEMPTS: usize = 2;

/// Whether a job failed because an executor holding its results went away
/// after the job finished. Rerunning such a job is safe: a writer job's
/// results are the files it wrote, and only files named in the final
/// results are committed (see `etl::load::publish`).
fn lost_results(error: &datafusion::error::DataFusionError) -> bool {
    error.to_string().contains("GrpcConnectionError")
}

impl BallistaEngine {
    /// Submits `plan` as one job and collects its results.
    async fn submit_and_collect(
        &self,
        plan: Arc<dyn ExecutionPlan>,
        config: SessionConfig,
    ) -> Result<Vec<RecordBatch>> {
        let stream = execute_physical_plan::<PhysicalPlanNode>(
            self.rest.grpc_url(),
            &config.ballista_config(),
            plan,
            physical_codec(AllowedLocations::anywhere()).as_ref(),
            self.session_id.clone(),
            config,
        )
        .await?;
        stream.try_collect::<Vec<_>>().await
    }
}

impl BallistaEngine {
    /// How job `name` ran, from the scheduler; without stages when the
    /// scheduler cannot say (the run itself has succeeded by then).
    async fn job_report(
        &self,
        name: &str,
        job_name: &str,
        seconds: f64,
        submitted: SystemTime,
    ) -> JobReport {
        let mut report = JobReport {
            job: name.to_string(),
            seconds,
            ..JobReport::default()
        };
        let job = match self.rest.jobs().await {
            Ok(jobs) => jobs.into_iter().find(|j| j.job_name == job_name),
            Err(e) => {
                tracing::warn!(job = name, "no stage metrics: {e}");
                None
            }
        };
        if let Some(job) = job {
            let shuffle = self.rest.shuffle(&job.job_id).await.unwrap_or_else(|e| {
                tracing::warn!(job = name, "no shuffle bytes: {e}");
                JobShuffle::default()
            });
            match self.rest.stages(&job.job_id).await {
                Ok(stages) => {
                    report.stages = stages
                        .stages
                        .iter()
                        .map(|s| stage_report(s, shuffle.stage(&s.stage_id)))
                        .collect();
                    // The scheduler lists them in no particular order.
                    report
                        .stages
                        .sort_by_key(|s| s.stage.parse::<usize>().unwrap_or(usize::MAX));
                }
                Err(e) => tracing::warn!(job = name, "no stage metrics: {e}"),
            }
            report.submission_seconds = seconds_until(submitted, job.start_time);
            report.job_id = job.job_id;
        }
        report
    }
}

#[async_trait]
impl Engine for BallistaEngine {
    fn explain(&self, plan: Arc<dyn ExecutionPlan>) -> Result<String> {
        crate::explain::distributed_plan(plan, self.config.options())
    }

    async fn run_job(&self, name: &str, plan: Arc<dyn ExecutionPlan>) -> Result<JobOutput> {
        let job_name = self.job_name(name);
        let config = self.config.clone().with_ballista_job_name(&job_name);
        let bar = self.progress.add(ProgressBar::new(1));
        bar.set_style(
            ProgressStyle::with_template(
                "{prefix:>16} [{bar:20}] stages {pos}/{len} {msg} {elapsed}",
            )
            .expect("static template")
            .progress_chars("=> "),
        );
        bar.set_prefix(name.to_string());
        // Nobody sees a hidden bar (--quiet, or stderr not a terminal): no
        // need to ask the scheduler for every job's stages four times a second.
        let follower = (!self.progress.is_hidden()).then(|| {
            tokio::spawn(Self::follow(
                self.rest.clone(),
                job_name.clone(),
                bar.clone(),
            ))
        });
        let started = Instant::now();
        let submitted = SystemTime::now();
        let mut attempt = 1;
        let result = loop {
            let result = self
                .submit_and_collect(Arc::clone(&plan), config.clone())
                .await;
            match result {
                Err(e) if attempt < JOB_ATTEMPTS && lost_results(&e) => {
                    tracing::warn!(job = name, "results unreachable ({e}); rerunning the job");
                    attempt += 1;
                }
                result => break result,
            }
        };
        if let Some(follower) = follower {
            follower.abort();
        }
        let result = match result {
            Err(e) => match self.scheduler_lost(name).await {
                Some(lost) => Err(DataFusionError::External(Box::new(lost))),
                None => Err(e),
            },
            ok => ok,
        };
        bar.finish_with_message(match &result {
            Ok(_) => format!("done in {:.1}s", started.elapsed().as_secs_f64()),
            Err(_) => "failed".to_string(),
        });
        let seconds = started.elapsed().as_secs_f64();
        tracing::debug!(job = name, seconds, ok = result.is_ok(), "job finished");
        Ok(JobOutput {
            batches: result?,
            report: self.job_report(name, &job_name, seconds, submitted).await,
        })
    }
}

/// The jobs one client session submitted to a scheduler.
pub struct SessionJobs {
    rest: SchedulerRest,
    /// The start of every job name of the session ([`BallistaEngine::job_name`]).
    prefix: String,
}

impl SessionJobs {
    /// The session's jobs the scheduler lists as queued or running.
    async fn unfinished(&self) -> Result<Vec<JobResponse>, ClusterError> {
        let mut jobs = self.rest.jobs().await?;
        jobs.retain(|job| {
            matches!(job.status.as_str(), "Queued" | "Running")
                && job.job_name.starts_with(&self.prefix)
        });
        Ok(jobs)
    }

    /// Cancels the session's jobs the scheduler still lists as queued or
    /// running, and returns their names. A run that stops early (a failed
    /// job, Ctrl-C) would otherwise leave its other jobs using the cluster
    /// for nothing: their files are never committed. A job whose submission
    /// was still on its way when the run stopped may not be listed yet, and
    /// then runs out.
    pub async fn cancel_unfinished(&self) -> Result<Vec<String>, ClusterError> {
        let mut cancelled = Vec::new();
        for job in self.unfinished().await? {
            self.rest.cancel(&job.job_id).await?;
            cancelled.push(job.job_name);
        }
        Ok(cancelled)
    }

    /// Where each unfinished job of the session stands, one clause each
    /// (`stage songs: Running, 0 of 1 stages done, tasks: 1 running, 0
    /// done`): a run stopped for taking too long says what it was waiting
    /// for.
    pub async fn describe_unfinished(&self) -> Result<Vec<String>, ClusterError> {
        let mut described = Vec::new();
        for job in self.unfinished().await? {
            let stages = self.rest.stages(&job.job_id).await?;
            let name = job
                .job_name
                .strip_prefix(&self.prefix)
                .unwrap_or(&job.job_name);
            described.push(format!(
                "{name}: {}, {} of {} stages done, tasks: {} running, {} done",
                job.status,
                job.completed_stages,
                job.num_stages,
                running_tasks(&stages),
                task_counts(&stages).0
            ));
        }
        Ok(described)
    }
}
