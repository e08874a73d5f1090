//! A provider instance: the queries (models, list, default model, costs) and
//! `complete`, which runs requests on the instance's pool. Pure Rust: the FFI
//! shim adapts host callbacks to `Callbacks`.

use std::ffi::{CStr, CString};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use parking_lot::{Condvar, Mutex};
use serde_json::{json, Value};

use crate::admission::{self, Budget};
use crate::cancel::{self, CancelToken};
use crate::catalog::{self, ModelCard};
use crate::client::Client;
use crate::config::Config;
use crate::error::{self, ErrorKind, ProviderError};
use crate::job;
use crate::metering;
use crate::pool::{self, Pool, Refused};
use crate::redact;
use crate::request;
use crate::stream::{Flow, PartSink};

/// How a request ended: the ABI shim maps the error kind to its status.
pub type Ending = Result<(), ErrorKind>;

/// What a host gives `complete` to hear back. Called on a pool thread.
pub trait Callbacks: Send {
    fn on_part(&mut self, json: &str) -> Flow;
    /// `json` is NUL-terminated for hosts that want a C string.
    fn on_done(&mut self, ending: Ending, json: &CStr);
}

/// The shared state of one request: its cancel token, its place in the
/// pool's queue and, once finished, its ending and final JSON.
#[derive(Default)]
pub struct RequestState {
    pub cancel: Arc<CancelToken>,
    /// Set once submitted; lets `cancel` run a still-queued job at once.
    ticket: Mutex<Option<pool::Ticket>>,
    outcome: Mutex<Outcome>,
    finished: Condvar,
}

#[derive(Default)]
struct Outcome {
    /// The final ending and JSON, from the moment `on_done` is called.
    result: Option<(Ending, Arc<CString>)>,
    /// Whether `on_done` has returned (what `wait` waits for).
    reported: bool,
}

impl RequestState {
    /// Stops the request. One still waiting for a pool thread is run at once
    /// on a thread of its own, so its `on_done` comes promptly.
    pub fn cancel(&self) {
        self.cancel.cancel();
        if let Some(ticket) = self.ticket.lock().as_ref() {
            ticket.expedite();
        }
    }

    /// The final ending and JSON, once `on_done` has been called.
    pub fn outcome(&self) -> Option<(Ending, Arc<CString>)> {
        self.outcome.lock().result.clone()
    }

    /// Waits up to `timeout` for `on_done` to have returned; returns the
    /// outcome if it has.
    pub fn wait(&self, timeout: Duration) -> Option<(Ending, Arc<CString>)> {
        let deadline = Instant::now() + timeout;
        let mut outcome = self.outcome.lock();
        while !outcome.reported {
            if self.finished.wait_until(&mut outcome, deadline).timed_out() {
                break;
            }
        }
        outcome.result.clone().filter(|_| outcome.reported)
    }

    /// Records the outcome before `on_done` runs (so `request_result` in
    /// `on_done` sees it) and returns the JSON for `on_done`.
    fn settle(&self, ending: Ending, json: CString) -> Arc<CString> {
        let json = Arc::new(json);
        self.outcome.lock().result = Some((ending, json.clone()));
        json
    }

    /// `on_done` has returned: wakes the waiters.
    fn finish(&self) {
        self.outcome.lock().reported = true;
        self.finished.notify_all();
    }

    /// Keeps the pool ticket; a cancel that came before it is honoured now.
    fn queued(&self, ticket: pool::Ticket) {
        let mut slot = self.ticket.lock();
        if self.cancel.is_cancelled() {
            ticket.expedite();
        }
        *slot = Some(ticket);
    }
}

pub struct Instance {
    config: Arc<Config>,
    client: Arc<Client>,
    pool: Pool,
    live: Mutex<Vec<Weak<RequestState>>>,
    /// Request bytes held by queued and running requests (admission.rs).
    inflight: Arc<Budget>,
}

impl Instance {
    pub fn new(config_json: &str) -> Result<Instance, ProviderError> {
        let config = Config::from_json(config_json)?;
        Ok(Instance {
            client: Arc::new(Client::new(&config)),
            pool: Pool::new(config.max_concurrency, config.max_queue)
                .with_stack_size(config.worker_stack_bytes),
            inflight: Budget::new(config.max_inflight_request_bytes),
            config: Arc::new(config),
            live: Mutex::new(Vec::new()),
        })
    }

