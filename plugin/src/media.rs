//! http(s) image and video URLs -> inlined data URIs. Moonshot does not
//! fetch URLs (MOONSHOT-API.md §6), so the plugin downloads them, on the
//! pool thread, from public addresses only (public_net.rs), within the
//! `media` limits of the config. The API key is never sent to these hosts.

use std::io::Read;
use std::time::Instant;

use base64::Engine;
use serde_json::{json, Map, Value};

use crate::cancel::CancelToken;
use crate::client::{self, Client};
use crate::config::Media;
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

/// What every failed or refused fetch tells the caller, whatever the
/// reason: telling "connection refused" from "HTTP 404" from "not an image"
/// would make the plugin a port scanner for whoever calls it.
pub const FETCH_FAILED: &str = "a media URL could not be fetched: media URLs must be public \
http(s) addresses that answer with a supported image or video type within the plugin's \
size and time limits";

/// The one error of a failed fetch; the reason is added only when the
/// operator asked for it (`media.debug_errors`).
fn fetch_failed(limits: &Media, item: usize, url: &str, reason: &str) -> ProviderError {
    let message = if limits.debug_errors {
        format!(
            "{FETCH_FAILED} [debug: item {item} ({}): {reason}]",
            short(url)
        )
    } else {
        FETCH_FAILED.to_string()
    };
    ProviderError::new(ErrorKind::InvalidRequest, message).with_code("media_fetch_failed")
}

/// A URL shortened for messages (it may be long, but is the host's own).
fn short(url: &str) -> String {
    let mut s: String = url.chars().take(120).collect();
    if s.len() < url.len() {
        s.push('…');
    }
    s
}

/// Replaces every listed remote URL in `body.messages` with a data URI,
/// within `limits`: at most `max_items` URLs (refused before any fetch),
/// `max_total_bytes` over all of them and one deadline for them all.
pub fn inline_all(
    body: &mut Map<String, Value>,
    remote: &[RemoteMedia],
    client: &Client,
    cancel: &CancelToken,
    deadline: Instant,
    limits: &Media,
) -> Result<(), ProviderError> {
    if remote.len() > limits.max_items {
        return Err(ProviderError::invalid_request(format!(
            "the request has {} media URLs to fetch, more than the limit of {} (media.max_items)",
            remote.len(),
            limits.max_items
        ))
        .with_code("too_many_media_urls"));
    }
    let deadline = deadline.min(Instant::now() + limits.deadline);
    let mut bytes_left = limits.max_total_bytes;
    for (item, media) in remote.iter().enumerate() {
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
        let limit = bytes_left.min(MAX_MEDIA_BYTES);
        let fetched = if limit == 0 {
            // Nothing left to inline: not worth a connection.
            Err("media.max_total_bytes was used up by the items before".to_string())
        } else {
            fetch(&media.url, kind == "video_url", client, deadline, limit)
        };
        if cancel.is_cancelled() {
            return Err(ProviderError::cancelled());
        }
        let (content_type, bytes) =
            fetched.map_err(|reason| fetch_failed(limits, item, &media.url, &reason))?;
        bytes_left -= bytes.len() as u64;
        let mut data_uri = format!("data:{content_type};base64,");
        base64::engine::general_purpose::STANDARD.encode_string(&bytes, &mut data_uri);
        drop(bytes);
        part[kind] = json!({ "url": data_uri });
    }
    Ok(())
}

/// Fetches one URL: its content type and bytes, or why not (for the
/// operator's debug field only).
fn fetch(
    url: &str,
    video: bool,
    client: &Client,
    deadline: Instant,
    limit: u64,
) -> Result<(String, Vec<u8>), String> {
    let remaining = deadline.saturating_duration_since(Instant::now());
    if remaining.is_zero() {
        return Err("media.deadline_ms passed before this fetch".into());
    }
    let response = client
        .media_agent()
        .get(url)
        .config()
        .timeout_global(Some(remaining))
        .build()
        .call()
        .map_err(|e| {
            client::transport_error(e, client.timeouts(), client::Stage::Responding).message
        })?;
    let status = response.status().as_u16();
    if !(200..300).contains(&status) {
        return Err(format!("HTTP {status}"));
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
        return Err(format!(
            "content type {content_type:?} is not a supported {what} type ({})",
            allowed.join(", ")
        ));
    }
    let too_large = || {
        format!("larger than the {limit} bytes left to inline (media.max_total_bytes, at most {MAX_MEDIA_BYTES} per item)")
    };
    // Refused before reading when the server says how big it is.
    let announced = response
        .headers()
        .get("content-length")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    if announced.is_some_and(|n| n > limit) {
        return Err(too_large());
    }
    let mut bytes = Vec::new();
    response
        .into_body()
        .into_with_config()
        .limit(limit + 1)
        .reader()
        .take(limit + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| client::io_error(e, client.timeouts()).message)?;
    if bytes.len() as u64 > limit {
        return Err(too_large());
    }
    Ok((content_type, bytes))
}
