//! Hostile input (issue 5, item 6), from the host and from the upstream.
//! Each case is handled per the SSE rules or refused with a clear error;
//! nothing crashes, hangs or grows without bound. chat_e2e.rs already covers
//! NULL pointers, non-UTF-8 config, malformed request JSON, a wrong-typed
//! `stream` and ASCII framing one byte per write; this file adds the rest.

mod faults_common;

use std::ffi::{c_char, CStr, CString};
use std::time::Duration;

use faults_common::{events, raw, stream_request, text_chunk, timed, SSE_HEAD};
use moonshot_abi::{self as abi, MoonshotCallbacks};
use moonshot_simulator::{Reply, Simulator};
use moonshot_tests::harness::{instance, plugin};
use serde_json::{json, Value};

/// Runs `request` through the raw table with no callbacks at all and
/// returns (complete's status, its error JSON if any).
fn refused(inst: *mut abi::MoonshotInstance, request: &[u8]) -> (i32, Value) {
    let api = plugin().api();
    let mut bytes = request.to_vec();
    bytes.push(0);
    let mut handle = std::ptr::null_mut();
    let mut error: *mut c_char = std::ptr::null_mut();
    let status = unsafe {
        (api.complete)(
            inst,
            bytes.as_ptr() as *const c_char,
            std::ptr::null(),
            std::ptr::null_mut(),
            &mut handle,
            &mut error,
        )
    };
    assert!(handle.is_null(), "a refused request left a handle");
    assert!(!error.is_null(), "no error JSON for status {status}");
    let text = unsafe { CStr::from_ptr(error) }
        .to_str()
        .unwrap()
        .to_owned();
    unsafe { (api.free_string)(error) };
    moonshot_tests::schemas::assert_error_text(&text);
    (status, serde_json::from_str(&text).expect("error JSON"))
}

fn raw_instance(config: &Value) -> *mut abi::MoonshotInstance {
    let api = plugin().api();
    let config = CString::new(config.to_string()).unwrap();
    let mut instance = std::ptr::null_mut();
    let status = unsafe { (api.create)(config.as_ptr(), &mut instance, std::ptr::null_mut()) };
    assert_eq!(status, abi::MOONSHOT_OK);
    instance
}

#[test]
fn hostile_requests_from_the_host_are_refused_before_anything_is_sent() {
    let sim = Simulator::start().unwrap();
    let inst = raw_instance(
        &json!({"apiKey": "sk-hostile-test-0123456789", "base_url": sim.base_url(),
                                     "max_request_bytes": 64 * 1024}),
    );
    let deep = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
    let cases: Vec<(Vec<u8>, i32, &str)> = vec![
        (
            b"{\"messages\":\"\xff\xfe\"}".to_vec(),
            abi::MOONSHOT_ERR_INVALID_ARGUMENT,
            "not UTF-8",
        ),
        (
            b"".to_vec(),
            abi::MOONSHOT_ERR_INVALID_ARGUMENT,
            "not valid JSON",
        ),
        (
            b"null".to_vec(),
            abi::MOONSHOT_ERR_INVALID_ARGUMENT,
            "JSON object",
        ),
        (
            b"[1,2]".to_vec(),
            abi::MOONSHOT_ERR_INVALID_ARGUMENT,
            "JSON object",
        ),
        (
            b"\"hi\"".to_vec(),
            abi::MOONSHOT_ERR_INVALID_ARGUMENT,
            "JSON object",
        ),
        (
            b"{\"messages\":7}".to_vec(),
            abi::MOONSHOT_ERR_INVALID_ARGUMENT,
            "messages",
        ),
        (
            b"{\"messages\":\"x\",\"model\":5}".to_vec(),
            abi::MOONSHOT_ERR_INVALID_ARGUMENT,
            "'model'",
        ),
        (
            b"{\"messages\":\"x\",\"max_tokens\":\"lots\"}".to_vec(),
            abi::MOONSHOT_ERR_INVALID_REQUEST,
            "max_tokens",
        ),
        (
            b"{\"messages\":\"\\ud800\"}".to_vec(),
            abi::MOONSHOT_ERR_INVALID_ARGUMENT,
            "not valid JSON",
        ),
        (
            b"{\"messages\":\"x\"} trailing".to_vec(),
            abi::MOONSHOT_ERR_INVALID_ARGUMENT,
            "not valid JSON",
        ),
        // Nesting far past serde_json's recursion limit: an error, not a stack overflow.
        (
            deep.as_bytes()[..60_000].to_vec(),
            abi::MOONSHOT_ERR_INVALID_ARGUMENT,
            "not valid JSON",
        ),
        (
            deep.into_bytes(),
            abi::MOONSHOT_ERR_INVALID_ARGUMENT,
            "more than the configured limit of 65536",
        ),
    ];
    for (request, status, needle) in cases {
        let shown = String::from_utf8_lossy(&request[..request.len().min(40)]).into_owned();
        let (got, error) = refused(inst, &request);
        assert_eq!(got, status, "{shown}: {error}");
        assert!(
            error["message"].as_str().unwrap().contains(needle),
            "{shown}: {error}"
        );
    }
    unsafe { (plugin().api().destroy)(inst) };
    assert!(
        sim.requests().is_empty(),
        "a hostile request reached the upstream"
    );
}

