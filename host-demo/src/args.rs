//! Command-line parsing (a handful of flags; no parser crate needed).

use std::path::PathBuf;

pub const USAGE: &str = "\
usage: host-demo <command> [options]

commands:
  chat PROMPT      chat through the plugin, streaming the reply as it arrives
  models           the models served today: context, modalities, prices per 1M tokens
  list             the model ids and aliases the provider answers to
  serve            answer Puter's driver protocol on 127.0.0.1, so puter.js chats
                   through the plugin (prints the URL on stdout)
  doctor           check the key, catalog drift, the balance and one tiny completion's
                   timing against the live service; exits 1 unless all is well
                   (--model M picks the completion's model)

chat options:
  --model M        model id, alias or puterId (default: the provider's default)
  --provider P     moonshot, moonshot-ai, moonshotai or kimi
  --system TEXT    a system message before the prompt
  --max-tokens N   output token limit
  --no-stream      ask for the whole answer at once
  --output FORMAT  text (default) or ndjson: one JSON line per stream part, then the result
  --thinking, --no-thinking      turn the model's reasoning on or off
  --reasoning-effort LEVEL       low, medium, high or max (kimi-k3)
  --tools FILE     a JSON array of tools (OpenAI function form)
  --tool-choice C  auto, none, required, or a tool name
  --image PATH|URL an image to send with the prompt (repeatable)
  --video PATH|URL a video to send with the prompt (repeatable)
  --json           ask for a JSON object (response_format json_object)
  --json-schema F  ask for JSON matching the schema in file F
  --partial TEXT   partial mode: the answer continues TEXT
  --web-search     let the model search the web (Moonshot's $web_search)
  --cache-key KEY  prompt_cache_key, for Moonshot's prompt cache
  --temperature T  sampling temperature (omitted where the model pins it)
  --stop S         a stop sequence (repeatable, at most 5)

serve options:
  --port P         port on 127.0.0.1 (default 4100, Puter's local API port; 0 picks a free one)
  --allow-origin O also answer pages from origin O, e.g. https://app.example (repeatable;
                   loopback pages are always allowed; puter.js under Node sends https://puter.work)
  --auth-token T   answer only driver calls carrying token T (puter.setAuthToken(T));
                   the environment variable MOONSHOT_SERVE_TOKEN does the same

global options:
  --config FILE    Puter-style config: {\"providers\":{\"moonshot\":{\"apiKey\":\"...\"}}}
  --library PATH   the provider library (default: the one built beside host-demo)

environment: MOONSHOT_API_KEY (used when the config has no key), MOONSHOT_BASE_URL,
MOONSHOT_SERVE_TOKEN (serve's --auth-token).
Without any key, host-demo answers from the offline simulator.";

/// Where `serve` listens unless told: the port of Puter's own local API.
pub const DEFAULT_PORT: u16 = 4100;

#[derive(Debug, PartialEq, Eq)]
pub enum Command {
    Chat(String),
    Models,
    List,
    Serve { port: u16 },
    Doctor,
    Help,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Output {
    Text,
    Ndjson,
}

/// The Moonshot features a chat can ask for.
#[derive(Debug, Default, PartialEq)]
pub struct Features {
    pub thinking: Option<bool>,
    pub reasoning_effort: Option<String>,
    pub tools: Option<PathBuf>,
    pub tool_choice: Option<String>,
    pub images: Vec<String>,
    pub videos: Vec<String>,
    pub json: bool,
    pub json_schema: Option<PathBuf>,
    pub partial: Option<String>,
    pub web_search: bool,
    pub cache_key: Option<String>,
    pub temperature: Option<f64>,
    pub stop: Vec<String>,
}

#[derive(Debug)]
pub struct Options {
    pub features: Features,
    pub command: Command,
    pub model: Option<String>,
    pub provider: Option<String>,
    pub system: Option<String>,
    pub max_tokens: Option<u64>,
    pub stream: bool,
    pub output: Output,
    pub port: Option<u16>,
    /// serve: origins allowed besides loopback pages.
    pub allow_origins: Vec<String>,
    /// serve: the token driver calls must carry.
    pub auth_token: Option<String>,
    pub config: Option<PathBuf>,
    pub library: Option<PathBuf>,
}

pub fn parse(args: impl Iterator<Item = String>) -> Result<Options, String> {
    let mut args = args.peekable();
    let mut options = Options {
        features: Features::default(),
        command: Command::Help,
        model: None,
        provider: None,
        system: None,
        max_tokens: None,
        stream: true,
        output: Output::Text,
        port: None,
        allow_origins: Vec::new(),
        auth_token: None,
        config: None,
        library: None,
    };
    let mut command: Option<String> = None;
    let mut positional: Vec<String> = Vec::new();
    while let Some(arg) = args.next() {
        let mut value = |name: &str| args.next().ok_or_else(|| format!("{name} needs a value"));
        match arg.as_str() {
            "-h" | "--help" => return Ok(options),
            "--model" => options.model = Some(value("--model")?),
            "--provider" => options.provider = Some(value("--provider")?),
            "--system" => options.system = Some(value("--system")?),
            "--max-tokens" => {
                let n = value("--max-tokens")?;
                options.max_tokens = Some(
                    n.parse()
                        .map_err(|_| format!("--max-tokens takes a number, not '{n}'"))?,
                );
            }
            "--no-stream" => options.stream = false,
            "--thinking" => options.features.thinking = Some(true),
            "--no-thinking" => options.features.thinking = Some(false),
            "--reasoning-effort" => {
                options.features.reasoning_effort = Some(value("--reasoning-effort")?)
            }
            "--tools" => options.features.tools = Some(PathBuf::from(value("--tools")?)),
            "--tool-choice" => options.features.tool_choice = Some(value("--tool-choice")?),
            "--image" => options.features.images.push(value("--image")?),
            "--video" => options.features.videos.push(value("--video")?),
            "--json" => options.features.json = true,
            "--json-schema" => {
                options.features.json_schema = Some(PathBuf::from(value("--json-schema")?))
            }
            "--partial" => options.features.partial = Some(value("--partial")?),
            "--web-search" => options.features.web_search = true,
            "--cache-key" => options.features.cache_key = Some(value("--cache-key")?),
            "--temperature" => {
                let t = value("--temperature")?;
                options.features.temperature = Some(
                    t.parse()
                        .map_err(|_| format!("--temperature takes a number, not '{t}'"))?,
                );
            }
            "--stop" => options.features.stop.push(value("--stop")?),
            "--output" => {
                options.output = match value("--output")?.as_str() {
                    "text" => Output::Text,
                    "ndjson" => Output::Ndjson,
                    other => return Err(format!("--output takes text or ndjson, not '{other}'")),
                }
            }
            "--port" => {
                let p = value("--port")?;
                options.port =
                    Some(p.parse().map_err(|_| {
                        format!("--port takes a number from 0 to 65535, not '{p}'")
                    })?);
            }
            "--allow-origin" => options.allow_origins.push(value("--allow-origin")?),
            "--auth-token" => options.auth_token = Some(value("--auth-token")?),
            "--config" => options.config = Some(PathBuf::from(value("--config")?)),
            "--library" => options.library = Some(PathBuf::from(value("--library")?)),
            flag if flag.starts_with("--") => return Err(format!("unknown option {flag}")),
            _ if command.is_none() => command = Some(arg),
            _ => positional.push(arg),
        }
    }
    options.command = match command.as_deref() {
        None | Some("help") => Command::Help,
        Some("chat") => {
            if positional.is_empty() {
                return Err("chat needs a PROMPT".into());
            }
            Command::Chat(positional.join(" "))
        }
        Some("models") => Command::Models,
        Some("list") => Command::List,
        Some("serve") => {
            if let Some(extra) = positional.first() {
                return Err(format!("serve takes no argument ('{extra}')"));
            }
            Command::Serve {
                port: options.port.unwrap_or(DEFAULT_PORT),
            }
        }
        Some("doctor") => {
            if let Some(extra) = positional.first() {
                return Err(format!("doctor takes no argument ('{extra}')"));
            }
            Command::Doctor
        }
        Some(other) => return Err(format!("unknown command '{other}'")),
    };
    Ok(options)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_str(line: &str) -> Result<Options, String> {
        parse(line.split_whitespace().map(String::from))
    }

    #[test]
    fn chat_with_flags_anywhere() {
        let o =
            parse_str("--config c.json chat hello there --model kimi --no-stream --output ndjson")
                .unwrap();
        assert_eq!(o.command, Command::Chat("hello there".into()));
        assert_eq!(o.model.as_deref(), Some("kimi"));
        assert!(!o.stream);
        assert_eq!(o.output, Output::Ndjson);
        assert_eq!(o.config, Some(PathBuf::from("c.json")));
    }

    #[test]
    fn feature_flags() {
        let o = parse_str(
            "chat hi --thinking --tools t.json --tool-choice get_weather --image a.png --image https://x/y.jpg \
             --json --partial Once --web-search --cache-key s1 --temperature 0.3 --stop END --reasoning-effort low",
        )
        .unwrap();
        let f = &o.features;
        assert_eq!(f.thinking, Some(true));
        assert_eq!(f.tools, Some(PathBuf::from("t.json")));
        assert_eq!(f.tool_choice.as_deref(), Some("get_weather"));
        assert_eq!(f.images, vec!["a.png", "https://x/y.jpg"]);
        assert!(f.json && f.web_search);
        assert_eq!(f.partial.as_deref(), Some("Once"));
        assert_eq!(f.cache_key.as_deref(), Some("s1"));
        assert_eq!(f.temperature, Some(0.3));
        assert_eq!(f.stop, vec!["END"]);
        assert_eq!(f.reasoning_effort.as_deref(), Some("low"));
        assert!(parse_str("chat hi --temperature warm")
            .unwrap_err()
            .contains("takes a number"));
    }

    #[test]
    fn serve_and_its_port() {
        assert_eq!(
            parse_str("serve").unwrap().command,
            Command::Serve { port: DEFAULT_PORT }
        );
        assert_eq!(
            parse_str("--config c.json serve --port 0").unwrap().command,
            Command::Serve { port: 0 }
        );
        assert!(parse_str("serve --port 70000")
            .unwrap_err()
            .contains("0 to 65535"));
        assert!(parse_str("serve now").unwrap_err().contains("no argument"));
    }

    #[test]
    fn doctor() {
        let o = parse_str("doctor --model kimi-k3").unwrap();
        assert_eq!(o.command, Command::Doctor);
        assert_eq!(o.model.as_deref(), Some("kimi-k3"));
        assert!(parse_str("doctor now").unwrap_err().contains("no argument"));
    }

    #[test]
    fn serve_access_options() {
        let options = parse_str(
            "serve --allow-origin https://a.example --allow-origin http://b:1 --auth-token t1",
        )
        .unwrap();
        assert_eq!(options.allow_origins, ["https://a.example", "http://b:1"]);
        assert_eq!(options.auth_token.as_deref(), Some("t1"));
        let plain = parse_str("serve").unwrap();
        assert!(plain.allow_origins.is_empty() && plain.auth_token.is_none());
    }

    #[test]
    fn errors() {
        assert!(parse_str("chat").unwrap_err().contains("PROMPT"));
        assert!(parse_str("chat hi --output xml")
            .unwrap_err()
            .contains("text or ndjson"));
        assert!(parse_str("chat hi --bogus")
            .unwrap_err()
            .contains("unknown option"));
        assert!(parse_str("fly").unwrap_err().contains("unknown command"));
        assert!(parse_str("chat hi --model")
            .unwrap_err()
            .contains("needs a value"));
    }
}
