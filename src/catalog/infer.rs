//! Schema inference over JSON records, as a Glue crawler's JSON classifier
//! does it: every record's fields, in first-seen order, with a type that is
//! widened until every record seen fits it.
//!
//! Types and how they merge:
//!
//! - `null` alone says nothing: a field that was only ever null ends as
//!   `string` (what Glue does), and null merged with any type is that type.
//! - `true`/`false` are `boolean`.
//! - An integer (no fraction, no exponent) that fits 64 bits is `bigint`.
//!   Glue picks `int` while every sampled value fits 32 bits; Sluice always
//!   picks `bigint`, because a sample cannot prove that the values it did not
//!   read fit 32 bits, and one that does not makes Athena fail the whole
//!   query (`HIVE_BAD_DATA`). In JSON text `bigint` costs nothing more.
//! - A number with a fraction or an exponent, or an integer beyond 64 bits,
//!   is `double`; `bigint` and `double` merge to `double`.
//! - Strings are `string`.
//! - Objects are `struct<...>`, their fields merged by name recursively (a
//!   field missing from some objects is simply null there); `{}` alone ends
//!   as `string` (Hive has no empty struct).
//! - Arrays are `array<...>` of their elements merged; an array only ever
//!   empty ends as `array<string>`.
//! - Anything else that meets (a number and a string, an object and an
//!   array, ...) is `string`: the JSON SerDe reads any value into a string
//!   column as its JSON text, so no record is lost.

use serde_json::Value;

/// The type inferred for a JSON value or field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JsonType {
    /// Only nulls seen so far.
    Null,
    /// `boolean`.
    Boolean,
    /// `bigint`: integers that fit 64 bits.
    BigInt,
    /// `double`: numbers with a fraction or exponent, or huge integers.
    Double,
    /// `string`, also the result of incompatible types.
    String,
    /// `struct<...>`: fields by JSON key, in first-seen order.
    Struct(Vec<(String, JsonType)>),
    /// `array<...>` of the merged element type (`Null` while only empty arrays were seen).
    Array(Box<JsonType>),
}

impl JsonType {
    /// The type of one value.
    pub fn of(value: &Value) -> JsonType {
        match value {
            Value::Null => JsonType::Null,
            Value::Bool(_) => JsonType::Boolean,
            Value::Number(number) => {
                if number.as_i64().is_some() {
                    JsonType::BigInt
                } else {
                    JsonType::Double
                }
            }
            Value::String(_) => JsonType::String,
            Value::Array(items) => JsonType::Array(Box::new(
                items.iter().fold(JsonType::Null, |merged, item| {
                    merged.merge(JsonType::of(item))
                }),
            )),
            Value::Object(object) => {
                let mut fields = Vec::new();
                for (key, value) in object {
                    merge_field(&mut fields, key.clone(), JsonType::of(value));
                }
                JsonType::Struct(fields)
            }
        }
    }

    /// The narrowest type both `self` and `other` fit.
    pub fn merge(self, other: JsonType) -> JsonType {
        use JsonType::*;
        match (self, other) {
            (Null, other) | (other, Null) => other,
            (Boolean, Boolean) => Boolean,
            (BigInt, BigInt) => BigInt,
            (BigInt | Double, BigInt | Double) => Double,
            (Struct(mut fields), Struct(others)) => {
                for (key, ty) in others {
                    merge_field(&mut fields, key, ty);
                }
                Struct(fields)
            }
            (Array(item), Array(other)) => Array(Box::new(item.merge(*other))),
            _ => String,
        }
    }
}

fn merge_field(fields: &mut Vec<(String, JsonType)>, key: String, ty: JsonType) {
    match fields.iter_mut().find(|(name, _)| *name == key) {
        Some((_, existing)) => {
            let current = std::mem::replace(existing, JsonType::Null);
            *existing = current.merge(ty);
        }
        None => fields.push((key, ty)),
    }
}

/// The schema of a table's records: the top-level fields of every JSON
/// object seen, merged.
#[derive(Debug, Clone, Default)]
pub struct SchemaBuilder {
    fields: Vec<(String, JsonType)>,
}

impl SchemaBuilder {
    /// Takes in one record (a JSON object).
    pub fn observe(&mut self, record: &serde_json::Map<String, Value>) {
        for (key, value) in record {
            merge_field(&mut self.fields, key.clone(), JsonType::of(value));
        }
    }

