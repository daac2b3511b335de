//! Manifest and index parsing: just enough structure to validate references and index them
//! (blobs, child manifests, subject, artifact type). The raw bytes are what gets stored.

use std::collections::BTreeMap;
use std::fmt;
use std::marker::PhantomData;
use std::ops::Deref;

use serde::de::{self, MapAccess, value::MapAccessDeserializer};
use serde::{Deserialize, Deserializer, Serialize};

use super::digest::Digest;

pub mod media_types {
    pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
    pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
    pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
    pub const DOCKER_MANIFEST_LIST: &str =
        "application/vnd.docker.distribution.manifest.list.v2+json";
    pub const OCI_EMPTY: &str = "application/vnd.oci.empty.v1+json";
}

/// A content descriptor as it appears in manifests, indexes and referrers responses.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Descriptor {
    pub media_type: String,
    pub digest: String,
    pub size: u64,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub urls: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub artifact_type: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub annotations: Option<BTreeMap<String, String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub platform: Option<serde_json::Value>,
}

/// The fields of an image manifest or index that Wharf reads. Unknown fields are ignored,
/// as the image spec requires.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawManifest {
    schema_version: Option<u32>,
    media_type: Option<String>,
    artifact_type: Option<String>,
    config: Option<Object<Descriptor>>,
    layers: Option<Vec<Object<Descriptor>>>,
    manifests: Option<Vec<Object<Descriptor>>>,
    subject: Option<Object<Descriptor>>,
    annotations: Option<BTreeMap<String, String>>,
}

/// A `T` read from a JSON object only. serde's derived `Deserialize` also takes a struct from
/// an array of its members in order (`["application/…", "sha256:…", 2]` for a descriptor),
/// which is no manifest or descriptor to any other reader.
#[derive(Debug)]
struct Object<T>(T);

impl<T> Deref for Object<T> {
    type Target = T;

    fn deref(&self) -> &T {
        &self.0
    }
}

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Object<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct ObjectVisitor<T>(PhantomData<T>);

        impl<'de, T: Deserialize<'de>> de::Visitor<'de> for ObjectVisitor<T> {
            type Value = T;

            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a JSON object")
            }

            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<T, A::Error> {
                T::deserialize(MapAccessDeserializer::new(map))
            }
        }

        deserializer
            .deserialize_map(ObjectVisitor(PhantomData))
            .map(Object)
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct ParsedManifest {
    pub media_type: String,
    /// The artifact type a referrers response reports: `artifactType`, else the config's media type.
    pub artifact_type: Option<String>,
    /// Config and layers that must be present as blobs (foreign layers with `urls` excluded).
    pub blobs: Vec<(Digest, u64)>,
    /// Child manifests of an index, which must be present as manifests.
    pub manifests: Vec<(Digest, u64)>,
    pub subject: Option<Digest>,
    pub annotations: Option<BTreeMap<String, String>>,
}

impl ParsedManifest {
    /// Parses `body`, whose media type the client declared as `content_type` (if at all).
    /// Errors are human-readable reasons for a MANIFEST_INVALID response.
    pub fn parse(body: &[u8], content_type: Option<&str>) -> Result<ParsedManifest, String> {
        let Object(raw) = serde_json::from_slice::<Object<RawManifest>>(body)
            .map_err(|e| format!("manifest is not valid JSON: {e}"))?;
        if raw.schema_version != Some(2) {
            return Err("schemaVersion must be 2".into());
        }
        let media_type = match (raw.media_type.as_deref(), content_type) {
            (Some(declared), Some(header)) if declared != header => {
                return Err(format!(
                    "Content-Type {header:?} does not match the manifest's mediaType {declared:?}"
                ));
            }
            (Some(declared), _) => declared.to_string(),
            (None, Some(header)) => header.to_string(),
            (None, None) => return Err("manifest has no mediaType and no Content-Type".into()),
        };
        let mut parsed = ParsedManifest {
            artifact_type: raw.artifact_type,
            blobs: Vec::new(),
            manifests: Vec::new(),
            subject: raw.subject.as_deref().map(descriptor_digest).transpose()?,
            annotations: raw.annotations,
            media_type,
        };
        match parsed.media_type.as_str() {
            media_types::OCI_MANIFEST | media_types::DOCKER_MANIFEST => {
                if raw.manifests.is_some() {
                    return Err("an image manifest cannot have a manifests list".into());
                }
                let config = raw.config.ok_or("image manifest has no config")?;
                if parsed.artifact_type.is_none() {
                    parsed.artifact_type = Some(config.media_type.clone());
                }
                for descriptor in std::iter::once(&config).chain(raw.layers.iter().flatten()) {
                    if descriptor.urls.is_empty() {
                        parsed
                            .blobs
                            .push((descriptor_digest(descriptor)?, descriptor.size));
                    }
                }
            }
            media_types::OCI_INDEX | media_types::DOCKER_MANIFEST_LIST => {
                if raw.config.is_some() || raw.layers.is_some() {
                    return Err("an index cannot have config or layers".into());
                }
                for descriptor in raw.manifests.iter().flatten() {
                    parsed
                        .manifests
                        .push((descriptor_digest(descriptor)?, descriptor.size));
                }
            }
            other => return Err(format!("unsupported manifest media type {other:?}")),
        }
        Ok(parsed)
    }
}

fn descriptor_digest(descriptor: &Descriptor) -> Result<Digest, String> {
    descriptor
        .digest
        .parse()
        .map_err(|e| format!("descriptor digest {:?}: {e}", descriptor.digest))
}

#[cfg(test)]
mod tests {
    use super::*;

    const CONFIG: &str = "sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a";

    fn manifest(media_type: &str) -> String {
        format!(
            r#"{{"schemaVersion":2,"mediaType":"{media_type}",
                "config":{{"mediaType":"{}","digest":"{CONFIG}","size":2}},
                "layers":[{{"mediaType":"x","digest":"{CONFIG}","size":2}},
                          {{"mediaType":"x","digest":"{CONFIG}","size":2,"urls":["http://x"]}}]}}"#,
            media_types::OCI_EMPTY
        )
    }

    #[test]
    fn image_manifest_lists_its_blobs_and_artifact_type() {
        let parsed =
            ParsedManifest::parse(manifest(media_types::OCI_MANIFEST).as_bytes(), None).unwrap();
        assert_eq!(
            parsed.blobs.len(),
            2,
            "foreign layer with urls is not required"
        );
        assert_eq!(
            parsed.artifact_type.as_deref(),
            Some(media_types::OCI_EMPTY)
        );
    }

    #[test]
    fn content_type_must_agree_with_media_type() {
        let body = manifest(media_types::OCI_MANIFEST);
        let err = ParsedManifest::parse(body.as_bytes(), Some(media_types::DOCKER_MANIFEST));
        assert!(err.unwrap_err().contains("does not match"));
    }

    #[test]
    fn rejects_garbage_and_unknown_types() {
        assert!(ParsedManifest::parse(b"nope", None).is_err());
        assert!(ParsedManifest::parse(br#"{"schemaVersion":1}"#, None).is_err());
        let body = manifest("application/x-unknown");
        assert!(ParsedManifest::parse(body.as_bytes(), None).is_err());
    }
}
