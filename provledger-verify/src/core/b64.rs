//! Base64, the one place it is spelled (SPEC section 1): the standard
//! alphabet with padding wherever the format writes it, and strictly that on
//! read; the DSSE JSON form alone, which other tools write, is read in
//! either alphabet, padded or not.
//!
//! A bytes field of a serde type names its rule, `#[serde(with =
//! "b64::strict")]` (or [`strict_list`] for a list) everywhere but the DSSE
//! JSON form, which takes [`lenient`]: its text is decoded once, as the
//! document is parsed, and a text that does not decode fails the parse
//! with the rule it broke. All three write [`encode`]'s spelling.

use base64::Engine as _;
use base64::alphabet;
use base64::engine::general_purpose::STANDARD;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};

/// Standard alphabet, padded.
pub fn encode(bytes: impl AsRef<[u8]>) -> String {
    STANDARD.encode(bytes)
}

/// [`encode`] appended to `out`, with no copy of its own: for secret
/// bytes, whose text must live only in a buffer that is zeroized.
pub fn encode_to(bytes: impl AsRef<[u8]>, out: &mut String) {
    STANDARD.encode_string(bytes, out)
}

/// Strict: the standard alphabet, canonical padding, no unused bits set.
pub fn decode(text: impl AsRef<[u8]>) -> Result<Vec<u8>, base64::DecodeError> {
    STANDARD.decode(text)
}

const LENIENT: GeneralPurposeConfig =
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent);
const STD_LENIENT: GeneralPurpose = GeneralPurpose::new(&alphabet::STANDARD, LENIENT);
const URL_LENIENT: GeneralPurpose = GeneralPurpose::new(&alphabet::URL_SAFE, LENIENT);

/// For the DSSE JSON form only: either alphabet, padded or not.
pub fn decode_lenient(text: &str) -> Result<Vec<u8>, base64::DecodeError> {
    STD_LENIENT.decode(text).or_else(|_| URL_LENIENT.decode(text))
}

/// What [`strict`], [`strict_list`] and [`lenient`] share.
mod with {
    use std::fmt;
    use std::marker::PhantomData;

    use serde::de::{self, Deserializer, SeqAccess, Visitor};
    use serde::ser::{SerializeSeq, Serializer};

    pub(super) fn serialize<S: Serializer>(bytes: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&super::encode(bytes))
    }

    pub(super) fn serialize_list<S: Serializer, T: AsRef<[u8]>>(items: &[T], s: S) -> Result<S::Ok, S::Error> {
        let mut seq = s.serialize_seq(Some(items.len()))?;
        for item in items {
            seq.serialize_element(&super::encode(item))?;
        }
        seq.end()
    }

    /// How a base64 text is read, and what the error says it should have been.
    #[derive(Clone, Copy)]
    pub(super) struct Rule {
        pub decode: fn(&str) -> Result<Vec<u8>, base64::DecodeError>,
        pub expected: &'static str,
    }

    pub(super) const STRICT: Rule =
        Rule { decode: |t| super::decode(t), expected: "base64 (standard alphabet, padded)" };
    pub(super) const LENIENT: Rule = Rule { decode: super::decode_lenient, expected: "base64" };

    struct Text<T>(Rule, PhantomData<T>);

    impl<'de, T: From<Vec<u8>>> Visitor<'de> for Text<T> {
        type Value = T;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str(self.0.expected)
        }
        fn visit_str<E: de::Error>(self, text: &str) -> Result<T, E> {
            (self.0.decode)(text).map(T::from).map_err(|e| E::custom(format_args!("not {}: {e}", self.0.expected)))
        }
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>, T: From<Vec<u8>>>(d: D, rule: Rule) -> Result<T, D::Error> {
        d.deserialize_str(Text(rule, PhantomData))
    }

    struct List(Rule);

    impl<'de> Visitor<'de> for List {
        type Value = Vec<Vec<u8>>;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            write!(f, "a list of {}", self.0.expected)
        }
        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Vec<Vec<u8>>, A::Error> {
            struct One(Rule);
            impl<'de> de::DeserializeSeed<'de> for One {
                type Value = Vec<u8>;
                fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Vec<u8>, D::Error> {
                    deserialize(d, self.0)
                }
            }
            // Never allocate by a length the input claims.
            let mut out = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(256));
            while let Some(item) = seq.next_element_seed(One(self.0))? {
                out.push(item);
            }
            Ok(out)
        }
    }

    pub(super) fn deserialize_list<'de, D: Deserializer<'de>>(d: D, rule: Rule) -> Result<Vec<Vec<u8>>, D::Error> {
        d.deserialize_seq(List(rule))
    }
}

