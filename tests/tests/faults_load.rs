//! Load (issue 5, item 4): the pool's threads and queue are bounded by the
//! config; beyond them `complete` refuses at once with MOONSHOT_ERR_BUSY;
//! `destroy` cancels whatever is in flight (running, waiting for a first
//! byte, in a retry wait, or queued) and returns promptly. The thread count
//! is checked in faults_threads.rs, alone in its binary.

mod faults_common;

use std::ffi::{c_char, c_void, CStr, CString};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use faults_common::{mute, next_part, silent_after, start, stream_request, PATIENCE};
use host_demo::plugin::Event;
use moonshot_abi::{self as abi, MoonshotApi, MoonshotCallbacks, MoonshotRequest};
use moonshot_simulator::{Reply, ReplySpec, Simulator};
use moonshot_tests::harness::{instance, plugin, TEST_KEY};
use moonshot_tests::schemas;
use serde_json::{json, Value};

/// The on_done of a request, read without waiting: destroy() has returned,
/// so it must already be there.
fn done_already(events: &mpsc::Receiver<Event>) -> (i32, Value) {
    for event in events.try_iter() {
        if let Event::Done(status, result) = event {
            let result = serde_json::from_str(&result).unwrap();
            schemas::assert_final(status, &result);
            return (status, result);
        }
    }
    panic!("destroy() returned before this request's on_done");
}

#[test]
fn beyond_threads_plus_queue_complete_refuses_at_once() {
    let sim = Simulator::start().unwrap();
    sim.push(silent_after(&["one"]));
    sim.push(silent_after(&["two"]));
    let inst = instance(&sim, json!({"max_concurrency": 2, "max_queue": 1}));
    // One after the other, so each gets its own reply.
    let (_a, a_rx) = start(&inst, &stream_request("a"));
    next_part(&a_rx);
    let (_b, b_rx) = start(&inst, &stream_request("b"));
    next_part(&b_rx);
    let (_c, c_rx) = start(&inst, &stream_request("c")); // queued

    let asked = Instant::now();
    let refused = inst.complete(&stream_request("d").to_string(), None);
    let took = asked.elapsed();
    let Err((status, error)) = refused else {
        panic!("a fourth request was accepted with 2 threads and a queue of 1")
    };
    println!("busy refusal took {took:?}");
    assert!(took < Duration::from_millis(500), "{took:?}");
    assert_eq!(status, abi::MOONSHOT_ERR_BUSY);
    schemas::assert_error_text(&error);
    let error: Value = serde_json::from_str(&error).unwrap();
    assert_eq!(error["code"], "busy");
    assert_eq!(error["retryable"], true);
    assert!(
        error["message"].as_str().unwrap().contains("2 threads"),
        "{error}"
    );
    assert_eq!(sim.chat_bodies().len(), 2, "the queued request is not sent");
    assert!(c_rx.try_recv().is_err(), "the queued request has not run");

    let destroying = Instant::now();
    drop(inst);
    let took = destroying.elapsed();
    println!("destroy with 2 running and 1 queued took {took:?}");
    assert!(took < Duration::from_secs(1), "{took:?}");
    for (rx, text) in [(&a_rx, Some("one")), (&b_rx, Some("two")), (&c_rx, None)] {
        let (status, result) = done_already(rx);
        assert_eq!(status, abi::MOONSHOT_ERR_CANCELLED, "{result}");
        assert_eq!(
            result["partial"]["message"]["content"].as_str(),
            text,
            "{result}"
        );
    }
    assert_eq!(sim.chat_bodies().len(), 2, "destroy ran the queued request");
}

#[test]
fn destroy_cancels_requests_in_every_state_and_returns_promptly() {
    let sim = Simulator::start().unwrap();
    sim.push(silent_after(&["streaming"])); // A: silent mid-stream
    sim.push(mute()); // B: waiting for the first byte
    sim.push(Reply::Json {
        // C: in a 30 s retry wait
        status: 503,
        headers: vec![("Retry-After".into(), "30".into())],
        body: json!({"error":{"type":"server_error","message":"later"}}),
    });
    let inst = instance(
        &sim,
        json!({"max_concurrency": 4, "retries": {"max": 3, "max_delay_ms": 30_000}}),
    );
    let (_a, a_rx) = start(&inst, &stream_request("a"));
    next_part(&a_rx);
    let (_b, b_rx) = start(&inst, &stream_request("b"));
    assert!(sim.wait_for_requests(2, PATIENCE));
    let (_c, c_rx) = start(&inst, &stream_request("c"));
    assert!(sim.wait_for_requests(3, PATIENCE));

    let destroying = Instant::now();
    drop(inst);
    let took = destroying.elapsed();
    println!("destroy (streaming, first byte, retry wait) took {took:?}");
    assert!(took < Duration::from_secs(1), "{took:?}");
    for rx in [&a_rx, &b_rx, &c_rx] {
        assert_eq!(done_already(rx).0, abi::MOONSHOT_ERR_CANCELLED);
    }
    assert_eq!(sim.chat_bodies().len(), 3, "C was retried during destroy");
}

