//! The client of a ledger server (API v1, [`crate::api`]).
//!
//! Statements are signed by the caller before they are submitted; no secret
//! key ever crosses the wire. An acknowledgement is accepted only once
//! [`verify_ack`] has shown that the entry holds exactly the statement
//! submitted and that a checkpoint signed by the log key includes it.

use std::time::Duration;

use thiserror::Error;

use crate::api::{self, Ack, DecisionReply, DecisionRequest, Info, Proof, Refusal};
use crate::bundle;
use crate::core::dsse::Envelope;
use crate::core::entry::UnverifiedEntry;
use crate::core::note::{MAX_NOTE_SIZE, NoteVerifier};
use crate::ledger::{SignedCheckpoint, leaf_of};
use crate::tree::{self, Hash};

/// Largest JSON answer read.
const MAX_JSON: u64 = 1 << 20;
/// Largest range of entries read (the server sends at most [`api::MAX_RANGE`]).
const MAX_ENTRIES_BODY: u64 = 256 << 20;

#[derive(Debug, Error)]
pub enum RemoteError {
    #[error("ledger server {url} is unreachable: {reason}")]
    Unreachable { url: String, reason: String },
    #[error("ledger server {url} refused the request ({status} {}): {}", refusal.error, refusal.reason)]
    Refused { url: String, status: u16, refusal: Refusal },
    #[error("ledger server {url}: {reason}")]
    Protocol { url: String, reason: String },
    /// The server's answer does not verify: it is wrong, or not the ledger's.
    #[error("ledger server {url}: the answer does not verify: {reason}")]
    Forged { url: String, reason: String },
}

/// A ledger server.
#[derive(Clone)]
pub struct Client {
    base: String,
    agent: ureq::Agent,
}

impl Client {
    /// A client of the server at `url` (`http://HOST:PORT` or `https://…`).
    pub fn new(url: &str, timeout: Duration) -> Result<Client, RemoteError> {
        let base = url.trim_end_matches('/').to_string();
        if !(base.starts_with("http://") || base.starts_with("https://")) {
            return Err(RemoteError::Protocol {
                url: url.into(),
                reason: "a server URL starts with http:// or https://".into(),
            });
        }
        let tls =
            ureq::tls::TlsConfig::builder().unversioned_rustls_crypto_provider(crate::net::tls_provider()).build();
        let agent = ureq::Agent::config_builder()
            .timeout_global(Some(timeout))
            .http_status_as_error(false)
            .tls_config(tls)
            .build()
            .new_agent();
        Ok(Client { base, agent })
    }

    pub fn url(&self) -> &str {
        &self.base
    }

    fn path(&self, path: &str) -> String {
        format!("{}{}{path}", self.base, api::PREFIX)
    }

    fn unreachable(&self, e: ureq::Error) -> RemoteError {
        RemoteError::Unreachable { url: self.base.clone(), reason: e.to_string() }
    }

    fn protocol(&self, reason: impl Into<String>) -> RemoteError {
        RemoteError::Protocol { url: self.base.clone(), reason: reason.into() }
    }

    /// Reads a response: the body on success, the server's refusal otherwise.
    fn read(
        &self,
        response: Result<ureq::http::Response<ureq::Body>, ureq::Error>,
        limit: u64,
    ) -> Result<Vec<u8>, RemoteError> {
        let mut response = response.map_err(|e| self.unreachable(e))?;
        let status = response.status().as_u16();
        let body = response.body_mut().with_config().limit(limit).read_to_vec().map_err(|e| self.unreachable(e))?;
        if (200..300).contains(&status) {
            return Ok(body);
        }
        let refusal = serde_json::from_slice::<Refusal>(&body).unwrap_or_else(|_| Refusal {
            error: "http".into(),
            reason: String::from_utf8_lossy(&body[..body.len().min(200)]).into_owned(),
            index: None,
        });
        Err(RemoteError::Refused { url: self.base.clone(), status, refusal })
    }

