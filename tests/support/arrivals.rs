//! The real input arriving in steps, as incremental runs see it.

use std::path::{Path, PathBuf};

/// The input's files, relative to its root, in the steps they arrive in:
/// one step per log day, the songs in two halves (by path), the first with
/// the first day and the second with day `second_songs_day` (1-based).
pub fn arrivals(input: &Path, second_songs_day: usize) -> Vec<Vec<PathBuf>> {
    let files = |folder: &str| {
        let mut files: Vec<PathBuf> = walkdir::WalkDir::new(input.join(folder))
            .into_iter()
            .map(|e| e.unwrap())
            .filter(|e| e.file_type().is_file())
            .map(|e| e.path().strip_prefix(input).unwrap().to_path_buf())
            .collect();
        files.sort();
        files
    };
    let songs = files("song_data");
    let (first, second) = songs.split_at(songs.len() / 2);
    files("log_data")
        .into_iter()
        .enumerate()
        .map(|(day, log)| {
            let mut step = vec![log];
            if day == 0 {
                step.extend_from_slice(first);
            }
            if day + 1 == second_songs_day {
                step.extend_from_slice(second);
            }
            step
        })
        .collect()
}

/// Copies `files` (relative) from `source` into `input`.
pub fn add(source: &Path, input: &Path, files: &[PathBuf]) {
    for file in files {
        let to = input.join(file);
        std::fs::create_dir_all(to.parent().unwrap()).unwrap();
        std::fs::copy(source.join(file), &to).unwrap();
    }
}
