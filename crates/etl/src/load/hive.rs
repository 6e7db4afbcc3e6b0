//! Hive-style partition directory names (`year=2018/month=11`), escaped the
//! way Spark and Hive escape them so that every engine reads the same values
//! back from the paths.

/// The directory name Hive, Spark and Athena use for a null partition value.
pub const NULL_PARTITION: &str = "__HIVE_DEFAULT_PARTITION__";

/// `name=value/name=value` for one row's partition values: the whole name
/// at once, as tests state it (writers build it with [`push_partition`]).
#[cfg(test)]
pub fn partition_dir(names: &[String], values: &[Option<String>]) -> String {
    let mut dir = String::new();
    for (name, value) in names.iter().zip(values) {
        push_partition(&mut dir, name, value.as_deref());
    }
    dir
}

/// Appends `name=value` for one partition column to `dir`, after a `/`
/// unless it is the first. A writer builds a directory name per run of rows
/// this way, in one buffer, instead of a `String` per value.
pub fn push_partition(dir: &mut String, name: &str, value: Option<&str>) {
    if !dir.is_empty() {
        dir.push('/');
    }
    escape_into(dir, name);
    dir.push('=');
    match value {
        Some(v) if !v.is_empty() => escape_into(dir, v),
        _ => dir.push_str(NULL_PARTITION),
    }
}

/// The partition values a directory name holds (`year=0/artist_id=AR%2FX`),
/// unescaped, in order; `None` for the null partition. What Delta's
/// `partitionValues` records for each file.
pub fn partition_values(dir: &str) -> Vec<(String, Option<String>)> {
    let decode = |text: &str| {
        percent_encoding::percent_decode_str(text)
            .decode_utf8_lossy()
            .into_owned()
    };
    dir.split('/')
        .filter(|part| !part.is_empty())
        .map(|part| {
            let (name, value) = part.split_once('=').unwrap_or((part, NULL_PARTITION));
            let value = (value != NULL_PARTITION).then(|| decode(value));
            (decode(name), value)
        })
        .collect()
}

/// How many bytes `value` takes in a directory name once escaped.
pub fn escaped_len(value: &str) -> usize {
    value
        .chars()
        .map(|c| {
            if needs_escape(c) {
                3 * c.len_utf8()
            } else {
                c.len_utf8()
            }
        })
        .sum()
}

/// Appends `value` to `out`, percent-encoding the characters Hive's
/// `FileUtils.escapePathName` encodes.
fn escape_into(out: &mut String, value: &str) {
    use std::fmt::Write;
    for c in value.chars() {
        if needs_escape(c) {
            let mut buf = [0u8; 4];
            for byte in c.encode_utf8(&mut buf).bytes() {
                // Writing to a String cannot fail.
                let _ = write!(out, "%{byte:02X}");
            }
        } else {
            out.push(c);
        }
    }
}

fn needs_escape(c: char) -> bool {
    c.is_control()
        || matches!(
            c,
            '"' | '#'
                | '%'
                | '\''
                | '*'
                | '/'
                | ':'
                | '='
                | '?'
                | '\\'
                | '\u{7F}'
                | '{'
                | '['
                | ']'
                | '^'
        )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(n: &[&str]) -> Vec<String> {
        n.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn plain_values_are_kept() {
        let dir = partition_dir(
            &names(&["year", "month"]),
            &[Some("2018".into()), Some("11".into())],
        );
        assert_eq!(dir, "year=2018/month=11");
    }

    #[test]
    fn separators_are_escaped_and_nulls_use_the_hive_default() {
        let dir = partition_dir(
            &names(&["artist_id", "year"]),
            &[Some("AR/1=2%".into()), None],
        );
        assert_eq!(
            dir,
            "artist_id=AR%2F1%3D2%25/year=__HIVE_DEFAULT_PARTITION__"
        );
    }

    #[test]
    fn partition_values_undo_the_escaping() {
        let names = names(&["artist_id", "year"]);
        let values = [Some("AR/1=2% é".to_string()), None];
        assert_eq!(
            partition_values(&partition_dir(&names, &values)),
            vec![
                ("artist_id".to_string(), values[0].clone()),
                ("year".to_string(), None)
            ]
        );
    }
}
