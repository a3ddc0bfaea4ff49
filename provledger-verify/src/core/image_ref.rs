//! Image references: `[registry[:port]/]path[:tag][@sha256:...]`, following the
//! grammar of the OCI distribution reference, normalised the way registries
//! and container engines read them (`alpine` is `docker.io/library/alpine`).
//!
//! A reference is *pinned* when it carries a digest. Only pinned references
//! identify an artifact; a tag is a movable label.

use std::fmt;
use std::str::FromStr;

use super::FormatError;
use super::digest::Digest;

/// Registry assumed when a reference names none, as container engines do.
pub const DEFAULT_REGISTRY: &str = "docker.io";
/// Longest accepted reference text.
pub const MAX_REFERENCE_LEN: usize = 512;
/// Longest repository name (registry included), per the distribution spec.
pub const MAX_NAME_LEN: usize = 255;
/// Longest tag, per the distribution spec.
pub const MAX_TAG_LEN: usize = 128;

/// A parsed, normalised image reference.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct ImageRef {
    registry: String,
    repository: String,
    tag: Option<String>,
    digest: Option<Digest>,
}

impl ImageRef {
    pub fn registry(&self) -> &str {
        &self.registry
    }

    /// The repository path inside the registry (`library/alpine`).
    pub fn repository(&self) -> &str {
        &self.repository
    }

    pub fn tag(&self) -> Option<&str> {
        self.tag.as_deref()
    }

    pub fn digest(&self) -> Option<Digest> {
        self.digest
    }

    /// True when the reference names an exact digest.
    pub fn is_pinned(&self) -> bool {
        self.digest.is_some()
    }

    /// `registry/repository`, the name an in-toto subject carries.
    pub fn name(&self) -> String {
        format!("{}/{}", self.registry, self.repository)
    }

    /// The same reference with `digest` set (the tag is kept).
    pub fn with_digest(&self, digest: Digest) -> ImageRef {
        ImageRef { digest: Some(digest), ..self.clone() }
    }
}

impl fmt::Display for ImageRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.registry, self.repository)?;
        if let Some(tag) = &self.tag {
            write!(f, ":{tag}")?;
        }
        if let Some(d) = &self.digest {
            write!(f, "@{d}")?;
        }
        Ok(())
    }
}

impl fmt::Debug for ImageRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ImageRef({self})")
    }
}

fn bad(text: &str, why: impl fmt::Display) -> FormatError {
    FormatError::ImageRef(format!("{text:?}: {why}"))
}

fn is_domain_component(s: &str) -> bool {
    let b = s.as_bytes();
    !b.is_empty()
        && b[0].is_ascii_alphanumeric()
        && b[b.len() - 1].is_ascii_alphanumeric()
        && b.iter().all(|c| c.is_ascii_alphanumeric() || *c == b'-')
}

fn is_valid_host(host: &str) -> bool {
    if let Some(inner) = host.strip_prefix('[').and_then(|h| h.strip_suffix(']')) {
        return inner.parse::<std::net::Ipv6Addr>().is_ok();
    }
    host.split('.').all(is_domain_component)
}

/// `[a-z0-9]+ (separator [a-z0-9]+)*` with separator `.`, `_`, `__` or `-+`.
fn is_path_component(s: &str) -> bool {
    let b = s.as_bytes();
    if b.is_empty() || !is_lower_alnum(b[0]) || !is_lower_alnum(b[b.len() - 1]) {
        return false;
    }
    let mut i = 0;
    while i < b.len() {
        if is_lower_alnum(b[i]) {
            i += 1;
            continue;
        }
        let start = i;
        while i < b.len() && !is_lower_alnum(b[i]) {
            i += 1;
        }
        let sep = &s[start..i];
        let ok = sep == "." || sep == "_" || sep == "__" || sep.bytes().all(|c| c == b'-');
        if !ok {
            return false;
        }
    }
    true
}

fn is_lower_alnum(c: u8) -> bool {
    c.is_ascii_lowercase() || c.is_ascii_digit()
}

fn is_valid_tag(t: &str) -> bool {
    let b = t.as_bytes();
    !b.is_empty()
        && b.len() <= MAX_TAG_LEN
        && (b[0].is_ascii_alphanumeric() || b[0] == b'_')
        && b.iter().all(|c| c.is_ascii_alphanumeric() || matches!(c, b'_' | b'.' | b'-'))
}

impl FromStr for ImageRef {
    type Err = FormatError;

