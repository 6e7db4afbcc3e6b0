//! A raw input file's text, ready to be split into records: inflated when
//! it is gzip (within a bound), its byte-order mark removed.

use std::io::Read;

use bytes::Bytes;

/// One raw input file, fetched.
#[derive(Debug, Clone)]
pub struct SourceFile {
    /// The file's key ([`super::listing::file_key`]).
    pub key: i64,
    /// Where it was read from, as shown to the user.
    pub location: String,
    /// Its content as stored (possibly gzip-compressed).
    pub bytes: Bytes,
}

/// A `.json.gz` file that inflates to more than this is rejected whole: a
/// few KB of gzip can inflate to gigabytes, and a task holds a file's text
/// in memory. A day of Sparkify's events is about 120 MB at ten million
/// events a month.
pub const MAX_INFLATED_BYTES: u64 = 512 * 1024 * 1024;

/// A file's text ready for decoding: decompressed, byte-order mark removed.
pub(super) struct FileText {
    pub(super) key: i64,
    pub(super) location: String,
    pub(super) content: Bytes,
    /// Set when the file cannot be read as text at all (a broken gzip stream).
    pub(super) error: Option<String>,
}

impl FileText {
    pub(super) fn prepare(file: &SourceFile) -> Self {
        let (content, error) = match decompress(file) {
            Ok(content) => (strip_bom(content), None),
            Err(reason) => (file.bytes.clone(), Some(reason)),
        };
        Self {
            key: file.key,
            location: file.location.clone(),
            content,
            error,
        }
    }
}

fn decompress(file: &SourceFile) -> Result<Bytes, String> {
    if !file.location.ends_with(".gz") {
        return Ok(file.bytes.clone());
    }
    let mut out = Vec::with_capacity(file.bytes.len() * 4);
    flate2::read::MultiGzDecoder::new(file.bytes.as_ref())
        .take(MAX_INFLATED_BYTES + 1)
        .read_to_end(&mut out)
        .map_err(|e| format!("not a readable gzip file: {e}"))?;
    if out.len() as u64 > MAX_INFLATED_BYTES {
        return Err(format!(
            "inflates to more than {} MiB, the most a file may",
            MAX_INFLATED_BYTES >> 20
        ));
    }
    Ok(Bytes::from(out))
}

fn strip_bom(content: Bytes) -> Bytes {
    const BOM: &[u8] = b"\xEF\xBB\xBF";
    if content.starts_with(BOM) {
        content.slice(BOM.len()..)
    } else {
        content
    }
}
