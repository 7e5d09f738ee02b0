//! The query string of `/capture` and `/trace`: `key=value&…`, percent-decoded, every key known
//! and given once, values checked as they are taken.

use std::time::Duration;

/// A parsed query: what is left to take.
#[derive(Debug)]
pub struct Query {
    pairs: Vec<(String, String)>,
}

/// `%41` → `A`, `+` → space; `None` for a broken escape or bytes that are not UTF-8.
fn decode(text: &str) -> Option<String> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' => {
                let hex = text.get(i + 1..i + 3)?;
                out.push(u8::from_str_radix(hex, 16).ok()?);
                i += 3;
            }
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8(out).ok()
}

impl Query {
    /// Parses `query`, refusing keys not in `known` and keys given twice.
    pub fn parse(query: Option<&str>, known: &[&str]) -> Result<Query, String> {
        let mut pairs: Vec<(String, String)> = Vec::new();
        for part in query
            .unwrap_or_default()
            .split('&')
            .filter(|p| !p.is_empty())
        {
            let (key, value) = part.split_once('=').unwrap_or((part, ""));
            let (Some(key), Some(value)) = (decode(key), decode(value)) else {
                return Err(format!("{part:?} is not a well-formed query parameter"));
            };
            if !known.contains(&key.as_str()) {
                return Err(format!(
                    "unknown parameter {key:?}; the parameters are: {}",
                    known.join(", ")
                ));
            }
            if pairs.iter().any(|(k, _)| *k == key) {
                return Err(format!("{key} given twice"));
            }
            pairs.push((key, value));
        }
        Ok(Query { pairs })
    }

    /// The value of `key`, if given.
    pub fn take(&mut self, key: &str) -> Option<String> {
        let at = self.pairs.iter().position(|(k, _)| k == key)?;
        Some(self.pairs.swap_remove(at).1)
    }

    /// The value of `key` as a whole number within `min..=max`, if given.
    pub fn number(&mut self, key: &str, min: u64, max: u64) -> Result<Option<u64>, String> {
        let Some(text) = self.take(key) else {
            return Ok(None);
        };
        match text.parse::<u64>() {
            Ok(n) if (min..=max).contains(&n) => Ok(Some(n)),
            _ if max == u64::MAX => Err(format!(
                "{key}={text:?}: expected a whole number, at least {min}"
            )),
            _ => Err(format!(
                "{key}={text:?}: expected a whole number from {min} to {max}"
            )),
        }
    }

    /// The value of `key` as a duration (`10s`, `500ms`, `2m`), above zero and at most `max`,
    /// if given.
    pub fn duration(&mut self, key: &str, max: Duration) -> Result<Option<Duration>, String> {
        let Some(text) = self.take(key) else {
            return Ok(None);
        };
        match humantime::parse_duration(&text) {
            Ok(d) if !d.is_zero() && d <= max => Ok(Some(d)),
            Ok(_) => Err(format!(
                "{key}={text:?}: expected a duration above zero and at most {}",
                humantime::format_duration(max)
            )),
            Err(e) => Err(format!(
                "{key}={text:?}: not a duration ({e}; e.g. 10s, 500ms, 2m)"
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_decodes_and_refuses_what_it_does_not_know() {
        let mut q = Query::parse(
            Some("port=ids%2D1&count=5&duration=1m30s"),
            &["port", "count", "duration"],
        )
        .unwrap();
        assert_eq!(q.take("port").as_deref(), Some("ids-1"));
        assert_eq!(q.number("count", 1, 10), Ok(Some(5)));
        assert_eq!(
            q.duration("duration", Duration::from_secs(3600)),
            Ok(Some(Duration::from_secs(90)))
        );
        assert_eq!(q.take("port"), None, "taken");
        let err = Query::parse(Some("prot=x"), &["port"]).unwrap_err();
        assert!(err.contains("unknown parameter \"prot\""), "{err}");
        assert!(
            Query::parse(Some("port=a&port=b"), &["port"])
                .unwrap_err()
                .contains("twice")
        );
        assert!(Query::parse(Some("port=%zz"), &["port"]).is_err());
        assert!(Query::parse(None, &["port"]).is_ok());
    }

    #[test]
    fn numbers_and_durations_are_checked() {
        let mut q = Query::parse(
            Some("count=0&snaplen=x&duration=0s"),
            &["count", "snaplen", "duration"],
        )
        .unwrap();
        assert!(
            q.number("count", 1, 10)
                .unwrap_err()
                .contains("from 1 to 10")
        );
        assert!(
            q.number("snaplen", 1, u64::MAX)
                .unwrap_err()
                .contains("at least 1")
        );
        assert!(
            q.duration("duration", Duration::from_secs(9))
                .unwrap_err()
                .contains("above zero")
        );
        let mut q = Query::parse(Some("duration=soon"), &["duration"]).unwrap();
        assert!(
            q.duration("duration", Duration::from_secs(9))
                .unwrap_err()
                .contains("not a duration")
        );
    }
}
