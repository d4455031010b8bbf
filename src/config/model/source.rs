//! Reading the parsed TOML document into the raw model, section by section: a key of the
//! wrong type or unknown is reported with its location and removed, and the rest of its
//! section is read again, so one mistake hides no other.

use serde::Deserialize;
use toml::Spanned;
use toml::de::{DeValue, ValueDeserializer};

use super::*;

/// The text being parsed and its name, for locating errors, and the keys removed so far.
pub(super) struct Source<'a> {
    pub(super) text: &'a str,
    pub(super) file: &'a str,
    /// One error per key removed: unknown, or of the wrong type.
    pub(super) removed: Vec<ConfigError>,
    /// The dotted paths of the keys removed for a wrong type.
    pub(super) wrong_type: Vec<String>,
}

impl<'i> Source<'_> {
    /// Deserialize one part of the document; `prefix` is its key path (`server`, `route[2]`)
    /// and `known` its struct's keys. Each other key is reported as `UnknownKey` and removed
    /// first, so that it does not stop serde (which would hide the part's other problems).
    pub(super) fn section<T: Deserialize<'i>>(
        &mut self,
        mut value: Spanned<DeValue<'i>>,
        prefix: &str,
        known: &[&str],
    ) -> Section<T> {
        self.strip_unknown(&mut value, prefix, known);
        self.deserialize(value, prefix)
    }

    /// Report and remove every key of the table `value` that is not in `known`. Not a table:
    /// left as is, for deserializing to fail with the usual located wrong-type error.
    pub(super) fn strip_unknown(
        &mut self,
        value: &mut Spanned<DeValue<'i>>,
        prefix: &str,
        known: &[&str],
    ) {
        let DeValue::Table(table) = value.get_mut() else {
            return;
        };
        let (text, file) = (self.text, self.file);
        let mut unknown = Vec::new();
        for (key, _) in table.iter() {
            let name: &str = key.get_ref();
            if !known.contains(&name) {
                let kind = ConfigErrorKind::UnknownKey {
                    expected: known.iter().map(|k| (*k).to_owned()).collect(),
                    suggestion: suggest(name, known.iter().copied()),
                };
                let key_path = format!("{prefix}.{}", key_segment(name));
                unknown.push((
                    name.to_owned(),
                    located(text, file, Some(key.span()), key_path, kind),
                ));
            }
        }
        for (name, e) in unknown {
            table.remove(name.as_str());
            self.removed.push(e);
        }
    }

    /// Deserialize `value`, turning serde's failure into a located error. A key of the table
    /// whose value has the wrong type is reported, recorded in `wrong_type`, removed, and the
    /// rest deserialized again, so that one wrong type does not hide the part's other problems
    /// (each retry removes a key, so this ends). Only a failure no key of the table can be
    /// blamed for (the part itself is not a table) fails the part.
    pub(super) fn deserialize<T: Deserialize<'i>>(
        &mut self,
        mut value: Spanned<DeValue<'i>>,
        prefix: &str,
    ) -> Section<T> {
        loop {
            let e = match serde_path_to_error::deserialize(ValueDeserializer::from(value.clone())) {
                Ok(v) => return Ok(v),
                Err(e) => e,
            };
            let top = top_key(e.path());
            let error = self.locate(e, prefix);
            // Nested rather than a let chain: rust-version is 1.85.
            if let (Some(top), DeValue::Table(table)) = (top, value.get_mut()) {
                if table.remove(top.as_str()).is_some() {
                    self.wrong_type
                        .push(format!("{prefix}.{}", key_segment(&top)));
                    self.removed.push(error);
                    continue;
                }
            }
            return Err(error);
        }
    }

    /// serde's failure, located, with the dotted key path an operator would write.
    pub(super) fn locate(
        &self,
        e: serde_path_to_error::Error<toml::de::Error>,
        prefix: &str,
    ) -> ConfigError {
        let offset = e.inner().span().map(|s| s.start);
        let path = render_path(e.path(), self.text, offset);
        let key = if path.is_empty() {
            prefix.to_owned()
        } else if path.starts_with('[') {
            format!("{prefix}{path}")
        } else {
            format!("{prefix}.{path}")
        };
        let inner = e.into_inner();
        let (key, kind) = classify(key, inner.message());
        located(self.text, self.file, inner.span(), key, kind)
    }

    /// The `route` key: each array element on its own, so a bad route does not hide the next.
    pub(super) fn routes(
        &mut self,
        value: Spanned<DeValue<'i>>,
    ) -> Section<Vec<Section<Spanned<RawRoute>>>> {
        self.tables(value, "route", |source, item, prefix| {
            source.strip_unknown(item, prefix, ROUTE_KEYS);
        })
    }

    /// An array of tables (`route`, `upstream`), each element deserialized on its own after
    /// `strip` removed its unknown keys, so a bad element does not hide the next.
    pub(super) fn tables<T: Deserialize<'i>>(
        &mut self,
        value: Spanned<DeValue<'i>>,
        name: &str,
        mut strip: impl FnMut(&mut Self, &mut Spanned<DeValue<'i>>, &str),
    ) -> Section<Vec<Section<Spanned<T>>>> {
        let span = value.span();
        match value.into_inner() {
            DeValue::Array(items) => Ok(items
                .into_iter()
                .enumerate()
                .map(|(i, mut item)| {
                    let prefix = format!("{name}[{i}]");
                    strip(self, &mut item, &prefix);
                    self.deserialize(item, &prefix)
                })
                .collect()),
            // Not an array: deserializing it as one fails with the usual located wrong-type
            // error. Should serde ever accept it, its elements are as good as any.
            other => {
                let items: Vec<Spanned<T>> = self.deserialize(Spanned::new(span, other), name)?;
                Ok(items.into_iter().map(Ok).collect())
            }
        }
    }
}

