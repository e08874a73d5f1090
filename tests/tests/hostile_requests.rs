//! Hostile requests from the host, through the C ABI: a request of many
//! small values is refused before it is parsed (a 62 MiB `[0,0,...]` used to
//! parse to 2.1 GB), and the request bytes an instance holds at once are
//! bounded (three such requests in parallel reached 6.2 GB).

mod faults_common;

use faults_common::{finish, mute, PATIENCE};
use moonshot_abi as abi;
use moonshot_simulator::Simulator;
use moonshot_tests::harness::instance;
use serde_json::{json, Value};

/// A request of about `padding` bytes (in a system message: the simulator
/// echoes the user's).
fn padded_request(padding: usize) -> Value {
    json!({"model":"kimi-k2.6","messages":[{"role":"system","content":"x".repeat(padding)},
                                           {"role":"user","content":"Hi"}]})
}

#[test]
fn a_request_of_millions_of_values_is_refused_before_parsing() {
    let sim = Simulator::start().unwrap();
    let inst = instance(&sim, json!({}));
    // 2 million values in 4 MiB, far under max_request_bytes.
    let zeros = format!("[{}0]", "0,".repeat(2_000_000));
    let request = format!(
        r#"{{"model":"kimi-k2.6","messages":[{{"role":"user","content":"Hi"}}],"metadata":{zeros}}}"#
    );
    let (status, error) = match inst.complete(&request, None) {
        Err(refused) => refused,
        Ok(_) => panic!("a request of 2 million values was accepted"),
    };
    assert_eq!(status, abi::MOONSHOT_ERR_INVALID_ARGUMENT, "{error}");
    assert!(error.contains("max_request_values"), "{error}");
    assert!(sim.requests().is_empty());
}

#[test]
fn the_bytes_an_instance_holds_are_bounded_and_given_back() {
    let sim = Simulator::start().unwrap();
    sim.push(mute());
    let inst = instance(&sim, json!({"max_inflight_request_bytes": 1_000_000}));
    let (first, events) = inst
        .complete(&padded_request(600_000).to_string(), None)
        .expect("the first request fits");
    // While the first is held upstream, a second one does not fit.
    assert!(sim.wait_for_requests(1, PATIENCE));
    let (status, error) = match inst.complete(&padded_request(600_000).to_string(), None) {
        Err(refused) => refused,
        Ok(_) => panic!("the in-flight budget was not enforced"),
    };
    assert_eq!(status, abi::MOONSHOT_ERR_BUSY, "{error}");
    assert!(error.contains("\"retryable\":true"), "{error}");
    // A small one still does.
    let small = json!({"model":"kimi-k2.6","messages":[{"role":"user","content":"Hi"}]});
    let (_small, small_events) = inst.complete(&small.to_string(), None).expect("small fits");
    // Once the first has ended, its share is given back.
    first.cancel();
    let ended = finish(std::time::Instant::now(), &events);
    assert_eq!(ended.status, abi::MOONSHOT_ERR_CANCELLED);
    finish(std::time::Instant::now(), &small_events);
    let (_again, again_events) = inst
        .complete(&padded_request(600_000).to_string(), None)
        .expect("the budget was given back");
    let again = finish(std::time::Instant::now(), &again_events);
    assert_eq!(again.status, abi::MOONSHOT_OK, "{}", again.result);
    // A request that could never fit is not "busy": it is refused outright.
    let (status, _) = match inst.complete(&padded_request(2_000_000).to_string(), None) {
        Err(refused) => refused,
        Ok(_) => panic!("a request over the whole budget was accepted"),
    };
    assert_eq!(status, abi::MOONSHOT_ERR_INVALID_ARGUMENT);
}
