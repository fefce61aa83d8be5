//! Reading the Prometheus text a BFF serves on `/metrics`.

/// One sample line: `name{label="value",...} value`.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    pub name: String,
    pub labels: Vec<(String, String)>,
    pub value: f64,
}

impl Sample {
    /// The value of label `key`, if the sample has it.
    pub fn label(&self, key: &str) -> Option<&str> {
        self.labels
            .iter()
            .find(|(name, _)| name == key)
            .map(|(_, value)| value.as_str())
    }

    /// Whether the sample has every one of `labels`.
    pub fn has(&self, labels: &[(&str, &str)]) -> bool {
        labels
            .iter()
            .all(|(key, value)| self.label(key) == Some(value))
    }
}

/// Every sample of `text` (comments skipped). Panics on a line that is
/// not a sample: the exporter must write valid text.
pub fn samples(text: &str) -> Vec<Sample> {
    text.lines()
        .filter(|line| !line.is_empty() && !line.starts_with('#'))
        .map(|line| parse_line(line).unwrap_or_else(|| panic!("not a sample: {line:?}")))
        .collect()
}

/// The samples of metric `name` (a histogram's are `name_bucket`,
/// `name_sum`, `name_count`) with at least `labels`.
pub fn find(text: &str, name: &str, labels: &[(&str, &str)]) -> Vec<Sample> {
    samples(text)
        .into_iter()
        .filter(|sample| sample.name == name && sample.has(labels))
        .collect()
}

/// The value of the one series of `name` with at least `labels`; 0 when
/// there is none yet (counters start at 0).
pub fn value(text: &str, name: &str, labels: &[(&str, &str)]) -> f64 {
    let found = find(text, name, labels);
    assert!(found.len() <= 1, "several series match: {found:#?}");
    found.first().map_or(0.0, |sample| sample.value)
}

/// Whether metric family `name` has any sample in `text`.
pub fn has_family(text: &str, name: &str) -> bool {
    samples(text).iter().any(|sample| {
        sample.name == name
            || ["_bucket", "_sum", "_count"]
                .iter()
                .any(|suffix| sample.name.strip_suffix(suffix) == Some(name))
    })
}

fn parse_line(line: &str) -> Option<Sample> {
    let (series, value) = line.rsplit_once(' ')?;
    let value = match value {
        "+Inf" => f64::INFINITY,
        "-Inf" => f64::NEG_INFINITY,
        value => value.parse().ok()?,
    };
    let Some((name, labels)) = series.split_once('{') else {
        return Some(Sample {
            name: series.to_owned(),
            labels: Vec::new(),
            value,
        });
    };
    let labels = parse_labels(labels.strip_suffix('}')?)?;
    Some(Sample {
        name: name.to_owned(),
        labels,
        value,
    })
}

/// `a="x",b="y \"quoted\""` → pairs, unescaped.
fn parse_labels(mut text: &str) -> Option<Vec<(String, String)>> {
    let mut labels = Vec::new();
    while !text.is_empty() {
        let (key, rest) = text.split_once("=\"")?;
        let mut value = String::new();
        let mut chars = rest.char_indices();
        let end = loop {
            match chars.next()? {
                (_, '\\') => match chars.next()?.1 {
                    'n' => value.push('\n'),
                    other => value.push(other),
                },
                (at, '"') => break at,
                (_, other) => value.push(other),
            }
        };
        labels.push((key.to_owned(), value));
        text = &rest[end + 1..];
        text = text.strip_prefix(',').unwrap_or(text);
    }
    Some(labels)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_names_labels_and_values() {
        let text = "# TYPE x counter\n\
                    x{bff=\"web-bff\",code=\"a \\\"b\\\"\"} 3\n\
                    y 0.5\n\
                    h_bucket{le=\"+Inf\"} 2\n";
        let all = samples(text);
        assert_eq!(all.len(), 3);
        assert_eq!(all[0].label("code"), Some("a \"b\""));
        assert_eq!(value(text, "x", &[("bff", "web-bff")]), 3.0);
        assert_eq!(value(text, "y", &[]), 0.5);
        assert_eq!(value(text, "z", &[]), 0.0);
        assert!(has_family(text, "h"));
        assert!(!has_family(text, "z"));
    }
}