    fn served(&self) -> impl Iterator<Item = &'static ModelCard> {
        catalog::served(self.config.clock.today())
    }

    /// Puter's models(): IChatModel objects for the models served today.
    pub fn models(&self) -> Value {
        Value::Array(self.served().map(model_json).collect())
    }

    /// Puter's list(): ids and aliases of the models served today.
    pub fn list(&self) -> Value {
        Value::Array(
            self.served()
                .flat_map(|c| c.names())
                .map(Value::String)
                .collect(),
        )
    }

    pub fn default_model(&self) -> Value {
        json!(catalog::DEFAULT_MODEL)
    }

    pub fn reported_costs(&self) -> Value {
        metering::reported_costs(self.served(), self.config.web_search.fee_ucents)
    }

    /// `GET /models` with the catalog's verdict per id (see `live`). Blocks
    /// the calling thread, bounded by the total timeout.
    pub fn live_models(&self) -> Result<Value, ProviderError> {
        let deadline = Instant::now() + self.config.timeouts.total;
        crate::live::model_list(&self.client, self.config.clock.today(), deadline)
            .map_err(|e| self.redact(e))
    }

    /// `GET /users/me/balance` in Moonshot's figures and integer microcents.
    /// Blocks the calling thread, bounded by the total timeout.
    pub fn balance(&self) -> Result<Value, ProviderError> {
        let deadline = Instant::now() + self.config.timeouts.total;
        crate::live::balance(&self.client, deadline).map_err(|e| self.redact(e))
    }

    /// Validates the request, then queues it under `state` (which the
    /// caller may publish first: no callback runs before this call).
    /// Errors here mean nothing was started and no callback will run.
    pub fn complete(
        &self,
        request_json: &str,
        callbacks: Box<dyn Callbacks>,
        state: Arc<RequestState>,
    ) -> Result<(), ProviderError> {
        if request_json.len() > self.config.max_request_bytes {
            return Err(ProviderError::invalid_argument(format!(
                "the request is {} bytes, more than the configured limit of {}",
                request_json.len(),
                self.config.max_request_bytes
            )));
        }
        // Before parsing: the parse tree's size is bounded, and the request
        // holds its share of the instance's budget until its job ends.
        let reservation = self
            .inflight
            .admit(request_json, self.config.max_request_values)?;
        let args: Value = serde_json::from_str(request_json).map_err(|e| {
            ProviderError::invalid_argument(format!(
                "the request is not valid JSON (line {}, column {})",
                e.line(),
                e.column()
            ))
        })?;
        let prepared = request::prepare(&args, &self.config).map_err(|e| self.redact(e))?;
        let injected = injected_panic(&args);
        let job_state = state.clone();
        let (config, client) = (self.config.clone(), self.client.clone());
        let job = Box::new(move || {
            let _reservation: admission::Reservation = reservation;
            run_job(&prepared, &config, &client, &job_state, callbacks, injected)
        });
        // Registered under the same lock as the submission, so `shutdown`
        // (which closes the pool first) cancels every job that got in.
        let mut live = self.live.lock();
        let ticket = self.pool.submit(job).map_err(|refused| match refused {
            Refused::Busy => ProviderError::new(
                ErrorKind::Busy,
                format!(
                    "all {} threads are busy and {} requests are queued; try again later",
                    self.config.max_concurrency, self.config.max_queue
                ),
            )
            .retryable(true),
            Refused::ShuttingDown => {
                ProviderError::new(ErrorKind::Cancelled, "the instance is being destroyed")
            }
        })?;
        state.queued(ticket);
        // Ended requests are pruned when the list is full, not on every
        // call: a scan of every open request under this lock made starting
        // the 10,000th stream cost 10,000 steps. Amortised O(1); the list
        // holds at most about twice the most requests ever open at once.
        if live.len() == live.capacity() {
            live.retain(|w| w.strong_count() > 0);
            // Still mostly open requests: room for as many more before the
            // next scan, or it would come again at the next call.
            let open = live.len();
            live.reserve(open);
        }
        live.push(Arc::downgrade(&state));
        Ok(())
    }

    /// Cancels everything in flight and joins every thread. The pool closes
    /// first: a callback that calls `complete` meanwhile is refused, or got
    /// in before and is cancelled with the rest.
    pub fn shutdown(&self) {
        self.pool.close();
        for state in self.live.lock().drain(..).filter_map(|w| w.upgrade()) {
            state.cancel();
        }
        self.pool.shutdown();
    }

    /// Last line of defence: no text leaves the plugin holding the key.
    pub fn redact(&self, err: ProviderError) -> ProviderError {
        redact(err, self.config.api_key.expose())
    }
}