#[test]
fn max_request_bytes_bounds_the_request_and_fits_what_is_under_it() {
    let sim = Simulator::start().unwrap();
    let inst = instance(&sim, json!({"max_request_bytes": 4096}));
    let under = json!({"messages": "y".repeat(3000)}).to_string();
    assert!(under.len() <= 4096);
    let out = faults_common::timed(&inst, &serde_json::from_str(&under).unwrap());
    assert_eq!(out.status, abi::MOONSHOT_OK, "{}", out.result);
    let over = json!({"messages": "y".repeat(5000)}).to_string();
    let Err((status, error)) = inst.complete(&over, None) else {
        panic!("an oversized request was accepted")
    };
    assert_eq!(status, abi::MOONSHOT_ERR_INVALID_ARGUMENT);
    assert!(
        error.contains(&format!("the request is {} bytes", over.len())),
        "{error}"
    );
    assert_eq!(sim.chat_bodies().len(), 1);
}

#[test]
fn unknown_fields_are_ignored_and_not_forwarded() {
    let sim = Simulator::start().unwrap();
    let inst = instance(
        &sim,
        json!({"x_unknown_setting": {"deep": [1, 2]}, "colour": "blue"}),
    );
    let out = timed(
        &inst,
        &json!({"messages":"hi","stream":true,"x_vendor_extension":{"a":1},"driver":"moonshot"}),
    );
    assert_eq!(out.status, abi::MOONSHOT_OK, "{}", out.result);
    let body = &sim.chat_bodies()[0];
    for field in [
        "x_vendor_extension",
        "driver",
        "x_unknown_setting",
        "colour",
    ] {
        assert!(body.get(field).is_none(), "{field} forwarded: {body}");
    }
}

#[test]
fn callbacks_may_be_null_or_shorter_than_the_header_knows() {
    let sim = Simulator::start().unwrap();
    let inst =
        raw_instance(&json!({"apiKey": "sk-hostile-test-0123456789", "base_url": sim.base_url()}));
    let api = plugin().api();
    // NULL callbacks, and a struct whose struct_size covers no callback.
    let short = MoonshotCallbacks {
        struct_size: std::mem::size_of::<usize>(),
        on_chunk: None,
        on_done: None,
    };
    for callbacks in [std::ptr::null(), &short as *const MoonshotCallbacks] {
        let request = CString::new(stream_request("x").to_string()).unwrap();
        let mut handle = std::ptr::null_mut();
        let status = unsafe {
            (api.complete)(
                inst,
                request.as_ptr(),
                callbacks,
                std::ptr::null_mut(),
                &mut handle,
                std::ptr::null_mut(),
            )
        };
        assert_eq!(status, abi::MOONSHOT_OK);
        assert_eq!(unsafe { (api.wait)(handle, 10_000) }, abi::MOONSHOT_OK);
        // A NULL out pointer is refused, as every other NULL out pointer.
        assert_eq!(
            unsafe { (api.request_result)(handle, std::ptr::null_mut()) },
            abi::MOONSHOT_ERR_INVALID_ARGUMENT
        );
        let mut json = std::ptr::null_mut();
        assert_eq!(
            unsafe { (api.request_result)(handle, &mut json) },
            abi::MOONSHOT_OK
        );
        let text = unsafe { CStr::from_ptr(json) }.to_str().unwrap().to_owned();
        unsafe {
            (api.free_string)(json);
            (api.release)(handle);
        }
        assert!(text.contains("\"finish_reason\""), "{text}");
    }
    // A refused request with a NULL out_error: only the status.
    let bad = CString::new("{").unwrap();
    let mut handle = std::ptr::null_mut();
    let status = unsafe {
        (api.complete)(
            inst,
            bad.as_ptr(),
            std::ptr::null(),
            std::ptr::null_mut(),
            &mut handle,
            std::ptr::null_mut(),
        )
    };
    assert_eq!(status, abi::MOONSHOT_ERR_INVALID_ARGUMENT);
    unsafe { (api.destroy)(inst) };
}

