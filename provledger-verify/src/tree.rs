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
fn split(n: u64) -> u64 {
    debug_assert!(n >= 2);
    1 << (u64::BITS - 1 - (n - 1).leading_zeros())
}

/// MTH(D[n]) over leaf hashes, by the RFC's recursion: the reference the
/// stored tree is checked against.
pub fn root(leaves: &[Hash]) -> Hash {
    match leaves.len() {
        0 => empty_root(),
        1 => leaves[0],
        n => {
            let k = split(n as u64) as usize;
            node_hash(&root(&leaves[..k]), &root(&leaves[k..]))
        }
    }
}

/// Where proofs read subtree hashes from.
///
/// `node(level, index)` is the root of the perfect subtree of `2^level`
/// leaves that starts at leaf `index << level`. Every range the RFC 9162
/// recursions visit starts at a multiple of its size rounded up to a power of
/// two, so it splits into at most 64 such subtrees: a proof of a tree of `n`
/// leaves reads O(log n) nodes.
pub trait Nodes {
    type Error: From<TreeError>;
    fn node(&self, level: u32, index: u64) -> Result<Hash, Self::Error>;
}

/// Leaf hashes held in memory; a node costs a hash of its whole subtree.
pub struct Leaves<'a>(pub &'a [Hash]);

impl Nodes for Leaves<'_> {
    type Error = TreeError;
    fn node(&self, level: u32, index: u64) -> Result<Hash, TreeError> {
        let start = index.checked_shl(level).unwrap_or(u64::MAX) as usize;
        let end = start.saturating_add(1 << level);
        let size = self.0.len() as u64;
        if end > self.0.len() {
            return Err(TreeError::IndexOutOfRange { index: end as u64 - 1, size });
        }
        Ok(root(&self.0[start..end]))
    }
}

/// MTH(D[start : start + len]) from stored perfect subtrees.
pub fn range_root<N: Nodes>(nodes: &N, start: u64, len: u64) -> Result<Hash, N::Error> {
    match len {
        0 => Ok(empty_root()),
        _ if len.is_power_of_two() => {
            let level = len.trailing_zeros();
            debug_assert_eq!(start % len, 0, "RFC 9162 ranges are aligned");
            nodes.node(level, start >> level)
        }
        _ => {
            let k = split(len);
            Ok(node_hash(&range_root(nodes, start, k)?, &range_root(nodes, start + k, len - k)?))
        }
    }
}

/// The root of the first `size` leaves.
pub fn root_at<N: Nodes>(nodes: &N, size: u64) -> Result<Hash, N::Error> {
    range_root(nodes, 0, size)
}

/// PATH(index, D[size]): the inclusion proof of leaf `index` in the tree of
/// the first `size` leaves.
pub fn inclusion_proof_at<N: Nodes>(nodes: &N, index: u64, size: u64) -> Result<Vec<Hash>, N::Error> {
    if index >= size {
        return Err(TreeError::IndexOutOfRange { index, size }.into());
    }
    // Walk down from the whole tree, then emit siblings bottom-up.
    let mut siblings = Vec::new();
    let (mut start, mut len, mut m) = (0u64, size, index);
    while len > 1 {
        let k = split(len);
        if m < k {
            siblings.push((start + k, len - k));
            len = k;
        } else {
            siblings.push((start, k));
            start += k;
            len -= k;
            m -= k;
        }
    }
    siblings.iter().rev().map(|&(s, l)| range_root(nodes, s, l)).collect()
}

/// PROOF(size1, D[size2]): the consistency proof from the tree of the first
/// `size1` leaves to the tree of the first `size2`.
pub fn consistency_proof_at<N: Nodes>(nodes: &N, size1: u64, size2: u64) -> Result<Vec<Hash>, N::Error> {
    if size1 > size2 {
        return Err(TreeError::SizesReversed { size1, size2 }.into());
    }
    // Empty for size1 == 0 (nothing to prove) and size1 == size2 (same tree).
    if size1 == 0 || size1 == size2 {
        return Ok(Vec::new());
    }
    // SUBPROOF(m, D[start : start + len], complete), unrolled.
    let mut parts = Vec::new();
    let (mut start, mut len, mut m, mut complete) = (0u64, size2, size1, true);
    loop {
        if m == len {
            if !complete {
                parts.push((start, len));
            }
            break;
        }
        let k = split(len);
        if m <= k {
            parts.push((start + k, len - k));
            len = k;
        } else {
            parts.push((start, k));
            start += k;
            len -= k;
            m -= k;
            complete = false;
        }
    }
    // The recursion emits the innermost part first.
    parts.iter().rev().map(|&(s, l)| range_root(nodes, s, l)).collect()
}

/// PATH(index, D[n]) over leaf hashes in memory.
pub fn inclusion_proof(leaves: &[Hash], index: usize) -> Result<Vec<Hash>, TreeError> {
    inclusion_proof_at(&Leaves(leaves), index as u64, leaves.len() as u64)
}

/// PROOF(size1, D[n]) over leaf hashes in memory.
pub fn consistency_proof(leaves: &[Hash], size1: usize) -> Result<Vec<Hash>, TreeError> {
    consistency_proof_at(&Leaves(leaves), size1 as u64, leaves.len() as u64)
}

/// The right edge of a tree: the perfect subtrees its size decomposes into,
/// largest first. Enough to append leaves and compute the root, in O(log n)
/// memory; each push reports the perfect subtrees it completes, which is
/// what a store persists so that proofs never rebuild the tree.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Frontier {
    size: u64,
    edge: Vec<Hash>,
}

impl Frontier {
    /// The frontier of the first `size` leaves, read from stored nodes.
    pub fn load<N: Nodes>(nodes: &N, size: u64) -> Result<Frontier, N::Error> {
        let mut edge = Vec::with_capacity(size.count_ones() as usize);
        let mut start = 0u64;
        for level in (0..u64::BITS).rev() {
            if size & (1 << level) != 0 {
                edge.push(nodes.node(level, start >> level)?);
                start += 1 << level;
            }
        }
        Ok(Frontier { size, edge })
    }

    pub fn size(&self) -> u64 {
        self.size
    }

    /// Appends a leaf hash; `completed(level, index, hash)` sees the leaf
    /// node and every perfect subtree it completes, bottom-up.
    pub fn push(&mut self, leaf: Hash, mut completed: impl FnMut(u32, u64, &Hash)) {
        let (mut level, mut index, mut cur) = (0u32, self.size, leaf);
        completed(level, index, &cur);
        while index & 1 == 1 {
            let left = self.edge.pop().expect("a set bit of the size has a subtree on the edge");
            cur = node_hash(&left, &cur);
            level += 1;
            index >>= 1;
            completed(level, index, &cur);
        }
        self.edge.push(cur);
        self.size += 1;
    }

    /// MTH of the leaves pushed so far.
    pub fn root(&self) -> Hash {
        let mut it = self.edge.iter().rev();
        let Some(last) = it.next() else { return empty_root() };
        it.fold(*last, |acc, left| node_hash(left, &acc))
    }
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
