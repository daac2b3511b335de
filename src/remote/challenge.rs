//! Reading a remote's `WWW-Authenticate` challenge (RFC 7235): how it wants to be asked.

/// How a remote wants requests authenticated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Challenge {
    /// The Docker token flow: fetch a token from `realm` (for `service`), send it as Bearer.
    Bearer {
        realm: String,
        service: Option<String>,
    },
    Basic,
}

impl Challenge {
    /// The challenge in a `WWW-Authenticate` value, if it is one this client can answer.
    pub fn parse(value: &str) -> Option<Challenge> {
        let value = value.trim();
        let (scheme, rest) = value.split_once(' ').unwrap_or((value, ""));
        if scheme.eq_ignore_ascii_case("basic") {
            return Some(Challenge::Basic);
        }
        if !scheme.eq_ignore_ascii_case("bearer") {
            return None;
        }
        let parameters = parameters(rest);
        let find = |name: &str| {
            parameters
                .iter()
                .find(|(key, _)| key.eq_ignore_ascii_case(name))
                .map(|(_, value)| value.clone())
        };
        let realm = find("realm").filter(|realm| realm.starts_with("http"))?;
        Some(Challenge::Bearer {
            realm,
            service: find("service"),
        })
    }
}

/// `key=value` and `key="quoted, value"` pairs, comma-separated.
fn parameters(text: &str) -> Vec<(String, String)> {
    let mut pairs = Vec::new();
    let mut rest = text.trim();
    while let Some((key, after)) = rest.split_once('=') {
        let key = key.trim().trim_start_matches(',').trim().to_string();
        let after = after.trim_start();
        let (value, remainder) = match after.strip_prefix('"') {
            Some(quoted) => {
                let mut value = String::new();
                let mut chars = quoted.char_indices();
                let mut end = quoted.len();
                while let Some((i, c)) = chars.next() {
                    match c {
                        '\\' => {
                            if let Some((_, escaped)) = chars.next() {
                                value.push(escaped);
                            }
                        }
                        '"' => {
                            end = i + 1;
                            break;
                        }
                        c => value.push(c),
                    }
                }
                (value, &quoted[end.min(quoted.len())..])
            }
            None => {
                let end = after.find(',').unwrap_or(after.len());
                (after[..end].trim().to_string(), &after[end..])
            }
        };
        pairs.push((key, value));
        rest = remainder.trim_start().trim_start_matches(',').trim_start();
    }
    pairs
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn challenges_of_the_registries_in_the_wild_are_read() {
        let hub = r#"Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/alpine:pull""#;
        assert_eq!(
            Challenge::parse(hub),
            Some(Challenge::Bearer {
                realm: "https://auth.docker.io/token".into(),
                service: Some("registry.docker.io".into()),
            })
        );
        let spaced = r#"bearer realm="http://127.0.0.1:5000/token", service="wharf""#;
        assert_eq!(
            Challenge::parse(spaced),
            Some(Challenge::Bearer {
                realm: "http://127.0.0.1:5000/token".into(),
                service: Some("wharf".into()),
            })
        );
        let bare = r#"Bearer realm="https://ghcr.io/token""#;
        assert!(matches!(
            Challenge::parse(bare),
            Some(Challenge::Bearer { service: None, .. })
        ));
        assert_eq!(
            Challenge::parse(r#"Basic realm="Registry Realm""#),
            Some(Challenge::Basic)
        );
        let escaped = r#"Bearer service="a \"quoted\" name",realm="https://r/t""#;
        assert_eq!(
            Challenge::parse(escaped),
            Some(Challenge::Bearer {
                realm: "https://r/t".into(),
                service: Some(r#"a "quoted" name"#.into()),
            })
        );
    }

    #[test]
    fn challenges_that_cannot_be_answered_are_none() {
        for value in [
            "",
            "Negotiate",
            "Bearer",
            r#"Bearer service="x""#,
            r#"Bearer realm="file:///etc/passwd""#,
            r#"Bearer realm="unterminated"#,
        ] {
            assert_eq!(Challenge::parse(value), None, "{value}");
        }
    }
}
