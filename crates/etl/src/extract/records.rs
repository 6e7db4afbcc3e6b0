//! Where the records lie in a file's text: one JSON value per record
//! (an array counting as its elements), text that is not JSON cut at its
//! line, line numbers for rejects, and keys an object repeats.

/// Where one record sits in a file's text.
#[derive(Debug, PartialEq)]
pub(super) struct Span {
    pub(super) start: usize,
    pub(super) end: usize,
    /// Set when the text there is not a JSON value.
    pub(super) syntax_error: Option<String>,
}

impl Span {
    pub(super) fn whole(content: &[u8]) -> Self {
        Self {
            start: 0,
            end: content.len(),
            syntax_error: None,
        }
    }
}

/// Splits a file into its JSON values: one per line in a log, one (possibly
/// spread over many lines) in a song file. Text that is not JSON becomes a
/// span of its own up to the end of its line, so that reading resumes at the
/// next line; a value cut off by the end of the file runs to the end.
pub(super) fn split_records(content: &[u8]) -> Vec<Span> {
    let mut spans = Vec::new();
    let mut pos = 0;
    while pos < content.len() {
        if content[pos].is_ascii_whitespace() {
            pos += 1;
            continue;
        }
        let mut values = serde_json::Deserializer::from_slice(&content[pos..])
            .into_iter::<serde::de::IgnoredAny>();
        let span = match values.next() {
            Some(Ok(_)) if content[pos] == b'[' => {
                // An array of records counts as its records.
                let end = pos + values.byte_offset();
                spans.extend(array_elements(content, pos + 1, end - 1));
                pos = end;
                continue;
            }
            Some(Ok(_)) => Span {
                start: pos,
                end: pos + values.byte_offset(),
                syntax_error: None,
            },
            Some(Err(e)) => {
                let end = if e.is_eof() {
                    content.len()
                } else {
                    line_end(content, pos)
                };
                Span {
                    start: pos,
                    end,
                    syntax_error: Some(format!("malformed JSON: {}", strip_position(&e))),
                }
            }
            None => break,
        };
        pos = span.end;
        spans.push(span);
    }
    spans
}

/// serde_json appends " at line L column C" relative to the record; the
/// reject carries the position in the file instead.
fn strip_position(error: &serde_json::Error) -> String {
    let text = error.to_string();
    match text.rfind(" at line ") {
        Some(at) => text[..at].to_string(),
        None => text,
    }
}

fn line_end(content: &[u8], from: usize) -> usize {
    content[from..]
        .iter()
        .position(|&b| b == b'\n')
        .map_or(content.len(), |p| from + p + 1)
}

/// The elements of a well-formed JSON array whose contents lie between
/// `start` (after its `[`) and `end` (its `]`).
fn array_elements(content: &[u8], start: usize, end: usize) -> Vec<Span> {
    let mut spans = Vec::new();
    let mut pos = start;
    while pos < end {
        if content[pos].is_ascii_whitespace() || content[pos] == b',' {
            pos += 1;
            continue;
        }
        let mut values = serde_json::Deserializer::from_slice(&content[pos..end])
            .into_iter::<serde::de::IgnoredAny>();
        match values.next() {
            Some(Ok(_)) => {
                let next = pos + values.byte_offset();
                spans.push(Span {
                    start: pos,
                    end: next,
                    syntax_error: None,
                });
                pos = next;
            }
            // The array parsed whole, so its elements do too.
            _ => break,
        }
    }
    spans
}

/// The 1-based line of a byte offset, counted on from the last one asked:
/// offsets must come in order.
#[derive(Default)]
pub(super) struct LineCounter {
    offset: usize,
    line: u64,
}

impl LineCounter {
    pub(super) fn line_at(&mut self, content: &[u8], offset: usize) -> u64 {
        let newlines = content[self.offset..offset].iter().filter(|&&b| b == b'\n');
        self.line += newlines.count() as u64;
        self.offset = offset;
        self.line + 1
    }
}

/// The first key that appears twice in one object at the top of a record,
/// in `json` (one record or a file of them). Arrow's decoder and serde
/// both let the last value win silently, so a record like
/// `{"ts": 1541105830796, …, "ts": 0}` would load as a play in 1970.
/// Keys are compared as written: `"a"` and `"\u0061"` count as two.
///
/// Every event goes through here before decoding, so it is a scan, not a
/// parse: strings are skipped with `memchr` (a tenth of a run's CPU went
/// to stepping through them a byte at a time), and a key is compared with
/// the others only when [`ObjectKeys`] says it may be one of them.
pub(super) fn repeated_key(json: &[u8]) -> Option<String> {
    let mut depth = 0usize;
    let mut in_object = false;
    let mut expect_key = false;
    let mut keys = ObjectKeys::default();
    let mut i = 0;
    while i < json.len() {
        match json[i] {
            b'"' => {
                let start = i + 1;
                i = string_end(json, start);
                let text = &json[start..i];
                if depth == 1 && in_object && expect_key {
                    if !keys.insert(text) {
                        return Some(String::from_utf8_lossy(text).into_owned());
                    }
                    expect_key = false;
                }
            }
            open @ (b'{' | b'[') => {
                depth += 1;
                if depth == 1 {
                    in_object = open == b'{';
                    expect_key = in_object;
                    keys.clear();
                }
            }
            b'}' | b']' => depth = depth.saturating_sub(1),
            b',' if depth == 1 => expect_key = in_object,
            _ => {}
        }
        i += 1;
    }
    None
}

