//! host-demo: loads the Moonshot provider library and chats through it.
//!
//!   host-demo chat "Hello" [--model M] [--provider P] [--no-stream] [--output text|ndjson]
//!   host-demo models | list
//!   host-demo serve [--port P] [--allow-origin O] [--auth-token T]
//!                                (Puter's driver protocol on 127.0.0.1, for puter.js)
//!   host-demo doctor [--model M] (key, catalog drift, balance, a tiny completion's timing)
//!
//! Global options: --config FILE (Puter-style {"providers":{"moonshot":{...}}}),
//! --library PATH (default: the library cargo built beside this binary).
//! Without any API key it answers from the offline simulator and says so.

// No unsafe here: the plugin loader (host_demo::plugin) is the only place.
#![deny(unsafe_code)]

use std::io::Write;
use std::process::ExitCode;
use std::time::Duration;

use host_demo::plugin::{default_library_path, library_file_name, Event, Plugin};
use host_demo::registry::{self, Registry};
use serde_json::{json, Value};

mod args;
mod chat_request;
mod render;
mod serve;

use args::{Command, Options, Output};

fn main() -> ExitCode {
    let options = match args::parse(std::env::args().skip(1)) {
        Ok(options) => options,
        Err(message) => {
            eprintln!("host-demo: {message}\n\n{}", args::USAGE);
            return ExitCode::from(2);
        }
    };
    if options.command == Command::Help {
        println!("{}", args::USAGE);
        return ExitCode::SUCCESS;
    }
    match run(options) {
        Ok(code) => code,
        Err(message) => {
            eprintln!("host-demo: {message}");
            ExitCode::FAILURE
        }
    }
}

fn run(options: Options) -> Result<ExitCode, String> {
    let library = match &options.library {
        Some(path) => path.clone(),
        None => default_library_path().ok_or_else(|| {
            format!(
                "{} not found beside host-demo; build it with `cargo build -p moonshot-provider` or pass --library",
                library_file_name()
            )
        })?,
    };
    let plugin = Plugin::load(&library)?;

    // Keep the simulator alive for the whole run when we fall back to it.
    let (block, _simulator) = provider_config(&options)?;
    let mut registry = Registry::default();
    if !registry.register(&plugin, &block)? {
        return Err("no Moonshot API key: the provider was not registered".into());
    }

    match &options.command {
        Command::Models => {
            let registered = registry
                .provider(registry::PROVIDER)
                .expect("registered above");
            print!("{}", render::models_table(&registered.models));
            Ok(ExitCode::SUCCESS)
        }
        Command::List => {
            let registered = registry
                .provider(registry::PROVIDER)
                .expect("registered above");
            let names: Vec<String> =
                serde_json::from_str(&registered.instance.list()).map_err(|e| e.to_string())?;
            for name in names {
                println!("{name}");
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Chat(prompt) => chat(&registry, &options, prompt),
        Command::Serve { port } => serve::run(registry, *port, &options),
        Command::Doctor => {
            let registered = registry
                .provider(registry::PROVIDER)
                .expect("registered above");
            println!("doctor: {} at {}", plugin.describe(), base_url(&block));
            let report = host_demo::doctor::examine(
                &registered.instance,
                options.model.as_deref(),
                Duration::from_secs(120),
            );
            print!("{}", report.render());
            Ok(if report.healthy() {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            })
        }
        Command::Help => Ok(ExitCode::SUCCESS),
    }
}

/// Where the provider talks to (never the key).
fn base_url(block: &Value) -> String {
    ["base_url", "baseURL", "baseUrl"]
        .iter()
        .find_map(|k| block.get(k).and_then(Value::as_str))
        .unwrap_or("https://api.moonshot.ai/v1 (default)")
        .to_string()
}

/// The provider block: from --config, else MOONSHOT_API_KEY, else the
/// offline simulator. MOONSHOT_BASE_URL overrides the base URL.
fn provider_config(
    options: &Options,
) -> Result<(Value, Option<moonshot_simulator::Simulator>), String> {
    let mut block = match &options.config {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
            let config: Value = serde_json::from_str(&text)
                .map_err(|e| format!("{} is not valid JSON: {e}", path.display()))?;
            registry::provider_block(&config)
                .cloned()
                .unwrap_or_else(|| json!({}))
        }
        None => json!({}),
    };
    if registry::api_key(&block).is_none() {
        if let Ok(key) = std::env::var("MOONSHOT_API_KEY") {
            if !key.trim().is_empty() {
                block["apiKey"] = json!(key.trim());
            }
        }
    }
    if let Ok(url) = std::env::var("MOONSHOT_BASE_URL") {
        if !url.trim().is_empty() {
            block["base_url"] = json!(url.trim());
        }
    }
    if registry::api_key(&block).is_some() {
        return Ok((block, None));
    }
    let simulator = moonshot_simulator::Simulator::start()
        .map_err(|e| format!("cannot start the simulator: {e}"))?;
    eprintln!(
        "host-demo: no Moonshot API key (config or MOONSHOT_API_KEY): answering from the offline simulator at {}",
        simulator.base_url()
    );
    block["apiKey"] = json!("sk-offline-simulator");
    block["base_url"] = json!(simulator.base_url());
    Ok((block, Some(simulator)))
}

fn chat(registry: &Registry, options: &Options, prompt: &str) -> Result<ExitCode, String> {
    let (registered, model) =
        registry.resolve(options.provider.as_deref(), options.model.as_deref())?;
    let request = chat_request::build(
        &model,
        options.system.as_deref(),
        prompt,
        options.stream,
        options.max_tokens,
        &options.features,
    )?;

    let (handle, events) = registered
        .instance
        .complete(&request.to_string(), None)
        .map_err(|(status, error)| format!("request refused (status {status}): {error}"))?;

    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    let mut renderer = render::Stream::new(options.output);
    let mut finished = None;
    // Parts arrive from the plugin's pool thread; print them as they come.
    while let Ok(event) = events.recv_timeout(Duration::from_secs(3600)) {
        match event {
            Event::Part(part) => renderer.part(&mut out, &part),
            Event::Done(status, result) => {
                finished = Some((status, result));
                break;
            }
        }
    }
    let (status, result) = finished.ok_or("the plugin never reported the end of the request")?;
    drop(handle);
    let result: Value = serde_json::from_str(&result).unwrap_or(Value::Null);
    renderer.finish(&mut out, status, &result);
    let _ = out.flush();
    if status == moonshot_abi::MOONSHOT_OK {
        if options.output == Output::Text {
            if let Some(line) = render::cost_line(&result) {
                eprintln!("{line}");
            }
        }
        Ok(ExitCode::SUCCESS)
    } else {
        Err(format!(
            "the request failed (status {status}): {}",
            result
                .get("message")
                .and_then(Value::as_str)
                .unwrap_or("no details")
        ))
    }
}