    /// The top-level fields in first-seen order with their merged types.
    pub fn fields(&self) -> &[(String, JsonType)] {
        &self.fields
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn schema(lines: &[Value]) -> Vec<(String, JsonType)> {
        let mut builder = SchemaBuilder::default();
        for line in lines {
            builder.observe(line.as_object().expect("test records are objects"));
        }
        builder.fields().to_vec()
    }

    fn field(name: &str, ty: JsonType) -> (String, JsonType) {
        (name.to_owned(), ty)
    }

    #[test]
    fn scalars_have_their_types() {
        assert_eq!(JsonType::of(&json!(true)), JsonType::Boolean);
        assert_eq!(JsonType::of(&json!(7)), JsonType::BigInt);
        assert_eq!(
            JsonType::of(&json!(-9223372036854775808i64)),
            JsonType::BigInt
        );
        assert_eq!(JsonType::of(&json!(1.5)), JsonType::Double);
        assert_eq!(JsonType::of(&json!("x")), JsonType::String);
        assert_eq!(JsonType::of(&json!(null)), JsonType::Null);
    }

    #[test]
    fn number_text_decides_between_bigint_and_double() {
        // Numbers keep their text (arbitrary_precision): `0.0` is a double,
        // an exponent is a double, a 20-digit integer does not fit bigint.
        let parse = |text: &str| JsonType::of(&serde_json::from_str::<Value>(text).unwrap());
        assert_eq!(parse("0.0"), JsonType::Double);
        assert_eq!(parse("1e+10"), JsonType::Double);
        assert_eq!(parse("2147483648"), JsonType::BigInt);
        assert_eq!(parse("18446744073709551616"), JsonType::Double);
        assert_eq!(parse("9223372036854775808"), JsonType::Double);
    }

    #[test]
    fn columns_keep_first_seen_order_and_case() {
        let fields = schema(&[
            json!({"Index": "HSI", "Date": "1986-12-31"}),
            json!({"Date": "1987-01-02", "Volume": 0, "Index": "HSI"}),
        ]);
        assert_eq!(
            fields,
            vec![
                field("Index", JsonType::String),
                field("Date", JsonType::String),
                field("Volume", JsonType::BigInt),
            ]
        );
    }

    #[test]
    fn numbers_widen_across_records() {
        let fields = schema(&[
            json!({"a": 1, "b": 1, "c": 2.5}),
            json!({"a": 2, "b": 1.25, "c": 3}),
        ]);
        assert_eq!(
            fields,
            vec![
                field("a", JsonType::BigInt),
                field("b", JsonType::Double),
                field("c", JsonType::Double),
            ]
        );
    }

    #[test]
    fn incompatible_types_become_string() {
        let fields = schema(&[
            json!({"n": 1, "b": true, "o": {"x": 1}, "a": [1]}),
            json!({"n": "one", "b": 0, "o": [1], "a": {"x": 1}}),
        ]);
        assert_eq!(
            fields,
            vec![
                field("n", JsonType::String),
                field("b", JsonType::String),
                field("o", JsonType::String),
                field("a", JsonType::String),
            ]
        );
        // Once a string, always a string.
        assert_eq!(
            JsonType::String
                .merge(JsonType::BigInt)
                .merge(JsonType::Double),
            JsonType::String
        );
    }

    #[test]
    fn nulls_say_nothing_and_null_only_stays_null() {
        let fields = schema(&[
            json!({"a": null, "b": null}),
            json!({"a": 3, "b": null}),
            json!({"a": null}),
        ]);
        assert_eq!(
            fields,
            vec![field("a", JsonType::BigInt), field("b", JsonType::Null)]
        );
    }

    #[test]
    fn objects_merge_recursively_into_structs() {
        let fields = schema(&[
            json!({"s": {"x": 1, "inner": {"p": true}}}),
            json!({"s": {"y": "t", "x": 2.5, "inner": {"q": null}}}),
            json!({"s": null}),
        ]);
        assert_eq!(
            fields,
            vec![field(
                "s",
                JsonType::Struct(vec![
                    field("x", JsonType::Double),
                    field(
                        "inner",
                        JsonType::Struct(vec![
                            field("p", JsonType::Boolean),
                            field("q", JsonType::Null)
                        ])
                    ),
                    field("y", JsonType::String),
                ])
            )]
        );
    }

    #[test]
    fn arrays_merge_their_elements() {
        let fields = schema(&[
            json!({"a": [1, 2], "e": [], "s": [{"k": 1}], "m": [1, "x"]}),
            json!({"a": [3.5], "e": [], "s": [{"k": 2, "v": [true]}], "m": []}),
        ]);
        assert_eq!(
            fields,
            vec![
                field("a", JsonType::Array(Box::new(JsonType::Double))),
                field("e", JsonType::Array(Box::new(JsonType::Null))),
                field(
                    "s",
                    JsonType::Array(Box::new(JsonType::Struct(vec![
                        field("k", JsonType::BigInt),
                        field("v", JsonType::Array(Box::new(JsonType::Boolean))),
                    ])))
                ),
                field("m", JsonType::Array(Box::new(JsonType::String))),
            ]
        );
    }

    #[test]
    fn the_stock_replay_row_is_strings_and_doubles() {
        let line = r#"{"Index":"HSI","Date":"1986-12-31","Open":2568.300049,"High":2568.300049,"Low":2568.300049,"Close":2568.300049,"Adj Close":2568.300049,"Volume":0.0,"CloseUSD":333.87900637}"#;
        let value: Value = serde_json::from_str(line).unwrap();
        let fields = schema(&[value]);
        let types: Vec<(&str, &JsonType)> = fields.iter().map(|(k, t)| (k.as_str(), t)).collect();
        assert_eq!(
            types,
            vec![
                ("Index", &JsonType::String),
                ("Date", &JsonType::String),
                ("Open", &JsonType::Double),
                ("High", &JsonType::Double),
                ("Low", &JsonType::Double),
                ("Close", &JsonType::Double),
                ("Adj Close", &JsonType::Double),
                ("Volume", &JsonType::Double),
                ("CloseUSD", &JsonType::Double),
            ]
        );
    }
}
