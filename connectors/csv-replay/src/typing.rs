//! CSV cell typing: inference over a sample, and conversion that keeps the
//! exact text of numbers.

use std::str::FromStr;

use connect_core::Value;
use serde_json::Number;

use crate::config::ColumnType;

/// Converts one cell's text to a value of `ty`. An empty cell is null.
/// Errors say what the text is not; the caller adds where it is.
pub fn convert(text: &str, ty: ColumnType) -> Result<Value, String> {
    if text.is_empty() {
        return Ok(Value::Null);
    }
    match ty {
        ColumnType::String => Ok(Value::String(text.to_owned())),
        ColumnType::Boolean => parse_bool(text)
            .map(Value::Bool)
            .ok_or_else(|| format!("`{text}` is not a boolean (true or false)")),
        ColumnType::Integer => {
            if is_json_integer(text) && text.parse::<i64>().is_ok() {
                number_from_text(text)
            } else if let Ok(i) = text.trim_start_matches('+').parse::<i64>() {
                Ok(Value::Number(i.into()))
            } else {
                Err(format!("`{text}` is not an integer (64-bit)"))
            }
        }
        ColumnType::Float => {
            if is_json_number(text) {
                number_from_text(text)
            } else {
                match text.parse::<f64>() {
                    Ok(f) if f.is_finite() && !is_special_float(text) => Number::from_f64(f)
                        .map(Value::Number)
                        .ok_or_else(|| format!("`{text}` is not a finite number")),
                    _ => Err(format!("`{text}` is not a float (a finite decimal number)")),
                }
            }
        }
    }
}

/// Appends the JSON text of one cell converted to `ty` to `out`: exactly
/// what serialising [`convert`]'s value writes, with the same errors, but
/// without building the value for the common cells (strings, booleans,
/// and numbers written as JSON writes them, whose text is copied).
pub fn write_json(text: &str, ty: ColumnType, out: &mut Vec<u8>) -> Result<(), String> {
    let verbatim = match ty {
        _ if text.is_empty() => {
            out.extend_from_slice(b"null");
            return Ok(());
        }
        ColumnType::String => {
            return serde_json::to_writer(&mut *out, text).map_err(|e| e.to_string());
        }
        ColumnType::Boolean => {
            let b = parse_bool(text)
                .ok_or_else(|| format!("`{text}` is not a boolean (true or false)"))?;
            out.extend_from_slice(if b { b"true" } else { b"false" });
            return Ok(());
        }
        ColumnType::Integer => is_json_integer(text) && text.parse::<i64>().is_ok(),
        // serde_json rewrites exponents (`1.5e10` as `1.5e+10`): those go
        // through the value.
        ColumnType::Float => is_json_number(text) && !text.contains(['e', 'E']),
    };
    if verbatim {
        out.extend_from_slice(text.as_bytes());
        Ok(())
    } else {
        let value = convert(text, ty)?;
        serde_json::to_writer(&mut *out, &value).map_err(|e| e.to_string())
    }
}

/// The narrowest type that every non-empty sample value fits: boolean, then
/// integer, then float, else string. Numbers must be written as JSON writes
/// them, so that text like `02134` (a code, not a number) stays a string.
pub fn infer<'a>(values: impl Iterator<Item = &'a str> + Clone) -> ColumnType {
    let non_empty = values.filter(|v| !v.is_empty());
    if non_empty.clone().next().is_none() {
        return ColumnType::String;
    }
    let fits = |ty: ColumnType, v: &str| match ty {
        ColumnType::Boolean => parse_bool(v).is_some(),
        ColumnType::Integer => is_json_integer(v) && v.parse::<i64>().is_ok(),
        ColumnType::Float => is_json_number(v),
        ColumnType::String => true,
    };
    [ColumnType::Boolean, ColumnType::Integer, ColumnType::Float]
        .into_iter()
        .find(|&ty| non_empty.clone().all(|v| fits(ty, v)))
        .unwrap_or(ColumnType::String)
}

fn number_from_text(text: &str) -> Result<Value, String> {
    Number::from_str(text)
        .map(Value::Number)
        .map_err(|e| format!("`{text}` is not a number ({e})"))
}

fn parse_bool(text: &str) -> Option<bool> {
    if text.eq_ignore_ascii_case("true") {
        Some(true)
    } else if text.eq_ignore_ascii_case("false") {
        Some(false)
    } else {
        None
    }
}

fn is_special_float(text: &str) -> bool {
    let t = text.trim_start_matches(['+', '-']);
    t.eq_ignore_ascii_case("inf")
        || t.eq_ignore_ascii_case("infinity")
        || t.eq_ignore_ascii_case("nan")
}

/// `-?(0|[1-9][0-9]*)`
fn is_json_integer(text: &str) -> bool {
    let digits = text.strip_prefix('-').unwrap_or(text);
    !digits.is_empty()
        && digits.bytes().all(|b| b.is_ascii_digit())
        && (digits == "0" || !digits.starts_with('0'))
}

