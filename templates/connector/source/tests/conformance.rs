//! `__TYPE__` against Sluice's conformance kit: the checks every source
//! passes (config, open/close, positions, end of input, resume without gap
//! or duplicate, error classes).

use connect_core::testkit::SourceKit;
use __CRATE_IDENT__ as _;

#[tokio::test]
async fn __TYPE___passes_the_conformance_kit() {
    let dir = tempfile::tempdir().expect("tempdir");
    SourceKit::new("__TYPE__", "type: __TYPE__\ncount: 25\n")
        .base_dir(dir.path())
        .batch(4)
        .invalid(
            "type: __TYPE__\ncount: 0\nprefix: \"\"\n",
            &["count", "prefix"],
        )
        .run()
        .await
        .assert_passed();
}