pub(super) fn located(
    text: &str,
    file_name: &str,
    span: Option<Range<usize>>,
    key: String,
    kind: ConfigErrorKind,
) -> ConfigError {
    // Without a span the best honest location is the top of the file.
    let offset = span.map_or(0, |s| s.start);
    ConfigError::at(text, file_name, offset, key, kind)
}

/// Render the serde path as the dotted key an operator would write. Two artefacts of
/// `toml::Spanned` are repaired here: its private wrapper field shows up as a path segment (dropped),
/// and a `Spanned<String>` map key cannot be captured by serde_path_to_error (it records `?`), so
/// that key is recovered from the document by the failing value's position.
fn render_path(path: &serde_path_to_error::Path, text: &str, offset: Option<usize>) -> String {
    use serde_path_to_error::Segment;
    let mut out = String::new();
    for segment in path {
        let part = match segment {
            Segment::Seq { index } => {
                out.push_str(&format!("[{index}]"));
                continue;
            }
            Segment::Map { key } if key.starts_with(SPANNED_PRIVATE_PREFIX) => continue,
            Segment::Map { key } | Segment::Enum { variant: key } => key_segment(key),
            Segment::Unknown => offset
                .and_then(|o| key_of_value_at(text, o))
                .map_or_else(|| "?".to_owned(), |k| key_segment(&k)),
        };
        if !out.is_empty() {
            out.push('.');
        }
        out.push_str(&part);
    }
    out
}

/// The key of the deserialized table that a failure is inside: the path's first segment
/// besides `toml::Spanned`'s wrapper fields; `None` when the failure is the table itself.
fn top_key(path: &serde_path_to_error::Path) -> Option<String> {
    use serde_path_to_error::Segment;
    match path
        .iter()
        .find(|s| !matches!(s, Segment::Map { key } if key.starts_with(SPANNED_PRIVATE_PREFIX)))?
    {
        Segment::Map { key } => Some(key.clone()),
        _ => None,
    }
}

/// `toml::Spanned` deserializes through a struct whose value field has this name prefix.
const SPANNED_PRIVATE_PREFIX: &str = "$__serde_spanned_private";

/// The key whose value starts at byte `offset`, searching the whole document. Only used on the
/// error path, so re-parsing is fine; `None` if the text does not parse or nothing starts there.
fn key_of_value_at(text: &str, offset: usize) -> Option<String> {
    let root = toml::de::DeTable::parse(text).ok()?;
    find_in_table(root.get_ref(), offset)
}

