//! The partitioned Parquet writer: an operator that every task of a write
//! stage runs on its executor, writing its share of a table's hive partitions
//! straight to the object store.
//!
//! DataFusion's own write operator needs its whole input in one partition, so
//! on Ballista every row of a table would travel to one executor. This one
//! runs once per input partition instead. Each task names its files with its
//! own random id, so names cannot collide across tasks, executors or retries,
//! and it answers with the list of files it wrote (path, rows, bytes), never
//! with the rows themselves. Files of a failed attempt are never in a list
//! that reaches the client, which is how [`crate::load::publish`] tells them
//! apart from committed ones.
//!
//! - [`spec`]: what a task is told to write (sent with the plan);
//! - [`exec`]: the operator DataFusion and Ballista see;
//! - [`sink`]: one task's open files and uploads;
//! - [`format`]: the Parquet format of every file;
//! - [`names`]: where files go and what they are called;
//! - [`written`]: what a task answers with.

mod exec;
mod format;
mod names;
mod sink;
mod spec;
mod upload;
mod written;

pub use exec::ParquetWriterExec;
pub use format::plain_schema;
pub use names::writer_of;
pub use spec::{Clustering, WriteSpec};
pub use written::{WrittenFile, written_files, written_files_schema};
