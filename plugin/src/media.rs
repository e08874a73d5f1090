//! http(s) image and video URLs -> inlined data URIs. Moonshot does not
//! fetch URLs (MOONSHOT-API.md §6), so the plugin downloads them, on the
//! pool thread, with a size cap, a content-type check and the request's
//! deadline. The API key is never sent to these hosts.

use std::io::Read;
use std::time::Instant;

use base64::Engine;
use serde_json::{json, Map, Value};

use crate::cancel::CancelToken;
use crate::client::{self, Client};
use crate::error::{ErrorKind, ProviderError};
use crate::messages::RemoteMedia;

/// Largest media file inlined (Moonshot caps the whole body at 100 MB).
pub const MAX_MEDIA_BYTES: u64 = 32 * 1024 * 1024;

const IMAGE_TYPES: &[&str] = &[
    "image/png",
    "image/jpeg",
    "image/jpg",
    "image/webp",
    "image/gif",
];
const VIDEO_TYPES: &[&str] = &[
    "video/mp4",
    "video/mpeg",
    "video/quicktime",
    "video/mov",
    "video/avi",
    "video/x-msvideo",
    "video/x-flv",
    "video/mpg",
    "video/webm",
    "video/x-ms-wmv",
    "video/wmv",
    "video/3gpp",
];

fn media_error(url: &str, why: impl std::fmt::Display) -> ProviderError {
    ProviderError::new(
        ErrorKind::InvalidRequest,
        format!("could not inline media {}: {why}", short(url)),
    )
    .with_code("media_fetch_failed")
}

/// A URL shortened for messages (it may be long, but is the host's own).
fn short(url: &str) -> String {
    let mut s: String = url.chars().take(120).collect();
    if s.len() < url.len() {
        s.push('…');
    }
    s
}

/// Replaces every listed remote URL in `body.messages` with a data URI.
pub fn inline_all(
    body: &mut Map<String, Value>,
    remote: &[RemoteMedia],
    client: &Client,
    cancel: &CancelToken,
    deadline: Instant,
) -> Result<(), ProviderError> {
    for media in remote {
        if cancel.is_cancelled() {
            return Err(ProviderError::cancelled());
        }
        let part = body
            .get_mut("messages")
            .and_then(|m| m.get_mut(media.message))
            .and_then(|m| m.get_mut("content"))
            .and_then(|c| c.get_mut(media.part))
            .ok_or_else(|| ProviderError::internal("remote media part moved"))?;
        let kind = if part.get("video_url").is_some() {
            "video_url"
        } else {
            "image_url"
        };
        let data_uri = fetch(&media.url, kind == "video_url", client, deadline)?;
        part[kind] = json!({"url": data_uri});
    }
    Ok(())
}

fn fetch(
    url: &str,
    video: bool,
    client: &Client,
    deadline: Instant,
) -> Result<String, ProviderError> {
    let remaining = deadline.saturating_duration_since(Instant::now());
    let response = client
        .agent()
        .get(url)
        .config()
        .timeout_global(Some(remaining))
        .build()
        .call()
        .map_err(|e| {
            media_error(
                url,
                client::transport_error(e, client.timeouts(), false).message,
            )
        })?;
    let status = response.status().as_u16();
    if !(200..300).contains(&status) {
        return Err(media_error(url, format!("HTTP {status}")));
    }
    let content_type = response
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .map(|v| {
            v.split(';')
                .next()
                .unwrap_or("")
                .trim()
                .to_ascii_lowercase()
        })
        .unwrap_or_default();
    let allowed = if video { VIDEO_TYPES } else { IMAGE_TYPES };
    if !allowed.contains(&content_type.as_str()) {
        let what = if video { "video" } else { "image" };
        let shown = if content_type.is_empty() {
            "none".to_string()
        } else {
            content_type.clone()
        };
        return Err(media_error(
            url,
            format!(
                "content type {shown} is not a supported {what} type ({})",
                allowed.join(", ")
            ),
        ));
    }
    let mut bytes = Vec::new();
    response
        .into_body()
        .into_with_config()
        .limit(MAX_MEDIA_BYTES + 1)
        .reader()
        .take(MAX_MEDIA_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| media_error(url, client::io_error(e, client.timeouts()).message))?;
    if bytes.len() as u64 > MAX_MEDIA_BYTES {
        return Err(media_error(
            url,
            format!(
                "larger than the {} MiB limit",
                MAX_MEDIA_BYTES / (1024 * 1024)
            ),
        ));
    }
    let encoded = base64::engine::general_purpose::STANDARD.encode(&bytes);
    Ok(format!("data:{content_type};base64,{encoded}"))
}
