//! Content digests of images: `sha256:` followed by exactly 64 lowercase hex
//! characters. Nothing else is a digest: no uppercase, no other algorithm, no
//! missing prefix.

use std::fmt;
use std::str::FromStr;

use super::FormatError;

/// The only algorithm the ledger accepts for image digests.
pub const DIGEST_ALGORITHM: &str = "sha256";

/// A validated `sha256:<64 lowercase hex>` digest.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Digest([u8; 32]);

impl Digest {
    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        Digest(bytes)
    }

    /// The digest of `content`, as a registry computes it.
    pub fn of(content: &[u8]) -> Self {
        Digest(super::hash::sha256(content))
    }

    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// The 64 hex characters without the algorithm prefix (in-toto subjects
    /// carry them as `{"sha256": "<hex>"}`).
    pub fn hex(&self) -> String {
        hex::encode(self.0)
    }

    /// Parses the hex part alone (as found in an in-toto digest set).
    pub fn from_hex(hex_part: &str) -> Result<Self, FormatError> {
        if hex_part.len() != 64 {
            return Err(FormatError::Digest(format!(
                "expected 64 hex characters after sha256:, got {}",
                hex_part.len()
            )));
        }
        if let Some(bad) = hex_part.chars().find(|c| !matches!(c, '0'..='9' | 'a'..='f')) {
            let why = if bad.is_ascii_hexdigit() {
                "uppercase hex is not accepted; digests are lowercase"
            } else {
                "not a hex character"
            };
            return Err(FormatError::Digest(format!("{bad:?} in digest: {why}")));
        }
        let mut out = [0u8; 32];
        hex::decode_to_slice(hex_part, &mut out).map_err(|e| FormatError::Digest(e.to_string()))?;
        Ok(Digest(out))
    }
}

impl FromStr for Digest {
    type Err = FormatError;

    fn from_str(s: &str) -> Result<Self, FormatError> {
        let Some((alg, rest)) = s.split_once(':') else {
            return Err(FormatError::Digest(format!("{s:?} has no algorithm; expected sha256:<64 lowercase hex>")));
        };
        if alg != DIGEST_ALGORITHM {
            return Err(FormatError::Digest(format!(
                "algorithm {alg:?} is not supported; only sha256 digests are accepted"
            )));
        }
        Digest::from_hex(rest)
    }
}

impl fmt::Display for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{DIGEST_ALGORITHM}:{}", hex::encode(self.0))
    }
}

impl fmt::Debug for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Digest({self})")
    }
}

impl serde::Serialize for Digest {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for Digest {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

    #[test]
    fn accepts_canonical_form() {
        let d: Digest = GOOD.parse().unwrap();
        assert_eq!(d.to_string(), GOOD);
    }

    #[test]
    fn rejects_everything_else() {
        for bad in [
            "",
            "sha256:",
            &GOOD.to_uppercase(),
            &GOOD.replace("sha256:", "SHA256:"),
            &format!("sha256:{}", GOOD["sha256:".len()..].replace('a', "A")),
            &GOOD[..GOOD.len() - 1],
            &format!("{GOOD}0"),
            &GOOD.replace('f', "g"),
            &GOOD.replace("sha256", "sha512"),
            &GOOD["sha256:".len()..],
            " sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
        ] {
            assert!(bad.parse::<Digest>().is_err(), "{bad:?} was accepted");
        }
    }

    #[test]
    fn uppercase_error_says_why() {
        let upper = format!("sha256:{}", GOOD["sha256:".len()..].to_uppercase());
        let err = upper.parse::<Digest>().unwrap_err().to_string();
        assert!(err.contains("lowercase"), "{err}");
    }
}