/// `#[serde(with = "b64::strict")]`: written as [`encode`] writes it, read
/// with [`decode`].
pub mod strict {
    use serde::{Deserializer, Serializer};

    pub fn serialize<S: Serializer, T: AsRef<[u8]>>(bytes: &T, s: S) -> Result<S::Ok, S::Error> {
        super::with::serialize(bytes.as_ref(), s)
    }

    pub fn deserialize<'de, D: Deserializer<'de>, T: From<Vec<u8>>>(d: D) -> Result<T, D::Error> {
        super::with::deserialize(d, super::with::STRICT)
    }
}

/// `#[serde(with = "b64::strict_list")]`: a list of [`strict`] texts.
pub mod strict_list {
    use serde::{Deserializer, Serializer};

    pub fn serialize<S: Serializer, T: AsRef<[u8]>>(items: &[T], s: S) -> Result<S::Ok, S::Error> {
        super::with::serialize_list(items, s)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<Vec<u8>>, D::Error> {
        super::with::deserialize_list(d, super::with::STRICT)
    }
}

/// `#[serde(with = "b64::lenient")]`, for the DSSE JSON form only: written
/// as [`encode`] writes it, read with [`decode_lenient`].
pub mod lenient {
    use serde::{Deserializer, Serializer};

    pub fn serialize<S: Serializer, T: AsRef<[u8]>>(bytes: &T, s: S) -> Result<S::Ok, S::Error> {
        super::with::serialize(bytes.as_ref(), s)
    }

    pub fn deserialize<'de, D: Deserializer<'de>, T: From<Vec<u8>>>(d: D) -> Result<T, D::Error> {
        super::with::deserialize(d, super::with::LENIENT)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strict_on_read_except_for_dsse() {
        let bytes = [0xfbu8, 0xff, 0x01];
        assert_eq!(encode(bytes), "+/8B");
        assert_eq!(decode("+/8B").unwrap(), bytes);
        for other in ["-_8B", "+/8", "+/8B=", "+/8B\n"] {
            assert!(decode(other).is_err(), "{other:?}");
        }
        assert_eq!(decode_lenient("-_8B").unwrap(), bytes);
        assert_eq!(decode_lenient("AQ").unwrap(), [1]);
        assert!(decode("AQ").is_err());
        // Non-zero unused bits: "AR==" would decode to [1] if they were ignored.
        assert!(decode("AR==").is_err());
    }

    #[derive(Debug, PartialEq, serde::Serialize, serde::Deserialize)]
    struct Fields {
        #[serde(with = "strict")]
        strict: Vec<u8>,
        #[serde(with = "lenient")]
        lenient: Vec<u8>,
        #[serde(with = "strict_list")]
        list: Vec<Vec<u8>>,
    }

    #[test]
    fn serde_fields_write_one_spelling_and_read_by_their_rule() {
        let f = Fields { strict: vec![0xfb, 0xff, 0x01], lenient: vec![0xfb, 0xff, 0x01], list: vec![vec![1], vec![]] };
        let text = serde_json::to_string(&f).unwrap();
        assert_eq!(text, r#"{"strict":"+/8B","lenient":"+/8B","list":["AQ==",""]}"#);
        assert_eq!(serde_json::from_str::<Fields>(&text).unwrap(), f);
        let read = |strict: &str, lenient: &str, item: &str| {
            serde_json::from_str::<Fields>(&format!(
                r#"{{"strict":"{strict}","lenient":"{lenient}","list":["{item}"]}}"#
            ))
        };
        assert_eq!(read("+/8B", "-_8B", "AQ==").unwrap().lenient, f.lenient);
        assert_eq!(read("+/8B", "AQ", "AQ==").unwrap().lenient, [1]);
        for (strict, item) in [("-_8B", "AQ=="), ("+/8B", "AQ"), ("AR==", "AQ=="), ("+/8B", "AR==")] {
            let e = read(strict, "AQ", item).unwrap_err().to_string();
            assert!(e.starts_with("not base64 (standard alphabet, padded): "), "{e}");
        }
        assert!(read("+/8B", "+/8B!", "AQ==").unwrap_err().to_string().starts_with("not base64: "));
    }
}