#[test]
fn malformed_chunks_are_a_protocol_error_with_the_partial_kept() {
    for bad in [
        "{not json".to_string(),
        json!({"choices":[{"index":0,"delta":{"content":5}}]}).to_string(),
        "[1,2,3]".to_string(),
    ] {
        let sim = Simulator::start().unwrap();
        let body = format!(
            "{}data: {bad}\n\n{}data: [DONE]\n\n",
            events(&["ok "]),
            events(&["never"])
        );
        sim.push(raw(SSE_HEAD, &body, Duration::ZERO));
        let inst = instance(&sim, json!({}));
        let out = timed(&inst, &stream_request("x"));
        assert_eq!(
            out.status,
            abi::MOONSHOT_ERR_PROTOCOL,
            "{bad}: {}",
            out.result
        );
        assert!(
            out.result["message"]
                .as_str()
                .unwrap()
                .contains("malformed"),
            "{bad}: {}",
            out.result
        );
        assert_eq!(out.text(), "ok ");
        assert_eq!(out.result["partial"]["message"]["content"], "ok ");
        assert_eq!(out.result["request_id"], "raw-req-1");
        assert_eq!(
            sim.chat_bodies().len(),
            1,
            "a protocol error is not retried"
        );
    }
}

#[test]
fn a_stream_cut_without_done_is_an_error_with_the_partial_kept() {
    // A clean end of the HTTP body (chunked, terminating chunk) but no [DONE].
    let sim = Simulator::start().unwrap();
    sim.push(Reply::Sse {
        events: vec![text_chunk("half an "), text_chunk("answ")],
        delay: Duration::ZERO,
        done: false,
    });
    let inst = instance(&sim, json!({}));
    let out = timed(&inst, &stream_request("x"));
    assert_eq!(out.status, abi::MOONSHOT_ERR_TRANSPORT, "{}", out.result);
    assert_eq!(out.result["code"], "stream_cut");
    assert!(out.result["message"].as_str().unwrap().contains("[DONE]"));
    assert_eq!(out.text(), "half an answ");
    assert_eq!(out.result["partial"]["message"]["content"], "half an answ");
    assert!(out.result["partial"]["finish_reason"].is_null());
    assert_eq!(out.result["partial"]["usage"]["estimated"], true);
}

#[test]
fn html_error_pages_are_readable_errors() {
    let page = "<!DOCTYPE html><html><head><title>502 Bad Gateway</title></head>\
                <body><h1>502 Bad Gateway</h1><p>nginx</p></body></html>";
    // A proxy's 502 page: retried like any 502, then reported with its text.
    let sim = Simulator::start().unwrap();
    for _ in 0..3 {
        sim.push(raw(
            &format!(
                "HTTP/1.1 502 Bad Gateway\r\nContent-Type: text/html\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                page.len()
            ),
            page,
            Duration::ZERO,
        ));
    }
    let inst = instance(&sim, json!({}));
    let out = timed(&inst, &stream_request("x"));
    assert_eq!(out.status, abi::MOONSHOT_ERR_UPSTREAM, "{}", out.result);
    assert_eq!(out.result["code"], "http_502");
    assert_eq!(out.result["http_status"], 502);
    assert!(out.result["message"]
        .as_str()
        .unwrap()
        .contains("502 Bad Gateway"));
    assert_eq!(sim.chat_bodies().len(), 3);

    // A captive portal's 200 page to a stream and to a plain request.
    for stream in [true, false] {
        let sim = Simulator::start().unwrap();
        sim.push(raw(
            "HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nConnection: close\r\n\r\n",
            page,
            Duration::ZERO,
        ));
        let inst = instance(&sim, json!({}));
        let out = timed(&inst, &json!({"messages":"x","stream":stream}));
        assert_eq!(
            out.status,
            abi::MOONSHOT_ERR_PROTOCOL,
            "stream {stream}: {}",
            out.result
        );
        assert!(out.parts.is_empty());
    }
}

#[test]
fn an_endless_line_is_refused_at_the_bound() {
    // 17 MiB without a line ending, against the 16 MiB line bound.
    let sim = Simulator::start().unwrap();
    let mut body: Vec<Vec<u8>> = vec![b"data: ".to_vec()];
    body.extend((0..17).map(|_| vec![b'x'; 1024 * 1024]));
    sim.push(Reply::Raw {
        head: SSE_HEAD.into(),
        body,
        delay: Duration::ZERO,
        hold_open: Duration::ZERO,
    });
    let inst = instance(&sim, json!({}));
    let out = timed(&inst, &stream_request("x"));
    assert_eq!(out.status, abi::MOONSHOT_ERR_PROTOCOL, "{}", out.result);
    assert!(
        out.result["message"]
            .as_str()
            .unwrap()
            .contains("a line exceeded the limit of 16777216 bytes"),
        "{}",
        out.result
    );
}

