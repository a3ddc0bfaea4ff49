//! The RFC 9162 Merkle tree over entry hashes: tree heads, inclusion proofs
//! and consistency proofs, generated and verified.
//!
//! Pure functions over hashes. Leaf hash = SHA-256(0x00 ‖ leaf), node hash =
//! SHA-256(0x01 ‖ left ‖ right): the RFC's own domain separation. The leaves
//! are entry hashes. Verification follows RFC 9162 sections 2.1.3.2 and
//! 2.1.4.2 step by step, and rejects malformed input (wrong lengths, indexes
//! out of range) before hashing anything.

use sha2::{Digest as _, Sha256};

pub type Hash = [u8; 32];

/// Most hashes a proof may hold: enough for 2^64 leaves, twice over.
pub const MAX_PROOF_LEN: usize = 128;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TreeError {
    #[error("leaf index {index} is not below tree size {size}")]
    IndexOutOfRange { index: u64, size: u64 },
    #[error("tree size {size1} is larger than tree size {size2}")]
    SizesReversed { size1: u64, size2: u64 },
    #[error("a {what} must be 32 bytes, got {len}")]
    BadLength { what: &'static str, len: usize },
    #[error("proof has {got} hashes, expected {want}")]
    WrongProofLength { got: usize, want: usize },
    #[error("proof of more than {MAX_PROOF_LEN} hashes")]
    ProofTooLong,
    #[error("the proof does not lead to the expected root")]
    RootMismatch,
    #[error("the roots of equal-size trees differ")]
    RootsDiffer,
    #[error("a consistency proof from the empty tree proves nothing")]
    FromEmptyTree,
}

/// SHA-256(0x00 ‖ data).
pub fn leaf_hash(data: &[u8]) -> Hash {
    let mut h = Sha256::new();
    h.update([0u8]);
    h.update(data);
    h.finalize().into()
}

/// SHA-256(0x01 ‖ left ‖ right).
pub fn node_hash(left: &Hash, right: &Hash) -> Hash {
    let mut h = Sha256::new();
    h.update([1u8]);
    h.update(left);
    h.update(right);
    h.finalize().into()
}

/// SHA-256 of nothing: the root of the empty tree.
pub fn empty_root() -> Hash {
    Sha256::digest([]).into()
}

/// The largest power of two smaller than `n` (n >= 2).
fn split(n: usize) -> usize {
    debug_assert!(n >= 2);
    1 << (usize::BITS - 1 - (n - 1).leading_zeros())
}

/// MTH(D[n]) over leaf hashes.
pub fn root(leaves: &[Hash]) -> Hash {
    match leaves.len() {
        0 => empty_root(),
        1 => leaves[0],
        n => {
            let k = split(n);
            node_hash(&root(&leaves[..k]), &root(&leaves[k..]))
        }
    }
}

/// PATH(m, D[n]): the inclusion proof of leaf `index`.
pub fn inclusion_proof(leaves: &[Hash], index: usize) -> Result<Vec<Hash>, TreeError> {
    if index >= leaves.len() {
        return Err(TreeError::IndexOutOfRange { index: index as u64, size: leaves.len() as u64 });
    }
    fn path(m: usize, d: &[Hash], out: &mut Vec<Hash>) {
        if d.len() <= 1 {
            return;
        }
        let k = split(d.len());
        if m < k {
            path(m, &d[..k], out);
            out.push(root(&d[k..]));
        } else {
            path(m - k, &d[k..], out);
            out.push(root(&d[..k]));
        }
    }
    let mut out = Vec::new();
    path(index, leaves, &mut out);
    Ok(out)
}

/// PROOF(m, D[n]): the consistency proof from the first `size1` leaves to all.
pub fn consistency_proof(leaves: &[Hash], size1: usize) -> Result<Vec<Hash>, TreeError> {
    if size1 > leaves.len() {
        return Err(TreeError::SizesReversed { size1: size1 as u64, size2: leaves.len() as u64 });
    }
    fn subproof(m: usize, d: &[Hash], complete: bool, out: &mut Vec<Hash>) {
        let n = d.len();
        if m == n {
            if !complete {
                out.push(root(d));
            }
            return;
        }
        let k = split(n);
        if m <= k {
            subproof(m, &d[..k], complete, out);
            out.push(root(&d[k..]));
        } else {
            subproof(m - k, &d[k..], false, out);
            out.push(root(&d[..k]));
        }
    }
    // Empty for size1 == 0 (nothing to prove) and size1 == n (same tree).
    let mut out = Vec::new();
    if size1 > 0 && size1 < leaves.len() {
        subproof(size1, leaves, true, &mut out);
    }
    Ok(out)
}

fn hash32(bytes: &[u8], what: &'static str) -> Result<Hash, TreeError> {
    bytes.try_into().map_err(|_| TreeError::BadLength { what, len: bytes.len() })
}

fn proof_hashes<T: AsRef<[u8]>>(proof: &[T]) -> Result<Vec<Hash>, TreeError> {
    if proof.len() > MAX_PROOF_LEN {
        return Err(TreeError::ProofTooLong);
    }
    proof.iter().map(|p| hash32(p.as_ref(), "proof hash")).collect()
}

/// RFC 9162 2.1.3.2: verifies that `leaf` (a leaf hash) is at `index` in the
/// tree of `size` leaves with root `root`.
pub fn verify_inclusion<T: AsRef<[u8]>>(
    index: u64,
    size: u64,
    leaf: &[u8],
    proof: &[T],
    root: &[u8],
) -> Result<(), TreeError> {
    if index >= size {
        return Err(TreeError::IndexOutOfRange { index, size });
    }
    let leaf = hash32(leaf, "leaf hash")?;
    let root = hash32(root, "root")?;
    let proof = proof_hashes(proof)?;
    let (mut f, mut s) = (index, size - 1);
    let mut r = leaf;
    for p in &proof {
        if s == 0 {
            return Err(TreeError::WrongProofLength { got: proof.len(), want: proof.len() - 1 });
        }
        if f & 1 == 1 || f == s {
            r = node_hash(p, &r);
            while f & 1 == 0 && f != 0 {
                f >>= 1;
                s >>= 1;
            }
        } else {
            r = node_hash(&r, p);
        }
        f >>= 1;
        s >>= 1;
    }
    if s != 0 {
        return Err(TreeError::WrongProofLength { got: proof.len(), want: proof.len() + 1 });
    }
    if r != root {
        return Err(TreeError::RootMismatch);
    }
    Ok(())
}

/// RFC 9162 2.1.4.2: verifies that the tree of `size1` leaves with root
/// `root1` is a prefix of the tree of `size2` leaves with root `root2`.
pub fn verify_consistency<T: AsRef<[u8]>>(
    size1: u64,
    size2: u64,
    proof: &[T],
    root1: &[u8],
    root2: &[u8],
) -> Result<(), TreeError> {
    if size1 > size2 {
        return Err(TreeError::SizesReversed { size1, size2 });
    }
    if size1 == 0 {
        // Every tree extends the empty one, so such a "proof" shows nothing;
        // accepting one would let a caller believe it checked something.
        return Err(TreeError::FromEmptyTree);
    }
    if size1 == size2 {
        if !proof.is_empty() {
            return Err(TreeError::WrongProofLength { got: proof.len(), want: 0 });
        }
        // Consistent exactly when the roots are the same bytes.
        return if root1 == root2 { Ok(()) } else { Err(TreeError::RootsDiffer) };
    }
    let root1 = hash32(root1, "root")?;
    let root2 = hash32(root2, "root")?;
    let proof = proof_hashes(proof)?;
    if proof.is_empty() {
        return Err(TreeError::WrongProofLength { got: 0, want: 1 });
    }
    let mut path = proof;
    if size1.is_power_of_two() {
        path.insert(0, root1);
    }
    let (mut f, mut s) = (size1 - 1, size2 - 1);
    while f & 1 == 1 {
        f >>= 1;
        s >>= 1;
    }
    let (mut fr, mut sr) = (path[0], path[0]);
    for c in &path[1..] {
        if s == 0 {
            return Err(TreeError::RootMismatch);
        }
        if f & 1 == 1 || f == s {
            fr = node_hash(c, &fr);
            sr = node_hash(c, &sr);
            while f & 1 == 0 && f != 0 {
                f >>= 1;
                s >>= 1;
            }
        } else {
            sr = node_hash(&sr, c);
        }
        f >>= 1;
        s >>= 1;
    }
    if s != 0 || fr != root1 || sr != root2 {
        return Err(TreeError::RootMismatch);
    }
    Ok(())
}
