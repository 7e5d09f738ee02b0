//! The config's error: every problem found, each with file, line, column and key path.
//!
//! `Display` prints one line per problem, the way compilers do, so editors and `grep` can jump to
//! it: `lab.toml:23:9: session[1] ("web").tools[0]: unknown tool group "idz" (known: ids, pcap)`.
//! [`ConfigError::detailed`] adds the source line and a caret under each.

use std::fmt;
use std::ops::Range;
use std::path::{Path, PathBuf};

use crate::locate::SourceMap;

/// Name used in messages for a config that was not read from a file.
const NO_FILE: &str = "<string>";

/// What `toml` says of a key set twice in one table (and nothing more).
const DUPLICATE_KEY: &str = "duplicate key";

/// One problem of a config (or one warning, rendered the same way).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Diagnostic {
    line: Option<usize>,
    column: Option<usize>,
    key_path: String,
    message: String,
    source_line: Option<String>,
    width: usize,
}

impl Diagnostic {
    /// 1-based; `None` when the problem is not in the text (the file could not be read).
    pub fn line(&self) -> Option<usize> {
        self.line
    }

    /// 1-based, in characters.
    pub fn column(&self) -> Option<usize> {
        self.column
    }

    /// `session[1] ("web").tools[0]`; empty when the problem concerns the whole file.
    pub fn key_path(&self) -> &str {
        &self.key_path
    }

    pub fn message(&self) -> &str {
        &self.message
    }

    fn write_header(&self, origin: &str, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{origin}:")?;
        if let (Some(line), Some(column)) = (self.line, self.column) {
            write!(f, "{line}:{column}:")?;
        }
        if !self.key_path.is_empty() {
            write!(f, " {}:", self.key_path)?;
        }
        write!(f, " {}", self.message)
    }

    fn write_source(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (Some(line), Some(column), Some(source)) = (self.line, self.column, &self.source_line)
        else {
            return Ok(());
        };
        let gutter = line.to_string().len();
        writeln!(f)?;
        writeln!(f, "{:gutter$} |", "")?;
        writeln!(f, "{line} | {source}")?;
        write!(
            f,
            "{:gutter$} | {:indent$}{}",
            "",
            "",
            "^".repeat(self.width),
            indent = column - 1
        )
    }

    pub(crate) fn render(&self, origin: &str) -> String {
        struct Header<'a>(&'a Diagnostic, &'a str);
        impl fmt::Display for Header<'_> {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.write_header(self.1, f)
            }
        }
        Header(self, origin).to_string()
    }
}

/// Why a config was refused. Holds at least one [`Diagnostic`], sorted by position in the file.
///
/// It has no [`std::error::Error::source`]: the cause of an unreadable file is in its message
/// already, and an error chain printed in full (`{:#}`) would say it twice.
#[derive(Debug, thiserror::Error)]
#[error("{}", Summary(self))]
pub struct ConfigError {
    origin: Option<PathBuf>,
    diagnostics: Vec<Diagnostic>,
}

impl ConfigError {
    /// The file could not be read.
    pub(crate) fn unreadable(path: &Path, error: std::io::Error) -> Self {
        ConfigError {
            origin: Some(path.to_owned()),
            diagnostics: vec![Diagnostic {
                line: None,
                column: None,
                key_path: String::new(),
                message: format!("cannot read the config: {error}"),
                source_line: None,
                width: 0,
            }],
        }
    }

    /// Problems found in `text`; `issues` must not be empty.
    pub(crate) fn in_text(
        origin: Option<&Path>,
        source_map: &SourceMap<'_>,
        issues: Vec<Issue>,
    ) -> Self {
        let mut diagnostics: Vec<Diagnostic> = issues
            .into_iter()
            .map(|issue| issue.diagnose(source_map))
            .collect();
        diagnostics.sort_by_key(|diagnostic| (diagnostic.line, diagnostic.column));
        ConfigError {
            origin: origin.map(Path::to_owned),
            diagnostics,
        }
    }

    /// The first problem's line (1-based).
    pub fn line(&self) -> Option<usize> {
        self.first().and_then(Diagnostic::line)
    }

    /// The first problem's column (1-based, in characters).
    pub fn column(&self) -> Option<usize> {
        self.first().and_then(Diagnostic::column)
    }

    /// The first problem's key path, e.g. `session[1] ("web").tools[0]`.
    pub fn key_path(&self) -> &str {
        self.first().map_or("", Diagnostic::key_path)
    }

