//! Turns a `/v2/…` path into an [`Endpoint`]. Repository names contain slashes, so the path
//! is read from its end: the last segments say which endpoint, the rest is the name. Names
//! are validated here, before anything touches storage.

use crate::error::{ErrorCode, OciError};
use crate::oci::RepoName;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Endpoint {
    /// `/v2/`
    Base,
    /// `/v2/_catalog`
    Catalog,
    /// `/v2/<name>/tags/list`
    Tags(RepoName),
    /// `/v2/<name>/manifests/<reference>`
    Manifest(RepoName, String),
    /// `/v2/<name>/blobs/<digest>`
    Blob(RepoName, String),
    /// `/v2/<name>/blobs/uploads/`
    Uploads(RepoName),
    /// `/v2/<name>/blobs/uploads/<id>`
    Upload(RepoName, String),
    /// `/v2/<name>/referrers/<digest>`
    Referrers(RepoName, String),
}

impl Endpoint {
    pub fn parse(path: &str) -> Result<Endpoint, OciError> {
        let rest = match path {
            "/v2" => "",
            _ => path.strip_prefix("/v2/").ok_or_else(|| not_found(path))?,
        };
        match rest {
            "" => return Ok(Endpoint::Base),
            "_catalog" => return Ok(Endpoint::Catalog),
            _ => {}
        }
        let segments: Vec<&str> = rest.split('/').collect();
        let name = |keep: usize| -> Result<RepoName, OciError> {
            Ok(segments[..segments.len() - keep].join("/").parse()?)
        };
        let tail = |n: usize| segments[segments.len().saturating_sub(n)..].to_vec();
        let last = segments.last().copied().unwrap_or_default().to_string();
        if segments.len() >= 3 {
            match tail(3).as_slice() {
                ["blobs", "uploads", ""] => return Ok(Endpoint::Uploads(name(3)?)),
                ["blobs", "uploads", _] => return Ok(Endpoint::Upload(name(3)?, last)),
                _ => {}
            }
        }
        if segments.len() >= 2 {
            match tail(2).as_slice() {
                ["tags", "list"] => return Ok(Endpoint::Tags(name(2)?)),
                ["blobs", "uploads"] => return Ok(Endpoint::Uploads(name(2)?)),
                ["manifests", _] => return Ok(Endpoint::Manifest(name(2)?, last)),
                ["blobs", _] => return Ok(Endpoint::Blob(name(2)?, last)),
                ["referrers", _] => return Ok(Endpoint::Referrers(name(2)?, last)),
                _ => {}
            }
        }
        Err(not_found(path))
    }
}

fn not_found(path: &str) -> OciError {
    OciError::new(
        ErrorCode::NotFound,
        format!("no registry endpoint at {path}"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn name(s: &str) -> RepoName {
        s.parse().unwrap()
    }

    #[test]
    fn parses_every_endpoint_at_any_depth() {
        let deep = "a/b/c/d/e/f/g/h";
        assert_eq!(Endpoint::parse("/v2/").unwrap(), Endpoint::Base);
        assert_eq!(Endpoint::parse("/v2/_catalog").unwrap(), Endpoint::Catalog);
        assert_eq!(
            Endpoint::parse(&format!("/v2/{deep}/tags/list")).unwrap(),
            Endpoint::Tags(name(deep))
        );
        assert_eq!(
            Endpoint::parse("/v2/x/manifests/latest").unwrap(),
            Endpoint::Manifest(name("x"), "latest".into())
        );
        assert_eq!(
            Endpoint::parse("/v2/x/blobs/uploads/").unwrap(),
            Endpoint::Uploads(name("x"))
        );
        assert_eq!(
            Endpoint::parse("/v2/x/y/blobs/uploads/abc").unwrap(),
            Endpoint::Upload(name("x/y"), "abc".into())
        );
        assert_eq!(
            Endpoint::parse("/v2/blobs/blobs/sha256:1").unwrap(),
            Endpoint::Blob(name("blobs"), "sha256:1".into())
        );
        assert_eq!(
            Endpoint::parse("/v2/x/referrers/sha256:1").unwrap(),
            Endpoint::Referrers(name("x"), "sha256:1".into())
        );
    }

    #[test]
    fn bad_names_and_unknown_paths_are_refused() {
        let invalid = Endpoint::parse("/v2/Upper/tags/list").unwrap_err();
        assert_eq!(invalid.code(), ErrorCode::NameInvalid);
        let traversal = Endpoint::parse("/v2/a/../b/manifests/x").unwrap_err();
        assert_eq!(traversal.code(), ErrorCode::NameInvalid);
        let encoded = Endpoint::parse("/v2/a%2Fb/manifests/x").unwrap_err();
        assert_eq!(encoded.code(), ErrorCode::NameInvalid);
        assert_eq!(Endpoint::parse("/v2").unwrap(), Endpoint::Base);
        for elsewhere in ["/v2/x", "/v3/x", "/foo/v2", "/foo/v2/", "/v2x", "/"] {
            let error = Endpoint::parse(elsewhere).unwrap_err();
            assert_eq!(error.status().as_u16(), 404, "{elsewhere}");
            assert_eq!(error.code(), ErrorCode::NotFound, "{elsewhere}");
        }
    }
}