/// The JSON number grammar: an integer part, optional fraction, optional exponent.
fn is_json_number(text: &str) -> bool {
    let (mantissa, exponent) = match text.find(['e', 'E']) {
        Some(i) => (&text[..i], Some(&text[i + 1..])),
        None => (text, None),
    };
    let (int_part, fraction) = match mantissa.split_once('.') {
        Some((i, f)) => (i, Some(f)),
        None => (mantissa, None),
    };
    let fraction_ok =
        fraction.is_none_or(|f| !f.is_empty() && f.bytes().all(|b| b.is_ascii_digit()));
    let exponent_ok = exponent.is_none_or(|e| {
        let e = e.strip_prefix(['+', '-']).unwrap_or(e);
        !e.is_empty() && e.bytes().all(|b| b.is_ascii_digit())
    });
    is_json_integer(int_part) && fraction_ok && exponent_ok
}

#[cfg(test)]
mod tests {
    use super::*;

    fn json(value: &Value) -> String {
        serde_json::to_string(value).unwrap()
    }

    #[test]
    fn written_json_is_the_converted_value_serialised() {
        let texts = [
            "",
            "abc",
            "Zürich \"quoted\"\tand\\",
            "\u{1}",
            "true",
            "FALSE",
            "yes",
            "0",
            "-0",
            "007",
            "+5",
            "-12",
            "9223372036854775807",
            "9223372036854775808",
            "1.",
            ".5",
            "1.50",
            "-0.0",
            "1e5",
            "1.5E-7",
            "335.90698726000005",
            "inf",
            "NaN",
            "1_000",
            " 1",
            "2021-05-28",
        ];
        let types = [
            ColumnType::String,
            ColumnType::Boolean,
            ColumnType::Integer,
            ColumnType::Float,
        ];
        for text in texts {
            for ty in types {
                let mut out = Vec::new();
                let written =
                    write_json(text, ty, &mut out).map(|()| String::from_utf8(out).unwrap());
                let converted = convert(text, ty).map(|v| json(&v));
                assert_eq!(written, converted, "`{text}` as {ty:?}");
            }
        }
    }

    #[test]
    fn numbers_keep_their_exact_text() {
        for text in [
            "335.90698726000005",
            "0.0",
            "2568.300049",
            "1.5e-7",
            "-0.000001",
            "0",
            "12345678901234567890.5",
        ] {
            assert_eq!(json(&convert(text, ColumnType::Float).unwrap()), text);
        }
        // serde_json writes the exponent as `e` with a sign; the digits are kept.
        assert_eq!(
            json(&convert("1.5e10", ColumnType::Float).unwrap()),
            "1.5e+10"
        );
        assert_eq!(
            json(&convert("1.5E-7", ColumnType::Float).unwrap()),
            "1.5e-7"
        );
        assert_eq!(
            json(&convert("4294967296000", ColumnType::Integer).unwrap()),
            "4294967296000"
        );
    }

    #[test]
    fn non_json_spellings_are_normalised_not_rejected() {
        assert_eq!(json(&convert(".5", ColumnType::Float).unwrap()), "0.5");
        assert_eq!(json(&convert("+7", ColumnType::Integer).unwrap()), "7");
        assert_eq!(json(&convert("007", ColumnType::Integer).unwrap()), "7");
    }

    #[test]
    fn bad_values_say_what_they_are_not() {
        assert_eq!(
            convert("abc", ColumnType::Float).unwrap_err(),
            "`abc` is not a float (a finite decimal number)"
        );
        assert!(convert("NaN", ColumnType::Float).is_err());
        assert!(convert("inf", ColumnType::Float).is_err());
        assert_eq!(
            convert("1.5", ColumnType::Integer).unwrap_err(),
            "`1.5` is not an integer (64-bit)"
        );
        assert!(convert("yes", ColumnType::Boolean).is_err());
        assert_eq!(convert("", ColumnType::Integer).unwrap(), Value::Null);
        assert_eq!(
            convert("TRUE", ColumnType::Boolean).unwrap(),
            Value::Bool(true)
        );
    }

    #[test]
    fn infers_the_narrowest_type_that_fits_the_sample() {
        assert_eq!(infer(["1", "2", ""].into_iter()), ColumnType::Integer);
        assert_eq!(infer(["1", "2.5"].into_iter()), ColumnType::Float);
        assert_eq!(infer(["0.0", "12.0"].into_iter()), ColumnType::Float);
        assert_eq!(infer(["true", "False"].into_iter()), ColumnType::Boolean);
        assert_eq!(infer(["000001.SS", "HSI"].into_iter()), ColumnType::String);
        assert_eq!(infer(["1986-12-31"].into_iter()), ColumnType::String);
        assert_eq!(infer(["", ""].into_iter()), ColumnType::String);
        assert_eq!(infer(["02134", "10001"].into_iter()), ColumnType::String);
        assert_eq!(infer([".5"].into_iter()), ColumnType::String);
    }
}
