//! destroy() joins every thread the instance started (issue 5, item 4): the
//! process's thread count (entries of /proc/self/task) is back at its
//! baseline afterwards. Alone in its test binary so that no other test's
//! threads come and go while it counts.

mod faults_common;

use std::time::{Duration, Instant};

use faults_common::{
    mute, next_part, silent_after, start, stream_request, thread_count, threads_named,
};
use moonshot_abi as abi;
use moonshot_simulator::{Reply, ReplySpec, Simulator};
use moonshot_tests::harness::{instance, plugin};
use serde_json::json;

/// Thread names are cut to 15 bytes in /proc: "moonshot-worker-N" -> "moonshot-worke".
const WORKER: &str = "moonshot-worke";

/// The thread count, once it settles at `expected` (a joined thread can
/// linger in /proc/self/task for a moment after its join returns).
fn settles_at(expected: usize) -> usize {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let now = thread_count();
        if now == expected || Instant::now() >= deadline {
            return now;
        }
        // Polling a kernel table: there is nothing to wait on.
        std::thread::sleep(Duration::from_millis(1));
    }
}

#[test]
fn destroy_joins_every_thread_it_started() {
    plugin(); // loaded before the baseline: libraries stay loaded
    let baseline = thread_count();
    assert_eq!(threads_named(WORKER), 0);

    let mut sim = Simulator::start().unwrap();
    for _ in 0..3 {
        sim.push(Reply::stream(&ReplySpec::default()));
    }
    sim.push(silent_after(&["stuck"]));
    sim.push(mute());
    let inst = instance(&sim, json!({"max_concurrency": 3, "max_queue": 4}));
    assert_eq!(threads_named(WORKER), 0, "create() starts no thread");

    // Finished requests, then two stuck in flight and one queued.
    for _ in 0..3 {
        let out = faults_common::timed(&inst, &stream_request("x"));
        assert_eq!(out.status, abi::MOONSHOT_OK, "{}", out.result);
    }
    let (_a, a_rx) = start(&inst, &stream_request("a"));
    next_part(&a_rx);
    let (_b, _b_rx) = start(&inst, &stream_request("b"));
    assert!(sim.wait_for_requests(5, faults_common::PATIENCE));
    let (_c, _c_rx) = start(&inst, &stream_request("c"));
    let workers = threads_named(WORKER);
    println!("baseline {baseline} threads; {workers} pool threads while busy");
    assert!((1..=3).contains(&workers), "{workers} pool threads");

    let destroying = Instant::now();
    drop(inst);
    println!("destroy took {:?}", destroying.elapsed());
    assert!(destroying.elapsed() < Duration::from_secs(1));
    assert_eq!(threads_named(WORKER), 0, "a pool thread outlived destroy");

    sim.shutdown();
    let after = settles_at(baseline);
    println!("after destroy and the simulator's shutdown: {after} threads");
    assert_eq!(after, baseline, "threads outlived destroy");
}