    fn json<T: serde::de::DeserializeOwned>(&self, bytes: &[u8]) -> Result<T, RemoteError> {
        serde_json::from_slice(bytes).map_err(|e| self.protocol(format!("unexpected answer: {e}")))
    }

    fn get(&self, path: &str, limit: u64) -> Result<Vec<u8>, RemoteError> {
        self.read(self.agent.get(&self.path(path)).call(), limit)
    }

    pub fn info(&self) -> Result<Info, RemoteError> {
        let body = self.get("/info", MAX_JSON)?;
        self.json(&body)
    }

    /// The latest signed checkpoint note, not yet verified.
    pub fn checkpoint(&self) -> Result<String, RemoteError> {
        let body = self.get("/checkpoint", MAX_NOTE_SIZE as u64)?;
        String::from_utf8(body).map_err(|_| self.protocol("the checkpoint is not UTF-8"))
    }

    /// Entries `start..end` (the server may return fewer; never more).
    pub fn entries(&self, start: u64, end: u64) -> Result<Vec<Vec<u8>>, RemoteError> {
        let body = self.get(&format!("/entries?start={start}&end={end}"), MAX_ENTRIES_BODY)?;
        let want = end.saturating_sub(start).min(api::MAX_RANGE) as usize;
        bundle::decode_frames(&body, want).map_err(|e| self.protocol(format!("entries {start}..{end}: {e}")))
    }

    pub fn consistency(&self, from: u64, to: u64) -> Result<Vec<Hash>, RemoteError> {
        let body = self.get(&format!("/proof/consistency?from={from}&to={to}"), MAX_JSON)?;
        self.hashes(self.json::<Proof>(&body)?)
    }

    pub fn inclusion(&self, index: u64, size: u64) -> Result<Vec<Hash>, RemoteError> {
        let body = self.get(&format!("/proof/inclusion?index={index}&size={size}"), MAX_JSON)?;
        self.hashes(self.json::<Proof>(&body)?)
    }

    fn hashes(&self, proof: Proof) -> Result<Vec<Hash>, RemoteError> {
        if proof.hashes.len() > tree::MAX_PROOF_LEN {
            return Err(self.protocol("proof too long"));
        }
        proof
            .hashes
            .into_iter()
            .map(|h| h.try_into().map_err(|_| self.protocol("proof hash is not 32 bytes")))
            .collect()
    }

    pub fn subjects(&self, digest: &str) -> Result<api::Subjects, RemoteError> {
        let body = self.get(&format!("/subjects/{digest}"), MAX_JSON)?;
        self.json(&body)
    }

    /// The gate's decision at the server's head (nothing is appended).
    pub fn decide(&self, request: &DecisionRequest) -> Result<DecisionReply, RemoteError> {
        let body = serde_json::to_vec(request).expect("json");
        let r = self.agent.post(&self.path("/decision")).header("Content-Type", "application/json").send(&body[..]);
        let body = self.read(r, MAX_JSON)?;
        self.json(&body)
    }

    /// Submits a signed statement; the answer is unverified (see [`verify_ack`]).
    pub fn submit(&self, envelope: &Envelope) -> Result<Ack, RemoteError> {
        let body = serde_json::to_vec(&envelope.to_json_value()).expect("json");
        let r = self.agent.post(&self.path("/entries")).header("Content-Type", "application/json").send(&body[..]);
        let body = self.read(r, MAX_JSON + (4 << 20))?;
        self.json(&body)
    }

    /// Submits and verifies the acknowledgement against `log`, the log key of
    /// the policy in force. A statement already in the ledger (a retry whose
    /// first answer was lost) is found and proven the same way.
    pub fn append(&self, envelope: &Envelope, log: &NoteVerifier) -> Result<Appended, RemoteError> {
        match self.submit(envelope) {
            Ok(ack) => verify_ack(&self.base, &ack, envelope, log),
            Err(RemoteError::Refused { status: 409, refusal: Refusal { index: Some(index), .. }, .. }) => {
                self.prove_present(index, envelope, log)
            }
            Err(e) => Err(e),
        }
    }

