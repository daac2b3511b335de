//! OCI vocabulary shared by every layer: digests, repository names, tags, references and
//! manifest media types. No I/O and no dependency on any other Wharf module.

mod digest;
mod manifest;
mod name;

pub use digest::{Algorithm, Digest, DigestError, Sha256Hasher, StreamHasher};
pub use manifest::{Descriptor, ParsedManifest, media_types};
pub use name::{NameError, Reference, RepoName, Tag};