#[test]
fn the_queue_is_first_in_first_out_and_drains_as_threads_free_up() {
    let sim = Simulator::start().unwrap();
    for i in 0..6 {
        sim.push(Reply::stream(&ReplySpec {
            content: format!("answer {i}"),
            delay: Duration::from_millis(5),
            ..ReplySpec::default()
        }));
    }
    let inst = instance(&sim, json!({"max_concurrency": 1, "max_queue": 5}));
    let started: Vec<_> = (0..6)
        .map(|i| start(&inst, &stream_request(&format!("q{i}"))))
        .collect();
    for (i, (_handle, rx)) in started.iter().enumerate() {
        let out = faults_common::finish(Instant::now(), rx);
        assert_eq!(out.status, abi::MOONSHOT_OK, "{}", out.result);
        assert_eq!(out.text(), format!("answer {i}"));
    }
    let order: Vec<Value> = sim
        .chat_bodies()
        .iter()
        .map(|b| b["messages"][0]["content"].clone())
        .collect();
    assert_eq!(
        order,
        (0..6).map(|i| json!(format!("q{i}"))).collect::<Vec<_>>()
    );
}

// A request submitted from inside on_done, with one thread and no queue:
// the thread is about to be free, so it is queued behind the report rather
// than refused. Raw C callbacks, since on_done must call complete itself.

struct Chain {
    api: &'static MoonshotApi,
    instance: *mut abi::MoonshotInstance,
    next_request: CString,
    /// The status `complete` returned inside on_done.
    submitted: mpsc::Sender<i32>,
    /// The inner request's handle, released by the test.
    inner: mpsc::Sender<usize>,
    /// The inner request's own on_done status.
    inner_done: mpsc::Sender<i32>,
}

unsafe extern "C" fn inner_done(user_data: *mut c_void, status: i32, _: *const c_char, _: usize) {
    let tx = unsafe { Box::from_raw(user_data as *mut mpsc::Sender<i32>) };
    let _ = tx.send(status);
}

unsafe extern "C" fn outer_done(user_data: *mut c_void, _: i32, _: *const c_char, _: usize) {
    let chain = unsafe { Box::from_raw(user_data as *mut Chain) };
    let callbacks = MoonshotCallbacks {
        struct_size: std::mem::size_of::<MoonshotCallbacks>(),
        on_chunk: None,
        on_done: Some(inner_done),
    };
    let done_tx = Box::into_raw(Box::new(chain.inner_done.clone()));
    let mut request: *mut MoonshotRequest = std::ptr::null_mut();
    let mut error: *mut c_char = std::ptr::null_mut();
    let status = unsafe {
        (chain.api.complete)(
            chain.instance,
            chain.next_request.as_ptr(),
            &callbacks,
            done_tx as *mut c_void,
            &mut request,
            &mut error,
        )
    };
    if status != abi::MOONSHOT_OK {
        drop(unsafe { Box::from_raw(done_tx) });
        unsafe { (chain.api.free_string)(error) };
    } else {
        let _ = chain.inner.send(request as usize);
    }
    let _ = chain.submitted.send(status);
}

#[test]
fn a_request_submitted_from_on_done_is_queued_not_refused() {
    let sim = Simulator::start().unwrap();
    let api = plugin().api();
    let config = CString::new(
        json!({"apiKey": TEST_KEY, "base_url": sim.base_url(), "max_concurrency": 1, "max_queue": 0})
            .to_string(),
    )
    .unwrap();
    let mut instance = std::ptr::null_mut();
    let status = unsafe { (api.create)(config.as_ptr(), &mut instance, std::ptr::null_mut()) };
    assert_eq!(status, abi::MOONSHOT_OK);

    let (submitted_tx, submitted) = mpsc::channel();
    let (inner_tx, inner) = mpsc::channel();
    let (inner_done_tx, inner_done_rx) = mpsc::channel();
    let chain = Box::into_raw(Box::new(Chain {
        api,
        instance,
        next_request: CString::new(json!({"messages":"second"}).to_string()).unwrap(),
        submitted: submitted_tx,
        inner: inner_tx,
        inner_done: inner_done_tx,
    }));
    let callbacks = MoonshotCallbacks {
        struct_size: std::mem::size_of::<MoonshotCallbacks>(),
        on_chunk: None,
        on_done: Some(outer_done),
    };
    let request = CString::new(json!({"messages":"first"}).to_string()).unwrap();
    let mut outer: *mut MoonshotRequest = std::ptr::null_mut();
    let status = unsafe {
        (api.complete)(
            instance,
            request.as_ptr(),
            &callbacks,
            chain as *mut c_void,
            &mut outer,
            std::ptr::null_mut(),
        )
    };
    assert_eq!(status, abi::MOONSHOT_OK);
    let submitted = submitted.recv_timeout(PATIENCE).expect("on_done ran");
    assert_eq!(submitted, abi::MOONSHOT_OK, "refused as busy from on_done");
    assert_eq!(inner_done_rx.recv_timeout(PATIENCE), Ok(abi::MOONSHOT_OK));
    let inner = inner.recv().unwrap() as *mut MoonshotRequest;
    // request_result answers once on_done has returned: wait for that.
    assert_eq!(unsafe { (api.wait)(inner, 10_000) }, abi::MOONSHOT_OK);
    let mut json = std::ptr::null_mut();
    assert_eq!(
        unsafe { (api.request_result)(inner, &mut json) },
        abi::MOONSHOT_OK
    );
    let text = unsafe { CStr::from_ptr(json) }.to_str().unwrap().to_owned();
    unsafe {
        (api.free_string)(json);
        (api.release)(inner);
        (api.release)(outer);
        (api.destroy)(instance);
    }
    assert!(text.contains("You said: second"), "{text}");
}
