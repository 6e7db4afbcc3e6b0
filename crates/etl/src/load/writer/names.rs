//! Where a writer's files go and what they are called: every file name
//! starts with the id of the task attempt that wrote it.

use datafusion::common::{DataFusionError, Result};
use object_store::path::Path;

/// The name of a writer task's `n`th file: its writer id first, so that
/// every file names the task attempt that wrote it ([`writer_of`]).
pub(super) fn file_name(task_id: &str, n: usize) -> String {
    format!("part-{task_id}-{n:05}.parquet")
}

/// The writer id in the name of a file at `path` ([`file_name`]), if it is
/// one of a writer's files.
pub fn writer_of(path: &str) -> Option<&str> {
    let name = path.rsplit('/').next()?;
    let (task_id, _) = name.strip_prefix("part-")?.rsplit_once('-')?;
    Some(task_id)
}

/// Where a file of hive partition `partition` goes. The partition's parts
/// are already escaped the Hive way (`artist_id=AR%2FX`), so they are taken
/// as they are: joining them as raw text would escape each `%` again.
pub(super) fn file_path(table: &Path, partition: &str, name: &str) -> Result<Path> {
    let path = [table.as_ref(), partition, name]
        .iter()
        .filter(|p| !p.is_empty())
        .copied()
        .collect::<Vec<_>>()
        .join("/");
    Path::parse(&path)
        .map_err(|e| DataFusionError::Execution(format!("invalid output path '{path}': {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_file_names_the_writer_that_wrote_it() {
        let path = format!("out/run-1/songs/year=0/{}", file_name("01a23f5d9c62", 12));
        assert_eq!(writer_of(&path), Some("01a23f5d9c62"));
        assert_eq!(writer_of("out/run-1/_SUCCESS"), None);
    }

    #[test]
    fn escaped_partition_values_are_not_escaped_again() {
        let partition = crate::load::hive::partition_dir(
            &["year".into(), "artist_id".into()],
            &[Some("0".into()), Some("AR/X=1".into())],
        );
        let path = file_path(
            &Path::from("out/run-1/songs"),
            &partition,
            "part-a-00000.parquet",
        )
        .unwrap();
        assert_eq!(
            path.as_ref(),
            "out/run-1/songs/year=0/artist_id=AR%2FX%3D1/part-a-00000.parquet"
        );
        let unpartitioned =
            file_path(&Path::from("out/run-1/users"), "", "part-a-00000.parquet").unwrap();
        assert_eq!(
            unpartitioned.as_ref(),
            "out/run-1/users/part-a-00000.parquet"
        );
    }
}
