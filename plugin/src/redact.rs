//! Account identifiers out of upstream text. Moonshot's own error messages
//! can name the operator's organisation and key ids, e.g. "Your account
//! org-0123abcd<ak-4567efgh> request reached organization max RPM: 3, please
//! try again after 1 seconds": no such text reaches the host as it came.
//! (The API key itself is redacted separately, by value.)

/// What an identifier becomes: its prefix stays, so the message still says
/// which kind of account id was there.
const HIDDEN: &str = "[redacted]";

/// The prefixes of Moonshot's organisation and access-key ids.
const PREFIXES: [&str; 2] = ["org-", "ak-"];

/// `text` with every `org-…` and `ak-…` identifier replaced by
/// `org-[redacted]` / `ak-[redacted]`. An identifier starts a word and its
/// body (letters, digits, `_`) holds a digit or is 8 characters or longer,
/// so words such as "org-wide" stay.
pub fn account_ids(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    let mut previous: Option<char> = None;
    while let Some(c) = rest.chars().next() {
        let starts_word = !previous.is_some_and(|p| p.is_alphanumeric() || p == '_');
        if starts_word {
            if let Some((prefix, body_len)) = identifier_at(rest) {
                out.push_str(prefix);
                out.push_str(HIDDEN);
                rest = &rest[prefix.len() + body_len..];
                previous = Some(']');
                continue;
            }
        }
        out.push(c);
        previous = Some(c);
        rest = &rest[c.len_utf8()..];
    }
    out
}

/// The prefix and body length of an identifier at the start of `text`.
fn identifier_at(text: &str) -> Option<(&'static str, usize)> {
    let prefix = PREFIXES.into_iter().find(|p| text.starts_with(p))?;
    let body: &str = &text[prefix.len()..];
    let len = body
        .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .unwrap_or(body.len());
    let body = &body[..len];
    let looks_like_id = body.len() >= 8 || body.bytes().any(|b| b.is_ascii_digit());
    (!body.is_empty() && looks_like_id).then_some((prefix, len))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn moonshots_rate_limit_message_loses_its_account_ids() {
        let message = "Your account org-0123abcd<ak-4567efgh> request reached organization \
                       max RPM: 3, please try again after 1 seconds";
        assert_eq!(
            account_ids(message),
            "Your account org-[redacted]<ak-[redacted]> request reached organization \
             max RPM: 3, please try again after 1 seconds"
        );
    }

    #[test]
    fn only_identifiers_are_touched() {
        for kept in [
            "an org-wide limit",
            "break-down",
            "bak-12 is not a key id",
            "borg-42",
            "org-",
            "ak-",
            "",
            "ünïcode org-wide ✓",
        ] {
            assert_eq!(account_ids(kept), kept);
        }
        assert_eq!(account_ids("org-1"), "org-[redacted]");
        assert_eq!(account_ids("(ak-abcdefgh)"), "(ak-[redacted])");
        assert_eq!(
            account_ids("ids: org-9, ak-x1_y2."),
            "ids: org-[redacted], ak-[redacted]."
        );
    }
}