    /// The first problem's message, without location.
    pub fn message(&self) -> &str {
        self.first().map_or("", Diagnostic::message)
    }

    /// Every problem found, in file order.
    pub fn diagnostics(&self) -> &[Diagnostic] {
        &self.diagnostics
    }

    /// The file the config came from, if any.
    pub fn origin(&self) -> Option<&Path> {
        self.origin.as_deref()
    }

    /// Every problem with its source line and a caret under the offending text.
    pub fn detailed(&self) -> impl fmt::Display + '_ {
        Detailed(self)
    }

    fn first(&self) -> Option<&Diagnostic> {
        self.diagnostics.first()
    }

    fn origin_name(&self) -> String {
        origin_name(self.origin.as_deref())
    }
}

pub(crate) fn origin_name(origin: Option<&Path>) -> String {
    origin.map_or_else(|| NO_FILE.to_owned(), |path| path.display().to_string())
}

struct Summary<'a>(&'a ConfigError);

impl fmt::Display for Summary<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let origin = self.0.origin_name();
        for (index, diagnostic) in self.0.diagnostics.iter().enumerate() {
            if index > 0 {
                writeln!(f)?;
            }
            diagnostic.write_header(&origin, f)?;
        }
        Ok(())
    }
}

struct Detailed<'a>(&'a ConfigError);

impl fmt::Display for Detailed<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let origin = self.0.origin_name();
        for (index, diagnostic) in self.0.diagnostics.iter().enumerate() {
            if index > 0 {
                writeln!(f)?;
            }
            diagnostic.write_header(&origin, f)?;
            diagnostic.write_source(f)?;
        }
        Ok(())
    }
}

/// A problem (or warning) as the checks see it: a span of the text and a message. The key path
/// and line are worked out later from the span, in one place ([`SourceMap`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Issue {
    span: Option<Range<usize>>,
    /// Replaces the key path found from the span (for problems about a whole list, whose span is
    /// also the span of its first entry, or problems about an absent key).
    key_path: Option<String>,
    message: String,
    /// Where the other half of a duplicate is.
    first_defined: Option<Range<usize>>,
}

impl Issue {
    pub(crate) fn at(span: Range<usize>, message: impl Into<String>) -> Self {
        Issue {
            span: Some(span),
            key_path: None,
            message: message.into(),
            first_defined: None,
        }
    }

    /// A problem about a key that is absent from the file.
    pub(crate) fn about(key_path: &str, message: impl Into<String>) -> Self {
        Issue {
            span: None,
            key_path: Some(key_path.to_owned()),
            message: message.into(),
            first_defined: None,
        }
    }

    pub(crate) fn with_key_path(mut self, key_path: &str) -> Self {
        self.key_path = Some(key_path.to_owned());
        self
    }

    pub(crate) fn first_defined_at(mut self, span: Range<usize>) -> Self {
        self.first_defined = Some(span);
        self
    }

    /// What `toml` refused in `text`. Its "duplicate key" names no key: the key is the text
    /// of the span, so the message names it.
    pub(crate) fn from_toml(error: &toml::de::Error, text: &str) -> Self {
        let mut message = error.message().trim_end().to_owned();
        let key = error
            .span()
            .and_then(|span| text.get(span))
            .map(|key| key.trim_matches(|c| c == '"' || c == '\''));
        if let (DUPLICATE_KEY, Some(key)) = (message.as_str(), key) {
            message = format!("{DUPLICATE_KEY} {key:?}: a key may be set once per table");
        }
        Issue {
            span: error.span(),
            key_path: None,
            message,
            first_defined: None,
        }
    }

    pub(crate) fn diagnose(self, source_map: &SourceMap<'_>) -> Diagnostic {
        let mut message = self.message;
        if let Some(first) = self.first_defined {
            let first = source_map.locate(first);
            let here = self.span.clone().map(|span| source_map.locate(span).line);
            if here == Some(first.line) {
                message.push_str(&format!(" (first at column {})", first.column));
            } else {
                message.push_str(&format!(" (first at line {})", first.line));
            }
        }
        match self.span {
            Some(span) => {
                let location = source_map.locate(span);
                Diagnostic {
                    line: Some(location.line),
                    column: Some(location.column),
                    key_path: self.key_path.unwrap_or(location.key_path),
                    message,
                    source_line: Some(location.source_line),
                    width: location.width,
                }
            }
            None => Diagnostic {
                line: None,
                column: None,
                key_path: self.key_path.unwrap_or_default(),
                message,
                source_line: None,
                width: 0,
            },
        }
    }
}
