//! The flags our scheduler and executor take beyond Ballista's own.

use clap::{Arg, ArgAction, ArgMatches, Command, value_parser};
use etl::allowed::AllowedLocations;

use crate::logging::LogFormat;

/// What the flags added by [`add`] say.
pub struct LakeFlags {
    pub allowed: AllowedLocations,
    pub log_format: LogFormat,
}

/// Adds `--allowed-locations` and `--log-format` to a role's command line.
pub fn add(command: Command) -> Command {
    command
        .arg(
            Arg::new("allowed_locations")
                .long("allowed-locations")
                .env("SPARKIFY_ALLOWED_LOCATIONS")
                .value_name("URL,...")
                .value_delimiter(',')
                .action(ArgAction::Append)
                .help(
                    "Folders plans may read and write (s3://lake/raw,s3://lake/sparkify); a plan \
                     naming any other location is refused. Unset: anywhere, for a machine only \
                     you reach",
                ),
        )
        .arg(
            Arg::new("log_format")
                .long("log-format")
                .env("SPARKIFY_LOG_FORMAT")
                .value_parser(value_parser!(LogFormat))
                .default_value("text")
                .help("Log lines as text, or as one JSON object each"),
        )
}

/// Reads the flags [`add`] added.
pub fn read(matches: &ArgMatches) -> Result<LakeFlags, String> {
    let listed: Vec<String> = matches
        .get_many::<String>("allowed_locations")
        .map(|values| values.cloned().collect())
        .unwrap_or_default();
    Ok(LakeFlags {
        allowed: AllowedLocations::parse(&listed).map_err(|e| e.to_string())?,
        log_format: matches
            .get_one::<LogFormat>("log_format")
            .copied()
            .unwrap_or_default(),
    })
}
