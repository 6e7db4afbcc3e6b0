//! What a run reads, where it writes, and how much bad input it tolerates.

use std::time::Duration;

use crate::extract::scan::RejectPolicy;
use crate::load::TableFormat;
use crate::load::delta::vacuum::VacuumPolicy;
use crate::location::Location;
use crate::tables::SongsLayout;

/// How much rejected input a run tolerates before it fails unpublished.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum RejectLimit {
    Count(u64),
    Fraction(f64),
}

impl RejectLimit {
    /// `100` is a count, `0.01` or `1%` a fraction of the records of an input.
    pub fn parse(text: &str) -> std::result::Result<Self, String> {
        let text = text.trim();
        let fraction = |v: f64| {
            (0.0..=1.0)
                .contains(&v)
                .then_some(RejectLimit::Fraction(v))
                .ok_or_else(|| format!("'{text}' is not a fraction between 0 and 1"))
        };
        if let Some(percent) = text.strip_suffix('%') {
            let value: f64 = percent
                .trim()
                .parse()
                .map_err(|_| format!("'{text}' is not a percentage"))?;
            return fraction(value / 100.0);
        }
        if let Ok(count) = text.parse::<u64>() {
            return Ok(RejectLimit::Count(count));
        }
        match text.parse::<f64>() {
            Ok(value) => fraction(value),
            Err(_) => Err(format!(
                "'{text}' is neither a count (100) nor a fraction (0.01, 1%)"
            )),
        }
    }

    pub(super) fn allows(&self, rejected: u64, records: u64) -> bool {
        match *self {
            RejectLimit::Count(limit) => rejected <= limit,
            RejectLimit::Fraction(limit) => {
                records == 0 || rejected as f64 <= limit * records as f64
            }
        }
    }
}

impl std::fmt::Display for RejectLimit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RejectLimit::Count(n) => write!(f, "{n}"),
            // Rounded: 7% is 0.07, which times 100 is 7.000000000000001.
            RejectLimit::Fraction(v) => write!(f, "{}%", (v * 100.0 * 1e9).round() / 1e9),
        }
    }
}

/// What a run reads, where it writes, and how.
#[derive(Clone, Debug)]
pub struct RunConfig {
    pub input: Location,
    pub output: Location,
    /// Tasks per stage: scan shards, shuffle partitions, writer tasks.
    pub partitions: usize,
    pub rejects: RejectPolicy,
    /// `None`: any number of rejected records is accepted (and reported).
    pub max_rejects: Option<RejectLimit>,
    /// Publish tables that are empty while their input is not.
    pub allow_empty: bool,
    pub target_file_bytes: u64,
    /// Jobs submitted at once: 0 for all of a step's jobs (the five tables
    /// together), 1 for one after the other.
    pub concurrent_jobs: usize,
    pub songs_layout: SongsLayout,
    pub table_format: TableFormat,
    /// Delta: which files a run deletes after its commits, and when it
    /// lists every file of its tables to find them.
    pub vacuum: VacuumPolicy,
    /// Delta: an unfinished claim on the lake lapses after this long.
    pub claim_timeout: Duration,
    /// Delta: stage only the input files the lake has not loaded, and
    /// update the tables with them (`--incremental`), instead of
    /// rebuilding every table from all of the input.
    pub incremental: bool,
    /// What an incremental run that adds songs does to the plays already
    /// published.
    pub late_songs: LateSongs,
}

/// What happens to published plays when the songs they name arrive later.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum LateSongs {
    /// Songplays are rebuilt from every staged event, so a play whose song
    /// arrived later gets its song_id and artist_id: the tables equal a
    /// full run's. Costs a rewrite of songplays on runs that add songs.
    #[default]
    Rematch,
    /// Published plays keep the match they had (null when their song had
    /// not arrived); only new plays see the new songs.
    Keep,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reject_limits_parse_as_counts_or_fractions() {
        assert_eq!(RejectLimit::parse("100"), Ok(RejectLimit::Count(100)));
        assert_eq!(RejectLimit::parse("0.01"), Ok(RejectLimit::Fraction(0.01)));
        assert_eq!(RejectLimit::parse("2.5%"), Ok(RejectLimit::Fraction(0.025)));
        assert!(RejectLimit::parse("lots").is_err());
        assert!(RejectLimit::parse("150%").is_err());
        for shown in ["7%", "2.5%", "0.1%", "100"] {
            assert_eq!(RejectLimit::parse(shown).unwrap().to_string(), shown);
        }
    }

    #[test]
    fn reject_limits_allow_up_to_the_limit() {
        assert!(RejectLimit::Count(2).allows(2, 10));
        assert!(!RejectLimit::Count(2).allows(3, 10));
        assert!(RejectLimit::Fraction(0.1).allows(1, 10));
        assert!(!RejectLimit::Fraction(0.1).allows(2, 10));
    }
}
