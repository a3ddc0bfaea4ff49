//! Digest pinning for deployment manifests: every `image:` in Docker Compose
//! files and Kubernetes YAML (any document, any depth: Deployments, Pods,
//! Jobs, CronJobs, init containers) must carry a digest.
//!
//! Pure: text in, findings out. Parsed with yaml-rust2's event parser, which
//! keeps the line of every value.

use yaml_rust2::parser::{Event, MarkedEventReceiver, Parser};
use yaml_rust2::scanner::Marker;

use crate::core::digest::Digest;
use crate::core::image_ref::ImageRef;

/// One `image:` value that is not digest-pinned.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Unpinned {
    /// 1-based line of the value.
    pub line: usize,
    pub reference: String,
    /// Why it does not count as pinned.
    pub why: String,
}

#[derive(Debug, thiserror::Error)]
#[error("line {line}: not valid YAML: {message}")]
pub struct YamlError {
    pub line: usize,
    pub message: String,
}

enum Frame {
    Map { expecting_key: bool, key: Option<String> },
    Seq,
}

#[derive(Default)]
struct Collector {
    stack: Vec<Frame>,
    images: Vec<(usize, String)>,
}

impl Collector {
    /// A value (scalar, alias or container) took the place of a map value.
    fn value_seen(&mut self) -> Option<String> {
        match self.stack.last_mut() {
            Some(Frame::Map { expecting_key, key }) if !*expecting_key => {
                *expecting_key = true;
                key.take()
            }
            Some(Frame::Map { expecting_key, .. }) => {
                // A complex key: its value follows.
                *expecting_key = false;
                None
            }
            _ => None,
        }
    }
}

impl MarkedEventReceiver for Collector {
    fn on_event(&mut self, ev: Event, mark: Marker) {
        match ev {
            Event::MappingStart(..) => {
                self.value_seen();
                self.stack.push(Frame::Map { expecting_key: true, key: None });
            }
            Event::SequenceStart(..) => {
                self.value_seen();
                self.stack.push(Frame::Seq);
            }
            Event::MappingEnd | Event::SequenceEnd => {
                self.stack.pop();
            }
            Event::Scalar(value, ..) => match self.stack.last_mut() {
                Some(Frame::Map { expecting_key: true, key }) => {
                    *key = Some(value);
                    if let Some(Frame::Map { expecting_key, .. }) = self.stack.last_mut() {
                        *expecting_key = false;
                    }
                }
                _ => {
                    if self.value_seen().as_deref() == Some("image") {
                        self.images.push((mark.line(), value));
                    }
                }
            },
            Event::Alias(_) => {
                self.value_seen();
            }
            _ => {}
        }
    }
}

/// One `image:` value: pinned to a digest, or not (and why).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Image {
    Pinned { line: usize, reference: String, digest: Digest },
    Unpinned(Unpinned),
}

/// Every `image:` value of a YAML stream, in order.
pub fn images(text: &str) -> Result<Vec<Image>, YamlError> {
    let mut c = Collector::default();
    Parser::new_from_str(text)
        .load(&mut c, true)
        .map_err(|e| YamlError { line: e.marker().line(), message: e.info().to_string() })?;
    Ok(c.images
        .into_iter()
        .map(|(line, reference)| match reference.parse::<ImageRef>() {
            Ok(r) => match r.digest() {
                Some(digest) => Image::Pinned { line, reference, digest },
                None => Image::Unpinned(Unpinned { line, reference, why: "no digest".into() }),
            },
            Err(e) => Image::Unpinned(Unpinned { line, reference, why: e.to_string() }),
        })
        .collect())
}

/// Every `image:` value of a YAML stream that is not pinned to a digest.
pub fn unpinned_images(text: &str) -> Result<Vec<Unpinned>, YamlError> {
    Ok(images(text)?
        .into_iter()
        .filter_map(|i| match i {
            Image::Unpinned(u) => Some(u),
            Image::Pinned { .. } => None,
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    const D: &str = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

    #[test]
    fn finds_unpinned_images_with_lines() {
        let text = format!(
            "services:\n  web:\n    image: nginx:1.27\n  api:\n    image: ghcr.io/acme/api@{D}\n    environment:\n      image: not-an-image-key-at-service-level\n"
        );
        let found = unpinned_images(&text).unwrap();
        assert_eq!(found.len(), 2, "{found:?}");
        assert_eq!(found[0].line, 3);
        assert_eq!(found[0].reference, "nginx:1.27");
        assert_eq!(found[1].line, 7);
    }

    #[test]
    fn ignores_other_keys_and_values_named_image() {
        let text = "metadata:\n  name: image\nlist:\n  - image\n  - {a: image}\n";
        assert!(unpinned_images(text).unwrap().is_empty());
    }

    #[test]
    fn reports_bad_yaml_with_line() {
        let e = unpinned_images("a: [1, 2\nb: c\n").unwrap_err();
        assert!(e.line >= 1, "{e}");
    }
}
