//! `filter`: Kafka Connect's `Filter`, dropping every record it applies to.
//!
//! It is meant to be guarded by a predicate: with `predicate: tombstones`
//! it drops the records the predicate holds for, and with `negate: true`
//! the records it does not hold for (it keeps only the matching ones). It
//! has no keys of its own; `type`, `predicate` and `negate` belong to the
//! step. Dropped records are counted by the runtime, never silent.

use connect_core::plugin::{Outcome, Transform, TransformConfig};
use connect_core::schemars::{self, JsonSchema};
use connect_core::{ConnectorResult, Record};
use serde::Deserialize;

/// Drops every record it applies to; has no keys.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct FilterConfig {}

impl TransformConfig for FilterConfig {
    fn build(&self) -> ConnectorResult<Box<dyn Transform>> {
        Ok(Box::new(Filter))
    }
}

/// The running `filter`.
#[derive(Debug)]
pub struct Filter;

impl Transform for Filter {
    fn apply(&mut self, _record: &mut Record) -> ConnectorResult<Outcome> {
        Ok(Outcome::Drop)
    }
}

connect_core::register_plugin!(transform "filter", FilterConfig,
    summary: "Drops every record it applies to; use it with a predicate (and `negate`)",
    example: "type: filter\npredicate: tombstones\n",
);

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::*;
    use serde_json::json;

    fn filter() -> Box<dyn Transform> {
        let config: FilterConfig = config("{}");
        assert!(config.validate().is_empty());
        config.build().unwrap()
    }

    #[test]
    fn drops_records_without_changing_them() {
        let mut record = record(Some(json!("k")), Some(stock_value()));
        assert_eq!(filter().apply(&mut record).unwrap(), Outcome::Drop);
        assert_eq!(
            record,
            crate::testing::record(Some(json!("k")), Some(stock_value()))
        );
    }

    #[test]
    fn drops_tombstones_and_source_records() {
        let mut filter = filter();
        assert_eq!(
            filter.apply(&mut record(None, None)).unwrap(),
            Outcome::Drop
        );
        assert_eq!(
            filter
                .apply(&mut source_record(None, Some(json!(1))))
                .unwrap(),
            Outcome::Drop
        );
    }

    #[test]
    fn an_empty_config_is_valid() {
        assert!(try_config::<FilterConfig>("{}").is_ok());
    }

    #[test]
    fn keys_are_rejected() {
        assert_eq!(
            try_config::<FilterConfig>("condition: x\n").unwrap_err()[0]
                .split(';')
                .next(),
            Some("1:1: condition: unknown key `condition`")
        );
    }

    #[test]
    fn works_guarded_by_a_predicate_in_a_chain() {
        use connect_core::plugin::Predicate;
        use connect_core::transform::{TransformChain, TransformStep};

        struct IsTombstone;
        impl Predicate for IsTombstone {
            fn test(&self, record: &Record) -> bool {
                record.value.is_none()
            }
        }
        let mut chain = TransformChain::new(vec![TransformStep {
            path: "sink.transforms[0]".to_owned(),
            type_name: "filter",
            transform: filter(),
            predicate: Some(("tombstones".to_owned(), Box::new(IsTombstone))),
            negate: false,
        }]);
        assert_eq!(chain.apply(&mut record(None, None)).unwrap(), Outcome::Drop);
        assert_eq!(
            chain.apply(&mut record(None, Some(json!(1)))).unwrap(),
            Outcome::Keep
        );
    }
}
