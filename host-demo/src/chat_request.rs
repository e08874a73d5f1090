//! Builds the ICompleteArguments JSON of `host-demo chat` from its flags:
//! files are read here (tools, schemas, local images and videos inlined as
//! data URIs); everything else is left for the plugin to check.

use std::path::Path;

use base64::Engine;
use serde_json::{json, Value};

use crate::args::Features;

fn read_json(path: &Path, what: &str) -> Result<Value, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read {what} {}: {e}", path.display()))?;
    serde_json::from_str(&text)
        .map_err(|e| format!("{what} {} is not valid JSON: {e}", path.display()))
}

/// A media argument as a URL: http(s), data: and ms:// pass through (the
/// plugin fetches http); a local file is inlined.
fn media_url(arg: &str, video: bool) -> Result<String, String> {
    if ["http://", "https://", "data:", "ms://"]
        .iter()
        .any(|p| arg.starts_with(p))
    {
        return Ok(arg.to_string());
    }
    let path = Path::new(arg);
    let bytes = std::fs::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let extension = path
        .extension()
        .and_then(|e| e.to_str())
        .unwrap_or("")
        .to_ascii_lowercase();
    let mime = match (video, extension.as_str()) {
        (false, "png") => "image/png",
        (false, "jpg" | "jpeg") => "image/jpeg",
        (false, "webp") => "image/webp",
        (false, "gif") => "image/gif",
        (true, "mp4") => "video/mp4",
        (true, "mov") => "video/quicktime",
        (true, "webm") => "video/webm",
        (true, "mpeg" | "mpg") => "video/mpeg",
        (true, "avi") => "video/x-msvideo",
        _ => {
            return Err(format!(
                "{}: unsupported file type '.{extension}'",
                path.display()
            ))
        }
    };
    Ok(format!(
        "data:{mime};base64,{}",
        base64::engine::general_purpose::STANDARD.encode(bytes)
    ))
}

pub fn build(
    model: &str,
    system: Option<&str>,
    prompt: &str,
    stream: bool,
    max_tokens: Option<u64>,
    f: &Features,
) -> Result<Value, String> {
    let mut messages = Vec::new();
    if let Some(system) = system {
        messages.push(json!({"role": "system", "content": system}));
    }
    if f.images.is_empty() && f.videos.is_empty() {
        messages.push(json!({"role": "user", "content": prompt}));
    } else {
        let mut parts = vec![json!({"type": "text", "text": prompt})];
        for image in &f.images {
            parts
                .push(json!({"type": "image_url", "image_url": {"url": media_url(image, false)?}}));
        }
        for video in &f.videos {
            parts.push(json!({"type": "video_url", "video_url": {"url": media_url(video, true)?}}));
        }
        messages.push(json!({"role": "user", "content": parts}));
    }
    if let Some(prefix) = &f.partial {
        messages.push(json!({"role": "assistant", "content": prefix, "partial": true}));
    }
    let mut request = json!({"model": model, "messages": messages, "stream": stream});
    if let Some(n) = max_tokens {
        request["max_tokens"] = json!(n);
    }
    if let Some(on) = f.thinking {
        request["thinking"] = json!(on);
    }
    if let Some(effort) = &f.reasoning_effort {
        request["reasoning_effort"] = json!(effort);
    }
    if let Some(path) = &f.tools {
        request["tools"] = read_json(path, "tools file")?;
    }
    if let Some(choice) = &f.tool_choice {
        request["tool_choice"] = match choice.as_str() {
            "auto" | "none" | "required" => json!(choice),
            name => json!({"type": "function", "function": {"name": name}}),
        };
    }
    if f.json {
        request["response_format"] = json!({"type": "json_object"});
    }
    if let Some(path) = &f.json_schema {
        let schema = read_json(path, "JSON schema")?;
        request["response_format"] =
            json!({"type": "json_schema", "json_schema": {"name": "response", "schema": schema}});
    }
    if f.web_search {
        request["web_search"] = json!(true);
    }
    if let Some(key) = &f.cache_key {
        request["prompt_cache_key"] = json!(key);
    }
    if let Some(t) = f.temperature {
        request["temperature"] = json!(t);
    }
    if !f.stop.is_empty() {
        request["stop"] = json!(f.stop);
    }
    Ok(request)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_prompt() {
        let r = build("kimi-k2.6", None, "hi", true, None, &Features::default()).unwrap();
        assert_eq!(
            r,
            json!({"model":"kimi-k2.6","messages":[{"role":"user","content":"hi"}],"stream":true})
        );
    }

    #[test]
    fn features_map_to_puter_options() {
        let dir = std::env::temp_dir().join(format!("host-demo-req-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let image = dir.join("dot.png");
        std::fs::write(&image, b"PNG").unwrap();
        let f = Features {
            thinking: Some(false),
            images: vec![
                image.display().to_string(),
                "https://example.com/a.jpg".into(),
            ],
            partial: Some("Once".into()),
            json: true,
            web_search: true,
            tool_choice: Some("get_weather".into()),
            stop: vec!["END".into()],
            ..Features::default()
        };
        let r = build(
            "kimi-k3",
            Some("Be brief"),
            "What is this?",
            false,
            Some(50),
            &f,
        )
        .unwrap();
        std::fs::remove_dir_all(&dir).ok();
        assert_eq!(
            r,
            json!({"model":"kimi-k3","stream":false,"max_tokens":50,"thinking":false,"web_search":true,"stop":["END"],
                "response_format":{"type":"json_object"},
                "tool_choice":{"type":"function","function":{"name":"get_weather"}},
                "messages":[
                    {"role":"system","content":"Be brief"},
                    {"role":"user","content":[
                        {"type":"text","text":"What is this?"},
                        {"type":"image_url","image_url":{"url":"data:image/png;base64,UE5H"}},
                        {"type":"image_url","image_url":{"url":"https://example.com/a.jpg"}}]},
                    {"role":"assistant","content":"Once","partial":true}]})
        );
    }

    #[test]
    fn unreadable_files_are_clear() {
        let f = Features {
            images: vec!["/no/such/file.png".into()],
            ..Features::default()
        };
        assert!(build("m", None, "p", true, None, &f)
            .unwrap_err()
            .contains("cannot read /no/such/file.png"));
        let f = Features {
            images: vec!["notes.txt".into()],
            ..Features::default()
        };
        assert!(build("m", None, "p", true, None, &f).is_err());
    }
}