impl Drop for Instance {
    fn drop(&mut self) {
        self.shutdown();
    }
}

/// Every text field of an error, the ones an upstream can fill included
/// (its error type becomes `code`, its header `request_id`): no key, no
/// account id.
fn redact(mut err: ProviderError, key: &str) -> ProviderError {
    let texts = [&mut err.message, &mut err.code]
        .into_iter()
        .chain(err.request_id.as_mut());
    for text in texts {
        if !key.is_empty() && text.contains(key) {
            *text = text.replace(key, "[redacted]");
        }
        *text = redact::account_ids(text);
    }
    err
}

/// Where a test asked a pool job to panic (see `injected_panic`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum InjectedPanic {
    /// As the job starts, before anything is sent.
    AtStart,
    /// When this many parts have reached the host and another is due.
    AfterParts(u64),
}

/// Test-only fault injection, compiled into debug builds only (release
/// builds ignore the field like any unknown one): a request carrying
/// `"__panic_for_test": true` makes its pool job panic as it starts, and
/// `"__panic_for_test": N` when part N+1 is due, to prove that a panic
/// inside a job becomes an error for that request alone.
#[cfg(debug_assertions)]
fn injected_panic(args: &Value) -> Option<InjectedPanic> {
    match args.get("__panic_for_test")? {
        Value::Bool(true) => Some(InjectedPanic::AtStart),
        value => value.as_u64().map(InjectedPanic::AfterParts),
    }
}

#[cfg(not(debug_assertions))]
fn injected_panic(_: &Value) -> Option<InjectedPanic> {
    None
}

/// Adapts host callbacks to the part sink the job writes to.
struct HostSink<'a> {
    callbacks: &'a mut dyn Callbacks,
    delivered: u64,
    injected: Option<InjectedPanic>,
}

impl PartSink for HostSink<'_> {
    fn part(&mut self, json: &str) -> Flow {
        if self.injected == Some(InjectedPanic::AfterParts(self.delivered)) {
            panic!("__panic_for_test: injected after {} parts", self.delivered);
        }
        self.delivered += 1;
        self.callbacks.on_part(json)
    }
}

fn run_job(
    prepared: &request::Prepared,
    config: &Config,
    client: &Client,
    state: &RequestState,
    mut callbacks: Box<dyn Callbacks>,
    injected: Option<InjectedPanic>,
) {
    let _current = cancel::enter(state.cancel.clone());
    let mut leftover = None;
    let outcome = catch_unwind(AssertUnwindSafe(|| {
        if injected == Some(InjectedPanic::AtStart) {
            panic!("__panic_for_test: injected at the start of the job");
        }
        let mut sink = HostSink {
            callbacks: callbacks.as_mut(),
            delivered: 0,
            injected,
        };
        job::run(
            prepared,
            config,
            client,
            &state.cancel,
            &mut sink,
            &mut leftover,
        )
    }))
    .unwrap_or_else(|panic| Err(job::Failure::new(error::from_panic(panic), None)));
    // The request is done with its connection, which may now serve another
    // request from the pool: a late cancel() must leave it alone.
    state.cancel.release_socket();
    let (ending, text) = match outcome {
        Ok(result) => (Ok(()), final_json(&result)),
        Err(failure) => {
            let job::Failure {
                error: err,
                partial,
            } = *failure;
            let err = redact(err, config.api_key.expose());
            let mut details = err.to_json();
            if let Some(partial) = partial {
                details["partial"] = partial;
            }
            (Err(err.kind), final_json(&details))
        }
    };
    // From here the thread only reports: a request submitted from on_done
    // (or right after wait() returns) may queue behind it even at max_queue 0.
    pool::job_finishing();
    let text = state.settle(ending, text);
    // A panicking host callback must not skip finish(): waiters rely on it.
    let _ = catch_unwind(AssertUnwindSafe(|| callbacks.on_done(ending, &text)));
    state.finish();
    // With the host answered, read the end of the stream's body so its
    // connection goes back to the pool (instant from a well-behaved server).
    if let Some(rest) = leftover {
        let _ = catch_unwind(AssertUnwindSafe(|| rest.drain()));
    }
}

