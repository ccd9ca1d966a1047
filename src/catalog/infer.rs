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
//!
//! A Parquet object's columns come typed from its footer (the Arrow schema
//! of the file, see [`JsonType::of_arrow`]) and merge into the same types
//! the same way, so an object with `open` as `bigint` and one with `double`
//! make a `double` column.

use datafusion::arrow::datatypes::DataType;
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

    /// The type of a Parquet (Arrow) column: integers `bigint`, floating
    /// point `double`, text `string`, `boolean`, lists `array<...>`, structs
    /// `struct<...>`, the null type [`JsonType::Null`]; any other type
    /// (dates, timestamps, decimals, binary, maps, ...) `string`.
    pub fn of_arrow(data_type: &DataType) -> JsonType {
        match data_type {
            DataType::Null => JsonType::Null,
            DataType::Boolean => JsonType::Boolean,
            DataType::Int8
            | DataType::Int16
            | DataType::Int32
            | DataType::Int64
            | DataType::UInt8
            | DataType::UInt16
            | DataType::UInt32
            | DataType::UInt64 => JsonType::BigInt,
            DataType::Float16 | DataType::Float32 | DataType::Float64 => JsonType::Double,
            DataType::List(item)
            | DataType::LargeList(item)
            | DataType::ListView(item)
            | DataType::LargeListView(item)
            | DataType::FixedSizeList(item, _) => {
                JsonType::Array(Box::new(JsonType::of_arrow(item.data_type())))
            }
            DataType::Struct(fields) => {
                let mut merged = Vec::new();
                for field in fields {
                    merge_field(
                        &mut merged,
                        field.name().clone(),
                        JsonType::of_arrow(field.data_type()),
                    );
                }
                JsonType::Struct(merged)
            }
            _ => JsonType::String,
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

    /// Takes in the columns of one object (a Parquet file's), merged with
    /// what was seen as a record's fields would be.
    pub fn observe_columns(&mut self, columns: impl IntoIterator<Item = (String, JsonType)>) {
        for (name, ty) in columns {
            merge_field(&mut self.fields, name, ty);
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
    fn arrow_types_map_to_the_json_types() {
        use datafusion::arrow::datatypes::{Field, Fields, TimeUnit};
        use std::sync::Arc;
        for ty in [
            DataType::Int8,
            DataType::Int32,
            DataType::Int64,
            DataType::UInt64,
        ] {
            assert_eq!(JsonType::of_arrow(&ty), JsonType::BigInt, "{ty}");
        }
        for ty in [DataType::Float32, DataType::Float64] {
            assert_eq!(JsonType::of_arrow(&ty), JsonType::Double, "{ty}");
        }
        for ty in [
            DataType::Utf8,
            DataType::LargeUtf8,
            DataType::Utf8View,
            DataType::Date32,
            DataType::Timestamp(TimeUnit::Microsecond, None),
            DataType::Decimal128(10, 2),
            DataType::Binary,
        ] {
            assert_eq!(JsonType::of_arrow(&ty), JsonType::String, "{ty}");
        }
        assert_eq!(JsonType::of_arrow(&DataType::Boolean), JsonType::Boolean);
        assert_eq!(JsonType::of_arrow(&DataType::Null), JsonType::Null);
        let list = DataType::List(Arc::new(Field::new_list_field(DataType::Float64, true)));
        assert_eq!(
            JsonType::of_arrow(&list),
            JsonType::Array(Box::new(JsonType::Double))
        );
        let nested = DataType::Struct(Fields::from(vec![
            Field::new("k", DataType::Int32, true),
            Field::new("tags", list, true),
        ]));
        assert_eq!(
            JsonType::of_arrow(&nested),
            JsonType::Struct(vec![
                field("k", JsonType::BigInt),
                field("tags", JsonType::Array(Box::new(JsonType::Double))),
            ])
        );
    }

    #[test]
    fn parquet_columns_widen_across_objects_like_records() {
        let mut builder = SchemaBuilder::default();
        builder.observe_columns([
            ("index".to_owned(), JsonType::String),
            ("open".to_owned(), JsonType::BigInt),
            ("gone".to_owned(), JsonType::Null),
        ]);
        builder.observe_columns([
            ("open".to_owned(), JsonType::Double),
            ("index".to_owned(), JsonType::String),
            ("volume".to_owned(), JsonType::BigInt),
        ]);
        assert_eq!(
            builder.fields(),
            [
                field("index", JsonType::String),
                field("open", JsonType::Double),
                field("gone", JsonType::Null),
                field("volume", JsonType::BigInt),
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