    fn from_str(text: &str) -> Result<Self, FormatError> {
        if text.is_empty() {
            return Err(bad(text, "empty image reference"));
        }
        if super::keys::contains_secret_key(text) {
            // Not quoted: the message must not carry the key.
            return Err(FormatError::ImageRef(
                "this is a secret key, not an image reference (not shown; consider it exposed)".into(),
            ));
        }
        if text.len() > MAX_REFERENCE_LEN {
            // The message quotes its start, cut at a character boundary.
            let cut = (0..=32).rev().find(|&i| text.is_char_boundary(i)).unwrap_or(0);
            return Err(bad(&text[..cut], format!("reference longer than {MAX_REFERENCE_LEN} bytes")));
        }
        if text.trim() != text || text.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(bad(text, "white space or control characters in image reference"));
        }
        let (rest, digest) = match text.split_once('@') {
            Some((rest, d)) => (rest, Some(d.parse::<Digest>().map_err(|e| bad(text, e))?)),
            None => (text, None),
        };
        // A tag is after the last ':' that follows the last '/'; a ':' before
        // that belongs to the registry port.
        let last_slash = rest.rfind('/').map_or(0, |i| i + 1);
        let (name, tag) = match rest[last_slash..].rfind(':') {
            Some(i) => {
                let tag = &rest[last_slash + i + 1..];
                if !is_valid_tag(tag) {
                    return Err(bad(text, format!("invalid tag {tag:?}")));
                }
                (&rest[..last_slash + i], Some(tag.to_string()))
            }
            None => (rest, None),
        };
        if name.is_empty() {
            return Err(bad(text, "no repository name"));
        }
        let (registry, path) = match name.split_once('/') {
            Some((first, path)) if first.contains(['.', ':']) || first == "localhost" => {
                let (host, port) = match first.rsplit_once(':') {
                    Some((h, p)) if !h.ends_with(']') || first.starts_with('[') => (h, Some(p)),
                    _ => (first, None),
                };
                if !is_valid_host(host) {
                    return Err(bad(text, format!("invalid registry host {host:?}")));
                }
                if let Some(p) = port
                    && (p.is_empty()
                        || p.len() > 5
                        || !p.bytes().all(|c| c.is_ascii_digit())
                        || p.parse::<u32>().map_or(true, |n| n > 65535))
                {
                    return Err(bad(text, format!("invalid registry port {p:?}")));
                }
                let registry =
                    if first == "index.docker.io" { DEFAULT_REGISTRY.to_string() } else { first.to_ascii_lowercase() };
                (registry, path.to_string())
            }
            _ => (DEFAULT_REGISTRY.to_string(), name.to_string()),
        };
        for component in path.split('/') {
            if !is_path_component(component) {
                let why = if component.bytes().any(|c| c.is_ascii_uppercase()) {
                    "repository names must be lowercase".to_string()
                } else {
                    format!("invalid path component {component:?}")
                };
                return Err(bad(text, why));
            }
        }
        let repository =
            if registry == DEFAULT_REGISTRY && !path.contains('/') { format!("library/{path}") } else { path };
        if registry.len() + 1 + repository.len() > MAX_NAME_LEN {
            return Err(bad(text, format!("repository name longer than {MAX_NAME_LEN} bytes")));
        }
        Ok(ImageRef { registry, repository, tag, digest })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const D: &str = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

    /// Found by the image_ref fuzz target: the message quoted the first 32
    /// bytes of an over-long reference, which may end inside a character.
    #[test]
    fn an_over_long_reference_with_multibyte_characters_is_refused_not_a_panic() {
        let text = format!("{}{}", "a".repeat(31), "\u{c2}".repeat(400));
        let e = text.parse::<ImageRef>().unwrap_err().to_string();
        assert!(e.contains("longer than"), "{e}");
    }

    #[test]
    fn normalises() {
        let cases = [
            ("alpine", "docker.io/library/alpine"),
            ("alpine:3.20", "docker.io/library/alpine:3.20"),
            ("index.docker.io/org/app:v1", "docker.io/org/app:v1"),
            ("org/app", "docker.io/org/app"),
            ("localhost/app", "localhost/app"),
            ("localhost:5000/team/app:v1", "localhost:5000/team/app:v1"),
            ("127.0.0.1:5000/app", "127.0.0.1:5000/app"),
            ("Registry.Example.com/app", "registry.example.com/app"),
            ("[::1]:5000/app", "[::1]:5000/app"),
        ];
        for (input, want) in cases {
            assert_eq!(input.parse::<ImageRef>().unwrap().to_string(), want, "{input}");
        }
    }

    #[test]
    fn digest_and_tag() {
        let r: ImageRef = format!("ghcr.io/org/app:v1.2@{D}").parse().unwrap();
        assert_eq!(r.registry(), "ghcr.io");
        assert_eq!(r.repository(), "org/app");
        assert_eq!(r.tag(), Some("v1.2"));
        assert_eq!(r.digest().unwrap().to_string(), D);
        assert!(r.is_pinned());
        assert_eq!(r.name(), "ghcr.io/org/app");
        let r: ImageRef = format!("ghcr.io:443/org/app@{D}").parse().unwrap();
        assert_eq!(r.tag(), None);
        assert_eq!(r.registry(), "ghcr.io:443");
        assert!(!"ghcr.io/org/app:v1".parse::<ImageRef>().unwrap().is_pinned());
    }

    #[test]
    fn rejects() {
        for bad in [
            "",
            " alpine",
            "Alpine",
            "ghcr.io/Org/app",
            "ghcr.io/org/app:",
            "ghcr.io/org/app:-bad",
            "ghcr.io/org//app",
            "ghcr.io/org/app/",
            "ghcr.io:99999/app",
            "ghcr.io:/app",
            "ghcr.io/org/app@sha256:abc",
            "ghcr.io/org/app@sha512:0123",
            &format!("ghcr.io/org/app@{}", D.to_uppercase()),
            "ghcr.io/org/app@",
            "ghcr.io/org/a..b",
            "-bad.io/app",
            "ghcr.io/org/app:tag with space",
            &"a".repeat(600),
        ] {
            assert!(bad.parse::<ImageRef>().is_err(), "{bad:?} was accepted");
        }
    }
}
