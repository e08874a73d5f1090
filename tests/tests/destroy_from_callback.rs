//! A host may destroy its instance from inside a callback (say, on the
//! last part it wanted). destroy() cannot join the pool thread it runs on;
//! it must still cancel the request, return, and let on_done arrive.

use std::ffi::{c_char, c_void, CString};
use std::sync::mpsc::{channel, Sender};
use std::time::Duration;

use moonshot_abi::{self as abi, MoonshotApi, MoonshotCallbacks, MoonshotFlow, MoonshotInstance};
use moonshot_simulator::{Reply, ReplySpec, Simulator};
use moonshot_tests::harness::{plugin, TEST_KEY};

struct Host {
    api: &'static MoonshotApi,
    instance: *mut MoonshotInstance,
    destroyed: bool,
    events: Sender<String>,
}

unsafe extern "C" fn on_chunk(
    user_data: *mut c_void,
    _json: *const c_char,
    _len: usize,
) -> MoonshotFlow {
    let host = unsafe { &mut *(user_data as *mut Host) };
    if !host.destroyed {
        host.destroyed = true;
        unsafe { (host.api.destroy)(host.instance) };
        let _ = host.events.send("destroy returned".into());
    }
    abi::MOONSHOT_CONTINUE
}

unsafe extern "C" fn on_done(
    user_data: *mut c_void,
    status: abi::MoonshotStatus,
    _json: *const c_char,
    _len: usize,
) {
    let host = unsafe { &mut *(user_data as *mut Host) };
    let _ = host.events.send(format!("done {status}"));
}

#[test]
fn destroy_inside_a_callback_returns_and_on_done_still_arrives() {
    let sim = Simulator::start().unwrap();
    sim.push(Reply::stream(&ReplySpec {
        content: "many small parts to come".into(),
        chunk_chars: 2,
        delay: Duration::from_millis(20),
        ..ReplySpec::default()
    }));
    let api = plugin().api();
    let config = CString::new(format!(
        r#"{{"apiKey":"{TEST_KEY}","base_url":"{}"}}"#,
        sim.base_url()
    ))
    .unwrap();
    let mut instance = std::ptr::null_mut();
    assert_eq!(
        unsafe { (api.create)(config.as_ptr(), &mut instance, std::ptr::null_mut()) },
        abi::MOONSHOT_OK
    );

    let (tx, rx) = channel();
    let host = Box::into_raw(Box::new(Host {
        api,
        instance,
        destroyed: false,
        events: tx,
    }));
    let callbacks = MoonshotCallbacks {
        struct_size: std::mem::size_of::<MoonshotCallbacks>(),
        on_chunk: Some(on_chunk),
        on_done: Some(on_done),
    };
    let request = CString::new(r#"{"stream":true,"messages":"go"}"#).unwrap();
    let mut handle = std::ptr::null_mut();
    let status = unsafe {
        (api.complete)(
            instance,
            request.as_ptr(),
            &callbacks,
            host as *mut c_void,
            &mut handle,
            std::ptr::null_mut(),
        )
    };
    assert_eq!(status, abi::MOONSHOT_OK);

    let first = rx
        .recv_timeout(Duration::from_secs(10))
        .expect("destroy() returned inside the callback");
    assert_eq!(first, "destroy returned");
    let second = rx
        .recv_timeout(Duration::from_secs(10))
        .expect("on_done arrived after destroy");
    assert_eq!(second, format!("done {}", abi::MOONSHOT_ERR_CANCELLED));
    assert_eq!(
        unsafe { (api.wait)(handle, 10_000) },
        abi::MOONSHOT_ERR_CANCELLED
    );
    unsafe {
        (api.release)(handle);
        drop(Box::from_raw(host));
    }
}