/// A request's final JSON, serialised once and NUL-terminated, so that
/// `on_done`, `wait` and `request_result` share it without copies. Sized
/// ahead from the message's text: at the end of a long answer this is the
/// largest thing a request holds, and thousands of streams can end at once.
fn final_json(value: &Value) -> CString {
    let text = |v: &Value| v.as_str().map_or(0, str::len);
    let message = &value["message"];
    let texts = text(&message["content"])
        + text(&message["reasoning"])
        + text(&message["reasoning_content"])
        + text(&value["partial"]["message"]["content"])
        + 2 * text(&value["partial"]["message"]["reasoning"]);
    // Room for escapes and the rest of the document, and the NUL.
    let mut bytes = Vec::with_capacity(texts + texts / 8 + 1024);
    // Writing a Value into a Vec cannot fail, and serde_json escapes NUL
    // inside strings, so the text has no NUL byte for CString to refuse.
    let _ = serde_json::to_writer(&mut bytes, value);
    CString::new(bytes)
        .unwrap_or_else(|_| CString::from(c"{\"error\":\"internal: NUL in output\"}"))
}

/// One IChatModel, as Puter's providers describe models.
fn model_json(card: &'static ModelCard) -> Value {
    let mut costs = json!({
        "tokens": 1_000_000,
        "prompt_tokens": card.price.input,
        "completion_tokens": card.price.output,
    });
    if let Some(cached) = card.price.cached {
        costs["cached_tokens"] = json!(cached);
    }
    json!({
        "puterId": card.puter_id(),
        "id": card.id,
        "name": card.name,
        "aliases": card.aliases.iter().map(|a| a.to_string())
            .chain(std::iter::once(format!("moonshot/{}", card.id))).collect::<Vec<_>>(),
        "provider": "moonshot",
        "modalities": {
            "input": card.input.iter().map(|m| m.as_str()).collect::<Vec<_>>(),
            "output": ["text"],
        },
        "costs_currency": "usd-cents",
        "input_cost_key": "prompt_tokens",
        "output_cost_key": "completion_tokens",
        "costs": costs,
        "context": card.context,
        "max_tokens": card.max_output,
        "tool_call": card.tool_call,
        "json_mode": card.json_mode,
        "partial_mode": card.partial_mode,
        "reasoning": card.thinking.on_by_default(),
        "knowledge": card.knowledge,
        "released": card.released.map(|d| d.to_string()),
        "retired_on": card.retired_on.map(|d| d.to_string()),
        "successor": card.successor,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redaction_covers_every_text_an_upstream_can_fill() {
        let key = "sk-hidden-42";
        let mut err = ProviderError::new(ErrorKind::Upstream, format!("bad {key}"))
            .with_code(format!("type-{key}"));
        err.request_id = Some(format!("id-{key}"));
        let err = redact(err, key);
        let text = format!("{} {:?} {}", err.to_json(), err, err);
        assert!(!text.contains(key), "{text}");
        assert_eq!(err.message, "bad [redacted]");
        assert_eq!(err.code, "type-[redacted]");
        assert_eq!(err.request_id.as_deref(), Some("id-[redacted]"));
    }

    #[test]
    fn redaction_covers_account_ids() {
        let err = ProviderError::new(ErrorKind::Upstream, "account org-1234abcd<ak-5678efgh>");
        let err = redact(err, "");
        assert_eq!(err.message, "account org-[redacted]<ak-[redacted]>");
    }

    #[test]
    fn the_panic_trigger_exists_only_in_debug_builds() {
        let args = json!({"__panic_for_test": 2});
        let expected = cfg!(debug_assertions).then_some(InjectedPanic::AfterParts(2));
        assert_eq!(injected_panic(&args), expected);
        assert_eq!(injected_panic(&json!({})), None);
        assert_eq!(injected_panic(&json!({"__panic_for_test": "yes"})), None);
    }
}
