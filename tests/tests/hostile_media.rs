//! Media URLs come from whoever calls the plugin: through the C ABI, the
//! plugin must not fetch from the operator's own network (SSRF), must tell a
//! caller nothing about why a fetch failed (no port-scan oracle), and must
//! keep a request's fetches within the `media` limits.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use host_demo::plugin::Instance;
use moonshot_abi as abi;
use moonshot_simulator::Simulator;
use moonshot_tests::harness::{instance, run, Outcome};
use serde_json::{json, Value};

/// The one text every failed media fetch gives the caller.
const FETCH_FAILED: &str = "a media URL could not be fetched: media URLs must be public \
http(s) addresses that answer with a supported image or video type within the plugin's \
size and time limits";

/// What a media server answers to every request.
#[derive(Clone)]
enum MediaReply {
    Image(Vec<u8>),
    Redirect(String),
    /// 200 with a large Content-Length, then one byte every 100 ms.
    Drip,
}

/// A media server on `ip`, counting the connections it accepted.
struct MediaServer {
    addr: SocketAddr,
    accepted: Arc<AtomicUsize>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl MediaServer {
    fn start(ip: &str, answer: MediaReply) -> MediaServer {
        let listener = TcpListener::bind((ip, 0)).unwrap();
        let addr = listener.local_addr().unwrap();
        let accepted = Arc::new(AtomicUsize::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let (count, stopping) = (accepted.clone(), stop.clone());
        let thread = thread::spawn(move || {
            for stream in listener.incoming() {
                if stopping.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(stream) = stream else { continue };
                count.fetch_add(1, Ordering::SeqCst);
                let (answer, stopping) = (answer.clone(), stopping.clone());
                thread::spawn(move || serve(stream, &answer, &stopping));
            }
        });
        MediaServer {
            addr,
            accepted,
            stop,
            thread: Some(thread),
        }
    }

    fn accepted(&self) -> usize {
        self.accepted.load(Ordering::SeqCst)
    }

    fn port(&self) -> u16 {
        self.addr.port()
    }
}

impl Drop for MediaServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wake the accept loop so it sees the flag.
        let _ = TcpStream::connect_timeout(&self.addr, Duration::from_secs(1));
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

fn serve(mut stream: TcpStream, answer: &MediaReply, stop: &AtomicBool) {
    stream.set_read_timeout(Some(Duration::from_secs(5))).ok();
    let mut head = [0u8; 4096];
    let _ = stream.read(&mut head);
    match answer {
        MediaReply::Image(body) => {
            let head = format!(
                "HTTP/1.1 200 OK\r\nContent-Type: image/png\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                body.len()
            );
            let _ = stream.write_all(head.as_bytes());
            let _ = stream.write_all(body);
        }
        MediaReply::Redirect(location) => {
            let head = format!(
                "HTTP/1.1 302 Found\r\nLocation: {location}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
            );
            let _ = stream.write_all(head.as_bytes());
        }
        MediaReply::Drip => {
            let head = "HTTP/1.1 200 OK\r\nContent-Type: image/png\r\nContent-Length: 1000000\r\nConnection: close\r\n\r\n";
            let _ = stream.write_all(head.as_bytes());
            // Bounded: 30 s at most, or until the plugin hangs up.
            for _ in 0..300 {
                if stop.load(Ordering::SeqCst) || stream.write_all(b"x").is_err() {
                    break;
                }
                thread::sleep(Duration::from_millis(100));
            }
        }
    }
}

fn image_request(urls: &[String]) -> Value {
    let mut content = vec![json!({"text":"Describe"})];
    content.extend(urls.iter().map(|u| json!({"image_url": u})));
    json!({"model":"kimi-k3","messages":[{"content":content}]})
}

fn assert_fetch_failed(out: &Outcome, what: &str) {
    assert_eq!(
        out.status,
        abi::MOONSHOT_ERR_INVALID_REQUEST,
        "{what}: {}",
        out.result
    );
    assert_eq!(out.result["code"], "media_fetch_failed", "{what}");
}

/// `url` fetched by an instance with `media.debug_errors`: refused, and the
/// operator's text names the address check.
fn assert_refused_as_not_public(debug: &Instance, url: &str) {
    let out = run(debug, &image_request(&[url.to_string()]));
    assert_fetch_failed(&out, url);
    let message = out.result["message"].as_str().unwrap();
    assert!(
        message.contains("the address is not public"),
        "{url}: {message}"
    );
}

/// Every spelling of the operator's own machine, on the media server's port.
fn loopback_spellings(port: u16) -> Vec<String> {
    [
        "127.0.0.1",
        "[::1]",
        "localhost",
        "0.0.0.0",
        "2130706433",
        "0x7f.1",
        "127.1",
        "0177.0.0.1",
        "[::ffff:127.0.0.1]",
    ]
    .iter()
    .map(|host| format!("http://{host}:{port}/cat.png"))
    .collect()
}

#[test]
fn loopback_in_every_spelling_is_refused_with_the_same_text() {
    let server = MediaServer::start("127.0.0.1", MediaReply::Image(b"\x89PNG".to_vec()));
    let sim = Simulator::start().unwrap();
    let quiet = instance(&sim, json!({}));
    let debug = instance(&sim, json!({"media":{"debug_errors":true}}));
    for url in loopback_spellings(server.port()) {
        let out = run(&quiet, &image_request(std::slice::from_ref(&url)));
        assert_fetch_failed(&out, &url);
        assert_eq!(out.result["message"], FETCH_FAILED, "{url}");
        // The operator's debug text shows it was the address check.
        assert_refused_as_not_public(&debug, &url);
    }
    assert_eq!(server.accepted(), 0, "a refused address was connected to");
    assert!(sim.chat_bodies().is_empty(), "nothing was sent to Moonshot");
}

#[test]
fn private_and_metadata_addresses_are_refused_before_connecting() {
    let sim = Simulator::start().unwrap();
    let debug = instance(&sim, json!({"media":{"debug_errors":true}}));
    for host in [
        "169.254.169.254",
        "10.0.0.1",
        "172.16.0.1",
        "192.168.1.1",
        "100.64.0.1",
        "[fd00::1]",
        "[fe80::1]",
        "224.0.0.1",
        "255.255.255.255",
    ] {
        assert_refused_as_not_public(&debug, &format!("http://{host}/latest/meta-data/"));
    }
}

#[test]
fn a_redirect_to_loopback_is_refused_with_the_same_text() {
    let target = MediaServer::start("127.0.0.1", MediaReply::Image(b"\x89PNG".to_vec()));
    let redirect = MediaServer::start(
        "127.0.0.2",
        MediaReply::Redirect(format!("http://127.0.0.1:{}/cat.png", target.port())),
    );
    let sim = Simulator::start().unwrap();
    // The first hop is allowed by name; the hop it redirects to is not.
    let inst = instance(&sim, json!({"media":{"allow_addresses":["127.0.0.2"]}}));
    let url = format!("http://127.0.0.2:{}/cat.png", redirect.port());
    let out = run(&inst, &image_request(std::slice::from_ref(&url)));
    assert_fetch_failed(&out, &url);
    assert_eq!(out.result["message"], FETCH_FAILED);
    assert_eq!(redirect.accepted(), 1, "the allowed server was asked");
    assert_eq!(
        target.accepted(),
        0,
        "the redirect was followed to loopback"
    );
}

#[test]
fn failures_of_every_kind_read_the_same() {
    // A closed port, an HTTP error, a wrong content type: one text for all.
    let closed = {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let redirect_loop = MediaServer::start("127.0.0.1", MediaReply::Redirect("/again".into()));
    let sim = Simulator::start().unwrap();
    let inst = instance(&sim, json!({"media":{"allow_private_networks":true}}));
    for url in [
        format!("http://127.0.0.1:{closed}/cat.png"),
        format!("http://127.0.0.1:{}/cat.png", redirect_loop.port()),
    ] {
        let out = run(&inst, &image_request(std::slice::from_ref(&url)));
        assert_fetch_failed(&out, &url);
        assert_eq!(out.result["message"], FETCH_FAILED, "{url}");
    }
}

#[test]
fn allow_private_networks_lets_the_operator_fetch_locally() {
    let server = MediaServer::start("127.0.0.1", MediaReply::Image(b"\x89PNG".to_vec()));
    let sim = Simulator::start().unwrap();
    let inst = instance(&sim, json!({"media":{"allow_private_networks":true}}));
    let url = format!("http://127.0.0.1:{}/cat.png", server.port());
    let out = run(&inst, &image_request(&[url]));
    assert_eq!(out.status, abi::MOONSHOT_OK, "{}", out.result);
    assert_eq!(
        sim.chat_bodies()[0]["messages"][0]["content"][1]["image_url"]["url"],
        "data:image/png;base64,iVBORw=="
    );
}

#[test]
fn too_many_media_urls_are_refused_before_any_fetch() {
    let server = MediaServer::start("127.0.0.1", MediaReply::Image(b"\x89PNG".to_vec()));
    let sim = Simulator::start().unwrap();
    let inst = instance(
        &sim,
        json!({"media":{"allow_private_networks":true,"max_items":2}}),
    );
    let url = format!("http://127.0.0.1:{}/cat.png", server.port());
    let out = run(&inst, &image_request(&[url.clone(), url.clone(), url]));
    assert_eq!(
        out.status,
        abi::MOONSHOT_ERR_INVALID_REQUEST,
        "{}",
        out.result
    );
    assert_eq!(out.result["code"], "too_many_media_urls");
    assert_eq!(server.accepted(), 0, "something was fetched");
}

#[test]
fn inlined_bytes_are_bounded_per_request() {
    let server = MediaServer::start("127.0.0.1", MediaReply::Image(vec![7u8; 600]));
    let sim = Simulator::start().unwrap();
    let inst = instance(
        &sim,
        json!({"media":{"allow_private_networks":true,"max_total_bytes":1000,"debug_errors":true}}),
    );
    let url = format!("http://127.0.0.1:{}/cat.png", server.port());
    let out = run(&inst, &image_request(std::slice::from_ref(&url)));
    assert_eq!(out.status, abi::MOONSHOT_OK, "one fits: {}", out.result);
    let out = run(&inst, &image_request(&[url.clone(), url]));
    assert_fetch_failed(&out, "two do not");
    let message = out.result["message"].as_str().unwrap();
    assert!(message.contains("media.max_total_bytes"), "{message}");
    assert_eq!(sim.chat_bodies().len(), 1, "the second request was sent");
}

#[test]
fn one_deadline_covers_all_of_a_requests_fetches() {
    let server = MediaServer::start("127.0.0.1", MediaReply::Drip);
    let sim = Simulator::start().unwrap();
    // Without the media deadline, the 10 s total would end it.
    let inst = instance(
        &sim,
        json!({"media":{"allow_private_networks":true,"deadline_ms":500},
               "timeouts":{"total_ms":10_000}}),
    );
    let url = format!("http://127.0.0.1:{}/cat.png", server.port());
    let started = Instant::now();
    let out = run(&inst, &image_request(&[url.clone(), url]));
    let elapsed = started.elapsed();
    assert_fetch_failed(&out, "drip");
    assert_eq!(out.result["message"], FETCH_FAILED);
    assert!(elapsed < Duration::from_secs(5), "took {elapsed:?}");
    assert_eq!(
        server.accepted(),
        1,
        "the second fetch ran past the deadline"
    );
}
