//! Panics (issue 5, item 5): a panic inside a pool job becomes an
//! MOONSHOT_ERR_INTERNAL for that request alone; the pool keeps serving.
//!
//! The panic is injected with the request field `"__panic_for_test"`, which
//! only debug builds of the plugin read (see `injected_panic` in
//! plugin/src/instance.rs): `true` panics as the job starts, a number N when
//! part N+1 is due, deep inside the stream reader. Under `--release` these
//! tests are ignored, since the plugin then ignores the field.

mod faults_common;

use std::time::{Duration, Instant};

use faults_common::{finish, next_part, start, stream_request, timed};
use moonshot_abi as abi;
use moonshot_simulator::{Reply, ReplySpec, Simulator};
use moonshot_tests::harness::instance;
use serde_json::json;

#[test]
#[cfg_attr(
    not(debug_assertions),
    ignore = "the panic trigger is compiled into debug builds only"
)]
fn a_panic_mid_stream_fails_that_request_alone() {
    let sim = Simulator::start().unwrap();
    // B: a slow, healthy stream that runs beside the panicking request.
    sim.push(Reply::stream(&ReplySpec {
        content: "slow and steady".into(),
        delay: Duration::from_millis(20),
        ..ReplySpec::default()
    }));
    // A: panics when its second part is due.
    sim.push(Reply::stream(&ReplySpec {
        content: "abcdefghijkl".into(),
        ..ReplySpec::default()
    }));
    let inst = instance(&sim, json!({"max_concurrency": 2}));
    let (_b, b_rx) = start(&inst, &stream_request("b"));
    assert_eq!(next_part(&b_rx)["text"], "slow");

    let mut a = stream_request("a");
    a["__panic_for_test"] = json!(1);
    let out = timed(&inst, &a);
    assert_eq!(out.status, abi::MOONSHOT_ERR_INTERNAL, "{}", out.result);
    assert_eq!(out.result["code"], "internal_error");
    assert!(
        out.result["message"]
            .as_str()
            .unwrap()
            .contains("caught panic"),
        "{}",
        out.result
    );
    assert_eq!(out.text(), "abcd", "one part, then the panic");

    let b = finish(Instant::now(), &b_rx);
    assert_eq!(b.status, abi::MOONSHOT_OK, "{}", b.result);
    assert_eq!(b.result["message"]["content"], "slow and steady");
}

#[test]
#[cfg_attr(
    not(debug_assertions),
    ignore = "the panic trigger is compiled into debug builds only"
)]
fn the_pool_keeps_serving_after_panics() {
    let sim = Simulator::start().unwrap();
    let inst = instance(&sim, json!({"max_concurrency": 1, "max_queue": 0}));
    for _ in 0..3 {
        let mut request = stream_request("x");
        request["__panic_for_test"] = json!(true);
        let out = timed(&inst, &request);
        assert_eq!(out.status, abi::MOONSHOT_ERR_INTERNAL, "{}", out.result);
        assert!(out.parts.is_empty());
        assert!(out.result.get("partial").is_none());
    }
    assert!(
        sim.requests().is_empty(),
        "a job that panics at its start sends nothing"
    );
    // The one thread survived all three and serves the next request.
    let out = timed(&inst, &stream_request("still there?"));
    assert_eq!(out.status, abi::MOONSHOT_OK, "{}", out.result);
    assert!(out.result["message"]["content"]
        .as_str()
        .unwrap()
        .contains("still there?"));
}
