//! Base64, the one place it is spelled (SPEC section 1): the standard
//! alphabet with padding wherever the format writes it, and strictly that on
//! read; the DSSE JSON form alone, which other tools write, is read in
//! either alphabet, padded or not.

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
}
