//! The reports of `key generate`, `key id` and `init`.

use super::*;

/// `key generate`.
#[derive(Debug, Serialize, JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct KeyGenerated {
    /// The secret key file (mode 0600).
    pub secret: PathBuf,
    pub public: PathBuf,
    pub key_id: String,
}

impl Report for KeyGenerated {
    fn human(&self) {
        println!("wrote secret key {} (mode 0600) and public key {}", self.secret.display(), self.public.display());
        println!("key id {}", self.key_id);
    }
}

/// `key id`.
#[derive(Debug, Serialize, JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct KeyIdReport {
    pub key_id: String,
    /// The public key, as in a `.pub` file.
    pub public: String,
}

impl Report for KeyIdReport {
    fn human(&self) {
        println!("{}", self.key_id);
    }
}

/// `init`.
#[derive(Debug, Serialize, JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct Initialised {
    /// The genesis entry's hash: what mirrors and auditors pin.
    #[schemars(pattern(HASH))]
    pub genesis: String,
    pub ledger: PathBuf,
    pub log_verifier_key: String,
}

impl Report for Initialised {
    fn human(&self) {
        // Standard output carries the genesis hash alone, for scripts.
        println!("{}", self.genesis);
        eprintln!("checkpoints are signed by log key {}", self.log_verifier_key);
    }
}
