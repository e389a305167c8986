//! Kubernetes resource quantities (`500m`, `1Gi`, `1.5`): the canonical form
//! the API server stores, and comparison by value (`1000m` equals `1`).

/// A quantity's value as `mantissa × 10^exponent`, normalised.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Decimal {
    mantissa: i128,
    exponent: i32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Format {
    Binary,
    Decimal,
    Exponent,
}

fn parse(text: &str) -> Option<(Decimal, Format)> {
    let text = text.trim();
    let split = text
        .find(|c: char| !(c.is_ascii_digit() || c == '.' || c == '+' || c == '-'))
        .unwrap_or(text.len());
    let (number, suffix) = text.split_at(split);
    let (negative, number) = match number.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, number.strip_prefix('+').unwrap_or(number)),
    };
    let (whole, fraction) = number.split_once('.').unwrap_or((number, ""));
    if whole.is_empty() && fraction.is_empty() {
        return None;
    }
    if !whole
        .chars()
        .chain(fraction.chars())
        .all(|c| c.is_ascii_digit())
        || whole.len() + fraction.len() > 30
    {
        return None;
    }
    let digits = format!("{whole}{fraction}");
    let mut mantissa: i128 = if digits.is_empty() {
        0
    } else {
        digits.parse().ok()?
    };
    if negative {
        mantissa = -mantissa;
    }
    let mut exponent = -i32::try_from(fraction.len()).ok()?;
    let format = match suffix {
        "Ki" | "Mi" | "Gi" | "Ti" | "Pi" | "Ei" => {
            let power = ["Ki", "Mi", "Gi", "Ti", "Pi", "Ei"]
                .iter()
                .position(|s| *s == suffix)?
                + 1;
            mantissa = mantissa.checked_mul(1024_i128.checked_pow(u32::try_from(power).ok()?)?)?;
            Format::Binary
        }
        "n" | "u" | "m" | "" | "k" | "M" | "G" | "T" | "P" | "E" => {
            let index = ["n", "u", "m", "", "k", "M", "G", "T", "P", "E"]
                .iter()
                .position(|s| *s == suffix)?;
            exponent += (i32::try_from(index).ok()? - 3) * 3;
            Format::Decimal
        }
        _ => {
            let power: i32 = suffix.strip_prefix(['e', 'E'])?.parse().ok()?;
            exponent += power;
            Format::Exponent
        }
    };
    Some((normalise(Decimal { mantissa, exponent }), format))
}

fn normalise(mut value: Decimal) -> Decimal {
    if value.mantissa == 0 {
        return Decimal {
            mantissa: 0,
            exponent: 0,
        };
    }
    while value.mantissa % 10 == 0 {
        value.mantissa /= 10;
        value.exponent += 1;
    }
    value
}

/// The form the API server stores a quantity in, or `None` if it is not one.
pub fn canonical(text: &str) -> Option<String> {
    let (mut value, format) = parse(text)?;
    if format == Format::Exponent {
        return Some(text.trim().to_string());
    }
    if value.exponent < -3 {
        // Sub-milli precision rounds up, as the API server stores it.
        let divisor = 10_i128.checked_pow(u32::try_from(-3 - value.exponent).ok()?)?;
        let rounded = value.mantissa / divisor + i128::from(value.mantissa % divisor != 0);
        value = normalise(Decimal {
            mantissa: rounded,
            exponent: -3,
        });
    }
    if format == Format::Binary && value.exponent >= 0 {
        let bytes = value
            .mantissa
            .checked_mul(10_i128.checked_pow(u32::try_from(value.exponent).ok()?)?)?;
        let suffixes = ["", "Ki", "Mi", "Gi", "Ti", "Pi", "Ei"];
        let mut power = 0;
        while power + 1 < suffixes.len()
            && bytes != 0
            && bytes % 1024_i128.pow(u32::try_from(power + 1).ok()?) == 0
        {
            power += 1;
        }
        return Some(format!(
            "{}{}",
            bytes / 1024_i128.pow(u32::try_from(power).ok()?),
            suffixes[power]
        ));
    }
    if value.mantissa == 0 {
        return Some("0".into());
    }
    let exponent = (value.exponent.div_euclid(3) * 3).clamp(-9, 18);
    let mantissa = value
        .mantissa
        .checked_mul(10_i128.checked_pow(u32::try_from(value.exponent - exponent).ok()?)?)?;
    let suffix = ["n", "u", "m", "", "k", "M", "G", "T", "P", "E"]
        [usize::try_from(exponent / 3 + 3).ok()?];
    Some(format!("{mantissa}{suffix}"))
}

/// Whether two quantities have the same value, however they are written.
pub fn equal(a: &str, b: &str) -> bool {
    match (parse(a), parse(b)) {
        (Some((a, _)), Some((b, _))) => a == b,
        _ => false,
    }
}

/// Rewrite every quantity under `requests`, `limits`, `capacity`,
/// `allocatable`, `hard` and `used` in its canonical form, as the server
/// stores it.
pub fn canonicalize(value: &mut serde_json::Value) {
    use serde_json::Value;
    fn walk(value: &mut Value, in_quantities: bool) {
        match value {
            Value::Object(map) => {
                for (key, child) in map.iter_mut() {
                    let quantities = matches!(
                        key.as_str(),
                        "requests" | "limits" | "capacity" | "allocatable" | "hard" | "used"
                    );
                    walk(child, quantities);
                    if !in_quantities {
                        continue;
                    }
                    let canonical = match child {
                        Value::String(text) => canonical(text),
                        Value::Number(number) => canonical(&number.to_string()),
                        _ => None,
                    };
                    if let Some(canonical) = canonical {
                        *child = Value::String(canonical);
                    }
                }
            }
            Value::Array(items) => items.iter_mut().for_each(|item| walk(item, false)),
            _ => {}
        }
    }
    walk(value, false);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn canonical_forms_as_the_server_writes_them() {
        for (input, expected) in [
            ("0.5", "500m"),
            ("1000m", "1"),
            ("1.0", "1"),
            ("100m", "100m"),
            ("2", "2"),
            ("1024Mi", "1Gi"),
            ("2048Ki", "2Mi"),
            ("0.5Gi", "512Mi"),
            ("1536Mi", "1536Mi"),
            ("1000k", "1M"),
            ("1500M", "1500M"),
            ("0.0001", "1m"),
            ("256Mi", "256Mi"),
            ("0", "0"),
        ] {
            assert_eq!(canonical(input).as_deref(), Some(expected), "{input}");
        }
        assert_eq!(canonical("lots"), None);
        assert_eq!(canonical("1e3").as_deref(), Some("1e3"));
    }

    #[test]
    fn equality_by_value() {
        assert!(equal("1000m", "1"));
        assert!(equal("1Gi", "1024Mi"));
        assert!(equal("1Ki", "1024"));
        assert!(!equal("1", "2"));
        assert!(!equal("x", "x"));
    }
}
