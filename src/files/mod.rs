//! Files on the local machine: bounded reads, link-safe atomic writes, and
//! key files. The lowest layer of the package: it imports nothing of it.

pub mod fsutil;
pub mod keyfile;