#[test]
fn endless_data_lines_of_one_event_are_refused_at_the_bound() {
    // Short data lines, never the blank line that ends the event: 17 MiB.
    let sim = Simulator::start().unwrap();
    let line = format!("data: {}\n", "y".repeat(1018)); // 1 KiB
    let piece = line.repeat(1024).into_bytes(); // 1 MiB
    sim.push(Reply::Raw {
        head: SSE_HEAD.into(),
        body: vec![piece; 17],
        delay: Duration::ZERO,
        hold_open: Duration::ZERO,
    });
    let inst = instance(&sim, json!({}));
    let out = timed(&inst, &stream_request("x"));
    assert_eq!(out.status, abi::MOONSHOT_ERR_PROTOCOL, "{}", out.result);
    assert!(
        out.result["message"]
            .as_str()
            .unwrap()
            .contains("one event's data exceeded the limit"),
        "{}",
        out.result
    );
}

#[test]
fn multibyte_text_bom_and_odd_framing_survive_one_byte_per_write() {
    // A BOM, every line ending, comments, fields that are ignored, `data:`
    // without its space, and 2-, 3- and 4-byte characters, each byte its
    // own write, so characters and the BOM are split across reads.
    let chunk = |t: &str| text_chunk(t);
    let body = format!(
        "\u{feff}: hello\r\nretry: 10\r\nid: 1\r\nevent: message\r\ndata: {}\r\n\r\n\
         data:{}\r\r: a comment\ndata: {}\n\nunknown: field\ndata: {}\r\n\r\ndata: [DONE]\n\n",
        chunk("é à "),
        chunk("漢字 "),
        chunk("😀🦀"),
        chunk(" fin"),
    );
    let sim = Simulator::start().unwrap();
    sim.push(Reply::Raw {
        head: SSE_HEAD.into(),
        body: body.bytes().map(|b| vec![b]).collect(),
        delay: Duration::ZERO,
        hold_open: Duration::ZERO,
    });
    let inst = instance(&sim, json!({}));
    let out = timed(&inst, &stream_request("x"));
    assert_eq!(out.status, abi::MOONSHOT_OK, "{}", out.result);
    assert_eq!(out.text(), "é à 漢字 😀🦀 fin");
    assert_eq!(out.result["message"]["content"], "é à 漢字 😀🦀 fin");
}

#[test]
fn invalid_utf8_and_nul_bytes_from_upstream() {
    // Invalid UTF-8 on a line: refused clearly.
    let sim = Simulator::start().unwrap();
    let mut body = events(&["fine "]).into_bytes();
    body.extend_from_slice(b"data: {\"choices\":[{\"delta\":{\"content\":\"\xc3\x28\"}}]}\n\n");
    sim.push(Reply::Raw {
        head: SSE_HEAD.into(),
        body: vec![body],
        delay: Duration::ZERO,
        hold_open: Duration::ZERO,
    });
    let inst = instance(&sim, json!({}));
    let out = timed(&inst, &stream_request("x"));
    assert_eq!(out.status, abi::MOONSHOT_ERR_PROTOCOL, "{}", out.result);
    assert!(out.result["message"]
        .as_str()
        .unwrap()
        .contains("not valid UTF-8"));
    assert_eq!(out.result["partial"]["message"]["content"], "fine ");

    // An escaped NUL in the text reaches the host intact (len, not strlen).
    let sim = Simulator::start().unwrap();
    sim.push(raw(
        SSE_HEAD,
        &format!("{}data: [DONE]\n\n", events(&["a\u{0}b"])),
        Duration::ZERO,
    ));
    let inst = instance(&sim, json!({}));
    let out = timed(&inst, &stream_request("x"));
    assert_eq!(out.status, abi::MOONSHOT_OK, "{}", out.result);
    assert_eq!(out.text(), "a\u{0}b");
}

#[test]
fn oversized_response_headers_are_refused() {
    let sim = Simulator::start().unwrap();
    let huge = format!(
        "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nx-junk: {}\r\nConnection: close\r\n\r\n",
        "j".repeat(200 * 1024)
    );
    sim.push(raw(&huge, &events(&["never"]), Duration::ZERO));
    let inst = instance(&sim, json!({"retries": {"max": 0}}));
    let out = timed(&inst, &stream_request("x"));
    assert_eq!(out.status, abi::MOONSHOT_ERR_TRANSPORT, "{}", out.result);
    assert!(out.parts.is_empty());
}

#[test]
fn a_non_stream_body_that_is_not_json_is_a_protocol_error() {
    let sim = Simulator::start().unwrap();
    let body = "{\"id\":\"x\",\"choices\":[{\"message\":";
    sim.push(raw(
        &format!(
            "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
            body.len()
        ),
        body,
        Duration::ZERO,
    ));
    let inst = instance(&sim, json!({}));
    let out = timed(&inst, &json!({"messages":"x"}));
    assert_eq!(out.status, abi::MOONSHOT_ERR_PROTOCOL, "{}", out.result);
    assert!(out.result["message"]
        .as_str()
        .unwrap()
        .contains("malformed completion"));
}
