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
pub(super) fn repeated_key(json: &[u8]) -> Option<String> {
    let mut depth = 0usize;
    let mut in_object = false;
    let mut expect_key = false;
    let mut keys: Vec<&[u8]> = Vec::new();
    let mut i = 0;
    while i < json.len() {
        match json[i] {
            b'"' => {
                let start = i + 1;
                i += 1;
                while i < json.len() && json[i] != b'"' {
                    i += if json[i] == b'\\' { 2 } else { 1 };
                }
                let text = &json[start..i.min(json.len())];
                if depth == 1 && in_object && expect_key {
                    if keys.contains(&text) {
                        return Some(String::from_utf8_lossy(text).into_owned());
                    }
                    keys.push(text);
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
