//! Numbers for people: rates with an SI prefix.

/// `1234567.0` → `1.23 M`: three significant digits and an SI prefix (none below 1000).
pub fn si(value: f64) -> String {
    let (scaled, prefix) = match value.abs() {
        v if v >= 1e9 => (value / 1e9, " G"),
        v if v >= 1e6 => (value / 1e6, " M"),
        v if v >= 1e3 => (value / 1e3, " k"),
        _ => (value, ""),
    };
    if prefix.is_empty() {
        format!("{scaled:.0}")
    } else if scaled.abs() >= 100.0 {
        format!("{scaled:.0}{prefix}")
    } else if scaled.abs() >= 10.0 {
        format!("{scaled:.1}{prefix}")
    } else {
        format!("{scaled:.2}{prefix}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn si_prefixes() {
        let shown: Vec<String> = [0.0, 7.4, 999.0, 1234.0, 45_600.0, 1.5e6, 987e6, 12.3e9]
            .into_iter()
            .map(si)
            .collect();
        assert_eq!(
            shown,
            [
                "0", "7", "999", "1.23 k", "45.6 k", "1.50 M", "987 M", "12.3 G"
            ]
        );
    }
}