/// Where the string whose text starts at `from` ends: its closing quote,
/// or the end of `json` for a string cut off. A backslash escapes the
/// byte after it.
fn string_end(json: &[u8], mut from: usize) -> usize {
    while let Some(found) = memchr::memchr2(b'"', b'\\', &json[from..]) {
        let at = from + found;
        if json[at] == b'"' {
            return at;
        }
        from = at + 2;
        if from >= json.len() {
            break;
        }
    }
    json.len()
}

/// The keys of one object so far, behind a 256-bit filter of their
/// length, first and last byte: the keys of a record differ but for the
/// rare repeat, so a key is looked for among the others only when its
/// bit is already set (for one of an event's 18 keys, not for the rest).
#[derive(Default)]
struct ObjectKeys<'a> {
    filter: [u64; 4],
    keys: Vec<&'a [u8]>,
}

impl<'a> ObjectKeys<'a> {
    fn clear(&mut self) {
        self.filter = [0; 4];
        self.keys.clear();
    }

    /// Adds `key`; false when the object has it already.
    fn insert(&mut self, key: &'a [u8]) -> bool {
        let bit = Self::filter_bit(key);
        let (word, mask) = (bit / 64, 1u64 << (bit % 64));
        if self.filter[word] & mask != 0 && self.keys.contains(&key) {
            return false;
        }
        self.filter[word] |= mask;
        self.keys.push(key);
        true
    }

    fn filter_bit(key: &[u8]) -> usize {
        let (first, last) = (key.first().copied(), key.last().copied());
        let mixed = (key.len() as u64)
            .wrapping_mul(0x9e37_79b9_7f4a_7c15)
            .wrapping_add(u64::from(first.unwrap_or(0)).wrapping_mul(0xbf58_476d_1ce4_e5b9))
            .wrapping_add(u64::from(last.unwrap_or(0)).wrapping_mul(0x94d0_49bb_1331_11eb));
        (mixed >> 56) as usize
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repeated_keys_are_found_at_the_top_of_each_record_only() {
        let found = |json: &str| repeated_key(json.as_bytes());
        assert_eq!(
            found(r#"{"a": 1, "b": {"a": 2, "a": 3}, "c": [{"d": 1}, {"d": 1}]}"#),
            None
        );
        assert_eq!(
            found(r#"{"a": 1, "b": 2}{"a": 1, "b": 2}"#),
            None,
            "two records"
        );
        assert_eq!(found(r#"{"a": 1, "b": 2, "a": 3}"#).as_deref(), Some("a"));
        assert_eq!(
            found("{\"a\": 1}\n{\"b\": 2, \"b\": 3}").as_deref(),
            Some("b")
        );
        // Written differently, the same key counts as two.
        assert_eq!(found(r#"{"a": 1, "\u0061": 2}"#), None);
    }

    #[test]
    fn quotes_and_brackets_inside_strings_are_text() {
        let found = |json: &str| repeated_key(json.as_bytes());
        let tricky = r#"{"a": "x\", \"a\": {", "b\"": "\\", "c": "}", "a\\": 1}"#;
        assert_eq!(found(tricky), None);
        assert_eq!(
            found(&tricky.replace(r#""a\\": 1"#, r#""b\"": 1"#)).as_deref(),
            Some(r#"b\""#)
        );
        // A string or escape cut off by the end of the text ends the scan.
        assert_eq!(found(r#"{"a": 1, "b": "a"#), None);
        assert_eq!(found(r#"{"a": 1, "b": "\"#), None);
    }

    #[test]
    fn every_key_is_compared_whatever_the_filter_says() {
        // 300 keys fill the 256-bit filter: repeats are still found, and
        // keys that share a bit are still told apart.
        let keys: Vec<String> = (0..300).map(|n| format!("\"k{n}\": {n}")).collect();
        let record = format!("{{{}}}", keys.join(", "));
        assert_eq!(repeated_key(record.as_bytes()), None);
        let repeated = format!("{{{}, \"k123\": 0}}", keys.join(", "));
        assert_eq!(repeated_key(repeated.as_bytes()).as_deref(), Some("k123"));
    }
}