    /// Submits statements to be appended all or none, and verifies each
    /// acknowledgement against `log`.
    pub fn append_batch(&self, envelopes: &[Envelope], log: &NoteVerifier) -> Result<Vec<Appended>, RemoteError> {
        let list: Vec<serde_json::Value> = envelopes.iter().map(|e| e.to_json_value()).collect();
        let body = serde_json::to_vec(&list).expect("json");
        let r =
            self.agent.post(&self.path("/entries/batch")).header("Content-Type", "application/json").send(&body[..]);
        let acks: Vec<Ack> = self.json(&self.read(r, MAX_JSON * 64)?)?;
        if acks.len() != envelopes.len() {
            return Err(RemoteError::Forged {
                url: self.base.clone(),
                reason: format!("{} statements submitted, {} acknowledged", envelopes.len(), acks.len()),
            });
        }
        acks.iter().zip(envelopes).map(|(a, e)| verify_ack(&self.base, a, e, log)).collect()
    }

    /// Fetches entry `index` with its inclusion proof in the latest checkpoint.
    pub fn prove_present(&self, index: u64, envelope: &Envelope, log: &NoteVerifier) -> Result<Appended, RemoteError> {
        let note = self.checkpoint()?;
        let size = SignedCheckpoint::open(&note, log)
            .map_err(|e| RemoteError::Forged { url: self.base.clone(), reason: format!("checkpoint: {e}") })?
            .checkpoint
            .size;
        let bytes = self.entries(index, index + 1)?.pop().ok_or_else(|| self.protocol(format!("no entry {index}")))?;
        let proof = self.inclusion(index, size)?;
        let entry = UnverifiedEntry::decode(&bytes).map_err(|e| self.protocol(format!("entry {index}: {e}")))?;
        let ack = Ack {
            index,
            hash: entry.hash().to_string(),
            entry: bytes,
            checkpoint: note,
            inclusion: proof.iter().map(|h| h.to_vec()).collect(),
        };
        verify_ack(&self.base, &ack, envelope, log)
    }
}

/// An entry a server acknowledged, with the signed checkpoint that includes
/// it, once [`verify_ack`] has checked both.
#[derive(Clone, Debug)]
pub struct Appended {
    pub entry: UnverifiedEntry,
    pub checkpoint: SignedCheckpoint,
}

/// Checks an acknowledgement: the entry decodes, carries exactly `envelope`,
/// has the index and hash stated, and the checkpoint, signed by `log`,
/// includes it by the RFC 9162 inclusion proof given.
pub fn verify_ack(url: &str, ack: &Ack, envelope: &Envelope, log: &NoteVerifier) -> Result<Appended, RemoteError> {
    let forged = |reason: String| RemoteError::Forged { url: url.into(), reason };
    let entry = UnverifiedEntry::decode(&ack.entry).map_err(|e| forged(format!("entry: {e}")))?;
    if entry.index != ack.index || entry.hash().to_string() != ack.hash {
        return Err(forged(format!(
            "the entry is {} ({}), the acknowledgement says {} ({})",
            entry.index,
            entry.hash(),
            ack.index,
            ack.hash
        )));
    }
    if entry.envelope != *envelope {
        return Err(forged(format!("entry {} does not hold the statement submitted", entry.index)));
    }
    let checkpoint = SignedCheckpoint::open(&ack.checkpoint, log).map_err(|e| forged(format!("checkpoint: {e}")))?;
    let cp = &checkpoint.checkpoint;
    tree::verify_inclusion(entry.index, cp.size, &leaf_of(&entry.hash()), &ack.inclusion, &cp.root)
        .map_err(|e| forged(format!("entry {} is not in the checkpoint of size {}: {e}", entry.index, cp.size)))?;
    Ok(Appended { entry, checkpoint })
}
