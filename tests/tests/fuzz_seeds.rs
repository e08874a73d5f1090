//! Every committed fuzz seed (plugin/fuzz/seeds/<target>/) through the same
//! invariant checks the cargo-fuzz targets run (tests/src/fuzz_checks.rs),
//! so the seeds, and any crash input added to them, are re-checked by every
//! `make test` without cargo-fuzz.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};

use moonshot_provider::error::ProviderError;
use moonshot_provider::request::prepare;
use moonshot_provider::sse::{SseError, SseEvent};
use moonshot_tests::fuzz_checks::{
    self, fuzz_config, sse_reference, SseOutcome, FUZZ_KEY, TARGETS,
};
use serde_json::{json, Value};

fn fuzz_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../plugin/fuzz")
}

fn seeds(target: &str) -> Vec<PathBuf> {
    let dir = fuzz_dir().join("seeds").join(target);
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|entry| entry.expect("seed directory entry").path())
        .filter(|path| path.is_file())
        .collect();
    files.sort();
    files
}

/// Runs `target`'s check on each of its seeds; fails naming every seed that
/// breaks an invariant.
fn run_seeds(target: &str) {
    let (_, check) = TARGETS
        .iter()
        .find(|(name, _)| *name == target)
        .expect("a known target");
    let files = seeds(target);
    assert!(files.len() >= 3, "{target}: only {} seeds", files.len());
    let failures: Vec<String> = files
        .iter()
        .filter_map(|path| {
            let data = std::fs::read(path).expect("readable seed");
            catch_unwind(AssertUnwindSafe(|| check(&data)))
                .err()
                .map(|_| path.display().to_string())
        })
        .collect();
    assert!(
        failures.is_empty(),
        "{target}: seeds breaking an invariant (see the panics above): {failures:#?}"
    );
}

#[test]
fn sse_decoder_seeds() {
    run_seeds("sse_decoder");
}

#[test]
fn request_prepare_seeds() {
    run_seeds("request_prepare");
}

#[test]
fn config_from_json_seeds() {
    run_seeds("config_from_json");
}

#[test]
fn stream_chunk_seeds() {
    run_seeds("stream_chunk");
}

/// Each check has its cargo-fuzz target and seed directory, and nothing else
/// is there unchecked.
#[test]
fn every_fuzz_target_is_checked_here() {
    let manifest = std::fs::read_to_string(fuzz_dir().join("Cargo.toml")).expect("fuzz manifest");
    for (target, _) in TARGETS {
        assert!(
            manifest.contains(&format!("name = \"{target}\"")),
            "{target} is not a [[bin]] of plugin/fuzz/Cargo.toml"
        );
        assert!(
            fuzz_dir()
                .join(format!("fuzz_targets/{target}.rs"))
                .is_file(),
            "no fuzz_targets/{target}.rs"
        );
    }
    for dir in ["fuzz_targets", "seeds"] {
        for entry in std::fs::read_dir(fuzz_dir().join(dir)).expect("fuzz directory") {
            let name = entry.expect("entry").file_name();
            let name = name.to_string_lossy();
            let name = name.trim_end_matches(".rs");
            assert!(
                TARGETS.iter().any(|(target, _)| *target == name),
                "plugin/fuzz/{dir}/{name} has no check in fuzz_checks::TARGETS"
            );
        }
    }
    let bins = manifest.matches("[[bin]]").count();
    assert_eq!(bins, TARGETS.len(), "fuzz targets without a check");
}

fn msg(data: &str, id: Option<&str>) -> SseEvent {
    SseEvent {
        event: "message".into(),
        data: data.into(),
        id: id.map(str::to_owned),
    }
}

/// The reference the SSE target compares the decoder against is itself right.
#[test]
fn sse_reference_reads_known_streams() {
    let outcome = |events, error, discarded, comments| SseOutcome {
        events,
        error,
        discarded,
        comments,
    };
    assert_eq!(
        sse_reference(
            b"\xEF\xBB\xBF: hi\r\nid: 1\rdata: a\r\ndata:b\n\nevent: x\n\ndata: c",
            64
        ),
        outcome(vec![msg("a\nb", Some("1"))], None, true, 1)
    );
    assert_eq!(
        sse_reference(b"data: ok\n\ndata: 0123456789\n", 8),
        outcome(
            vec![msg("ok", None)],
            Some(SseError::LineTooLong { limit: 8 }),
            false,
            0
        )
    );
    assert_eq!(
        sse_reference(b"data: \xFF\n\n", 64),
        outcome(vec![], Some(SseError::InvalidUtf8), false, 0)
    );
    assert_eq!(
        sse_reference(b"\xEF\xBB", 0),
        outcome(vec![], None, true, 0)
    );
    assert_eq!(
        sse_reference(b"id: a\0b\ndata: x\r\r", 64),
        outcome(vec![msg("x", None)], None, false, 0)
    );
}

/// The key check has teeth: an error quoting the key is caught.
#[test]
fn key_check_catches_a_leaked_key() {
    fuzz_checks::check_config(format!(r#"{{"apiKey":"{FUZZ_KEY}","today":5}}"#).as_bytes());
    let leaky = ProviderError::invalid_argument(format!("bad key {FUZZ_KEY}"));
    assert!(catch_unwind(|| fuzz_checks::assert_hides_key(&leaky, "")).is_err());
    let clean =
        ProviderError::invalid_argument("config field 'today' has a value of the wrong type");
    fuzz_checks::assert_hides_key(&clean, "");
}

/// Found by the request_prepare target (seeds `crash-empty-content-array*`,
/// minimised from `{"content":[]}` given as `messages`): a system or user
/// message whose content was an empty part array was dropped without a word
/// (`user_like` in plugin/src/messages.rs), so a conversation made only of
/// such messages was prepared as `"messages": []`, a body Moonshot refuses,
/// instead of a clear error here.
#[test]
fn empty_content_parts_never_make_an_empty_conversation() {
    for args in [
        json!({"messages": {"content": []}}),
        json!({"model": "kimi-k2.6", "messages": [{"role": "user", "content": []}]}),
        json!({"messages": [{"role": "system", "content": []}, {"content": []}]}),
    ] {
        if let Ok(prepared) = prepare(&args, fuzz_config()) {
            let messages = prepared.body["messages"].as_array().map(Vec::len);
            assert_ne!(
                messages,
                Some(0),
                "{args} was prepared with no messages: {}",
                Value::Object(prepared.body.clone())
            );
        }
    }
}