fn find_in_table(table: &toml::de::DeTable<'_>, offset: usize) -> Option<String> {
    table.iter().find_map(|(k, v)| {
        if v.span().start == offset {
            Some(k.get_ref().to_string())
        } else {
            find_in_value(v.get_ref(), offset)
        }
    })
}

fn find_in_value(value: &toml::de::DeValue<'_>, offset: usize) -> Option<String> {
    match value {
        toml::de::DeValue::Table(t) => find_in_table(t, offset),
        toml::de::DeValue::Array(a) => a.iter().find_map(|v| find_in_value(v.get_ref(), offset)),
        _ => None,
    }
}

/// Map a serde/toml message onto a typed kind. serde's wording is part of its stable error
/// contract (`unknown_field`, `invalid_type`, ...); anything unrecognised is kept verbatim as a
/// syntax-level error rather than guessed at. The tests pin every recognised shape.
fn classify(key: String, message: &str) -> (String, ConfigErrorKind) {
    if let Some(rest) = message.strip_prefix("unknown field `") {
        let (field, tail) = rest.split_once('`').unwrap_or((rest, ""));
        // serde_path_to_error normally records the bad key itself; if a future version stops
        // at the enclosing table instead, add it, so the key is always named exactly once.
        let segment = key_segment(field);
        let key = if key.is_empty() {
            segment
        } else if key == segment || key.ends_with(&format!(".{segment}")) {
            key
        } else {
            format!("{key}.{segment}")
        };
        let expected = backticked(tail);
        let suggestion = suggest(field, expected.iter().map(String::as_str));
        let kind = ConfigErrorKind::UnknownKey {
            expected,
            suggestion,
        };
        return (key, kind);
    }
    if let Some(rest) = message.strip_prefix("invalid type: ") {
        // The expected part comes from our own types, so it never contains ", expected ";
        // the found part may (it quotes the user's string), hence rsplit.
        if let Some((found, expected)) = rest.rsplit_once(", expected ") {
            // TOML integers may be written wider than our i64 fields; the value is fine as a
            // number, just too big, so say that instead of a confusing "integer, expected i64".
            if (expected == "i64" || expected == SIZE_EXPECTED) && found.starts_with("integer `") {
                let value = found.split('`').nth(1).unwrap_or(found).to_owned();
                return (key, ConfigErrorKind::IntegerTooLarge { value });
            }
            return (
                key,
                ConfigErrorKind::WrongType {
                    found: friendly_found(found).to_owned(),
                    expected: friendly_expected(expected).to_owned(),
                },
            );
        }
    }
    if let Some(rest) = message.strip_prefix("missing field `") {
        let field = rest.split('`').next().unwrap_or(rest);
        let key = if key.is_empty() {
            field.to_owned()
        } else {
            format!("{key}.{field}")
        };
        return (key, ConfigErrorKind::Missing);
    }
    (key, ConfigErrorKind::Syntax(one_line(message)))
}

/// The words serde's derive uses for our types, in TOML vocabulary for an operator.
fn friendly_expected(expected: &str) -> &str {
    if expected.starts_with("struct ") || expected == "a map" {
        "a table"
    } else if expected == "a sequence" {
        "an array"
    } else if expected == "i64" {
        "an integer"
    } else {
        expected
    }
}

/// serde's words for what it saw, in TOML vocabulary (scalars already read fine: `integer `5``).
fn friendly_found(found: &str) -> &str {
    match found {
        "map" => "a table",
        "sequence" => "an array",
        other => other,
    }
}

/// Extract the `quoted` names from serde's "expected one of `a`, `b`" tail.
pub(super) fn backticked(s: &str) -> Vec<String> {
    s.split('`').skip(1).step_by(2).map(str::to_owned).collect()
}

/// One error per output line is the ConfigErrors contract; toml messages may span lines.
pub(super) fn one_line(message: &str) -> String {
    message.split_whitespace().collect::<Vec<_>>().join(" ")
}
