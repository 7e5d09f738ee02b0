//! Turns a byte span of the TOML text into what a person can find: line, column and key path.
//!
//! # Design
//! The key path (`session[1] ("web").tools[0]`) is found by walking the document tree that
//! `toml` parses with spans ([`DeTable`]) and keeping the deepest key, value or array entry whose
//! span holds the error's span. One mechanism serves both the errors of `toml`/serde (which carry a
//! span but no public key path) and our own checks (which hold the [`toml::Spanned`] location of
//! what they refuse), so every message names its location the same way.
//!
//! A table opened by a header (`[[session]]`) has the header as its span and its keys after it,
//! which is why children are searched before their parent's own span: an error in a key of the
//! second session lands on that key, an error about the session as a whole on its header.
//!
//! # Limitations
//! A zero-length span (what `toml` reports for a missing top-level key) is not inside any item:
//! it gets the empty key path.

use std::ops::Range;

use toml::Spanned;
use toml::de::{DeTable, DeValue};

/// Where a span of the text is, for humans.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Location {
    /// 1-based.
    pub line: usize,
    /// 1-based, in characters.
    pub column: usize,
    /// `session[1] ("web").tools[0]`; empty for the whole document.
    pub key_path: String,
    /// The text of the line, without its line break.
    pub source_line: String,
    /// How many characters of `source_line` the span covers from `column` (at least 1).
    pub width: usize,
}

/// The text of a config and its span tree, parsed once for all the errors and warnings of a file.
pub struct SourceMap<'i> {
    text: &'i str,
    root: Spanned<DeTable<'i>>,
}

impl<'i> SourceMap<'i> {
    /// Never fails: a text with syntax errors gets the tree of what could be parsed.
    pub fn new(text: &'i str) -> Self {
        let (root, _syntax_errors) = DeTable::parse_recoverable(text);
        SourceMap { text, root }
    }

    pub fn locate(&self, span: Range<usize>) -> Location {
        let start = floor_char_boundary(self.text, span.start);
        let line_start = self.text[..start]
            .rfind('\n')
            .map_or(0, |newline| newline + 1);
        let line_end = self.text[start..]
            .find('\n')
            .map_or(self.text.len(), |newline| start + newline);
        let source_line = self.text[line_start..line_end].trim_end_matches('\r');
        let end = floor_char_boundary(self.text, span.end.clamp(start, line_end));
        Location {
            line: self.text[..line_start].matches('\n').count() + 1,
            column: self.text[line_start..start].chars().count() + 1,
            key_path: self.key_path(span),
            source_line: source_line.to_owned(),
            width: self.text[start..end].chars().count().max(1),
        }
    }

    /// The path of the deepest item holding `span`, or `""`.
    pub fn key_path(&self, span: Range<usize>) -> String {
        if span.is_empty() {
            return String::new();
        }
        let mut segments = Vec::new();
        find_in_table(self.root.get_ref(), &span, &mut segments);
        let mut path = String::new();
        for segment in segments.iter().rev() {
            match segment {
                Segment::Key(key) => {
                    if !path.is_empty() {
                        path.push('.');
                    }
                    path.push_str(key);
                }
                Segment::Index(index, label) => {
                    path.push_str(&format!("[{index}]"));
                    if let Some(label) = label {
                        path.push_str(&format!(" ({label})"));
                    }
                }
            }
        }
        path
    }
}

/// One step of a key path. Collected leaf first.
enum Segment {
    Key(String),
    /// An array entry, with a label that tells it apart (`"web"` for a named table).
    Index(usize, Option<String>),
}

fn holds(outer: &Range<usize>, inner: &Range<usize>) -> bool {
    outer.start <= inner.start && inner.end <= outer.end
}

fn find_in_table(table: &DeTable<'_>, span: &Range<usize>, path: &mut Vec<Segment>) -> bool {
    for (key, value) in table.iter() {
        let found = holds(&key.span(), span)
            || find_in_value(value.get_ref(), span, path)
            || holds(&value.span(), span);
        if found {
            path.push(Segment::Key(key.get_ref().to_string()));
            return true;
        }
    }
    false
}

fn find_in_value(value: &DeValue<'_>, span: &Range<usize>, path: &mut Vec<Segment>) -> bool {
    match value {
        DeValue::Table(table) => find_in_table(table, span, path),
        DeValue::Array(array) => {
            for (index, entry) in array.iter().enumerate() {
                if find_in_value(entry.get_ref(), span, path) || holds(&entry.span(), span) {
                    path.push(Segment::Index(index, label(entry.get_ref())));
                    return true;
                }
            }
            false
        }
        _ => false,
    }
}

/// `"web"` for a table with a string `name`, `#100` for a filter rule.
fn label(entry: &DeValue<'_>) -> Option<String> {
    let table = entry.as_table()?;
    if let Some(name) = table.get("name").and_then(|name| name.get_ref().as_str()) {
        return Some(format!("{name:?}"));
    }
    let number = table.get("number")?.get_ref().as_integer()?;
    Some(format!("#{}", number.as_str()))
}

fn floor_char_boundary(text: &str, index: usize) -> usize {
    let mut index = index.min(text.len());
    while !text.is_char_boundary(index) {
        index -= 1;
    }
    index
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEXT: &str = "[broker]\nname = \"lab\"\n\n[[session]]\nname = \"web\"\n\n[[session]]\n\
                        name = \"db\"\ntools = [\"ids\", \"idz\"]\n\n[[filter]]\nname = \"f\"\n\
                        [[filter.rule]]\nnumber = 100\naction = \"accept\"\n";

    fn span_of(needle: &str, nth: usize) -> Range<usize> {
        let start = TEXT.match_indices(needle).nth(nth).unwrap().0;
        start..start + needle.len()
    }

    #[test]
    fn locates_array_entries_by_index_and_name() {
        let map = SourceMap::new(TEXT);
        let location = map.locate(span_of("\"idz\"", 0));
        assert_eq!(location.key_path, "session[1] (\"db\").tools[1]");
        assert_eq!((location.line, location.column, location.width), (9, 17, 5));
        assert_eq!(location.source_line, "tools = [\"ids\", \"idz\"]");
    }

    #[test]
    fn locates_tables_by_their_header_and_rules_by_number() {
        let map = SourceMap::new(TEXT);
        assert_eq!(
            map.key_path(span_of("[[session]]", 1)),
            "session[1] (\"db\")"
        );
        assert_eq!(
            map.key_path(span_of("100", 0)),
            "filter[0] (\"f\").rule[0] (#100).number"
        );
        assert_eq!(map.key_path(span_of("name", 0)), "broker.name");
        assert_eq!(map.key_path(0..0), "");
    }

    #[test]
    fn spans_past_the_end_or_inside_a_character_do_not_panic() {
        let map = SourceMap::new("name = \"wé\"");
        let location = map.locate(10..400);
        assert_eq!(location.line, 1);
        assert_eq!(map.locate(9..10).column, 10);
        let broken = SourceMap::new("[broker\nname = ");
        assert_eq!(broken.locate(8..12).line, 2);
    }
}
