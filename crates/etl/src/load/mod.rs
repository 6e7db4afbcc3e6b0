//! Writing the tables: the partitioned writer, its place in a plan, reading
//! staged files back, and the commit protocol that publishes a run.

pub mod hive;
pub mod plan;
pub mod publish;
pub mod staged;
pub mod writer;
