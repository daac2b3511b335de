//! The valid content the fuzzer pushes before it starts, so that fuzzed requests also hit
//! objects that exist: two repositories holding blobs of several sizes, an image manifest
//! tagged `v1`, an index over it tagged `multi`, and a referrer of the manifest. Fuzz cases
//! only read the pool; what they change or delete lives in scratch repositories.

use serde_json::json;

use super::Settings;
use super::http::{Conn, Req, Resp};
use crate::common::{LAYER, OCI_EMPTY, OCI_INDEX, OCI_MANIFEST, sha256};

pub const CONFIG_TYPE: &str = "application/vnd.oci.image.config.v1+json";
pub const ARTIFACT_TYPE: &str = "application/vnd.wharf.stress.signature";
/// Scratch repositories per run; cases share them, each with content of its own.
const SCRATCH: u64 = 8;

#[derive(Debug, Clone)]
pub struct Blob {
    pub digest: String,
    pub data: Vec<u8>,
}

impl Blob {
    pub fn new(data: Vec<u8>) -> Blob {
        Blob {
            digest: sha256(&data),
            data,
        }
    }
}

/// A stored manifest: its digest and exact bytes.
#[derive(Debug, Clone)]
pub struct Stored {
    pub digest: String,
    pub bytes: Vec<u8>,
}

pub struct Pool {
    /// `stress/<run tag>`: every repository of the run is under it.
    pub prefix: String,
    pub repos: Vec<String>,
    pub blobs: Vec<Blob>,
    pub config: Blob,
    pub manifest: Stored,
    pub index: Stored,
    pub referrer: Stored,
}

/// A descriptor of `blob`.
pub fn descriptor(media_type: &str, blob: &Blob) -> serde_json::Value {
    json!({"mediaType": media_type, "digest": blob.digest, "size": blob.data.len()})
}

/// An image manifest over `config` and `layers`, with optional extra members.
pub fn image_manifest(config: &Blob, layers: &[&Blob], extra: serde_json::Value) -> Vec<u8> {
    let mut manifest = json!({
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": descriptor(CONFIG_TYPE, config),
        "layers": layers.iter().map(|l| descriptor(LAYER, l)).collect::<Vec<_>>(),
    });
    if let (Some(m), Some(extra)) = (manifest.as_object_mut(), extra.as_object()) {
        m.extend(extra.clone());
    }
    serde_json::to_vec(&manifest).unwrap()
}

impl Pool {
    /// Pushes the pool for `settings`' seed (the same content each time for one seed).
    pub async fn push(settings: &Settings, basic: Option<&str>) -> Pool {
        let mut rng = fastrand::Rng::with_seed(settings.seed ^ 0x0070_6f6f_6c00);
        let prefix = format!("stress/{}", settings.tag());
        let repos = vec![
            format!("{prefix}/pool"),
            format!("{prefix}/pool/nested/deeper"),
        ];
        let blobs: Vec<Blob> = [0usize, 1, 333, 4096, 70_000, 1_048_577]
            .iter()
            .map(|&size| Blob::new(std::iter::repeat_with(|| rng.u8(..)).take(size).collect()))
            .collect();
        let config = Blob::new(
            format!(r#"{{"architecture":"amd64","os":"linux","stress":"{prefix}"}}"#).into_bytes(),
        );
        let empty = Blob::new(b"{}".to_vec());
        let layers: Vec<&Blob> = blobs[1..4].iter().collect();
        let manifest = image_manifest(&config, &layers, json!({}));
        let manifest = Stored {
            digest: sha256(&manifest),
            bytes: manifest,
        };
        let index = serde_json::to_vec(&json!({
            "schemaVersion": 2,
            "mediaType": OCI_INDEX,
            "manifests": [{"mediaType": OCI_MANIFEST, "digest": manifest.digest,
                           "size": manifest.bytes.len(),
                           "platform": {"architecture": "amd64", "os": "linux"}}],
        }))
        .unwrap();
        let referrer = serde_json::to_vec(&json!({
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "artifactType": ARTIFACT_TYPE,
            "config": descriptor(OCI_EMPTY, &empty),
            "layers": [descriptor(OCI_EMPTY, &empty)],
            "subject": {"mediaType": OCI_MANIFEST, "digest": manifest.digest,
                        "size": manifest.bytes.len()},
        }))
        .unwrap();
        let pool = Pool {
            prefix,
            repos,
            config,
            manifest,
            index: Stored {
                digest: sha256(&index),
                bytes: index,
            },
            referrer: Stored {
                digest: sha256(&referrer),
                bytes: referrer,
            },
            blobs,
        };
        let mut pusher = Pusher {
            conn: Conn::new(settings.addr, None),
            host: settings.host.clone(),
            basic: basic.map(str::to_string),
        };
        for repo in &pool.repos {
            for blob in pool.blobs.iter().chain([&pool.config, &empty]) {
                let target = format!("/v2/{repo}/blobs/uploads/?digest={}", blob.digest);
                let req = Req::new("POST", target).body(blob.data.clone());
                pusher.must(&req, 201).await;
            }
            let put = |reference: &str, media_type: &str, bytes: &[u8]| {
                Req::new("PUT", format!("/v2/{repo}/manifests/{reference}"))
                    .header("content-type", media_type)
                    .body(bytes.to_vec())
            };
            pusher
                .must(&put("v1", OCI_MANIFEST, &pool.manifest.bytes), 201)
                .await;
            pusher
                .must(&put("multi", OCI_INDEX, &pool.index.bytes), 201)
                .await;
            let referrer = put(&pool.referrer.digest, OCI_MANIFEST, &pool.referrer.bytes);
            pusher.must(&referrer, 201).await;
        }
        println!(
            "pool: {} and {} with {} blobs, manifest {}, index {}, referrer {}",
            pool.repos[0],
            pool.repos[1],
            pool.blobs.len() + 2,
            pool.manifest.digest,
            pool.index.digest,
            pool.referrer.digest
        );
        pool
    }

    pub fn repo(&self, rng: &mut fastrand::Rng) -> &str {
        &self.repos[rng.usize(..self.repos.len())]
    }

    pub fn blob(&self, rng: &mut fastrand::Rng) -> &Blob {
        &self.blobs[rng.usize(..self.blobs.len())]
    }

    /// A scratch repository, for content a case creates, changes or deletes.
    pub fn scratch(&self, rng: &mut fastrand::Rng) -> String {
        format!("{}/scratch{}", self.prefix, rng.u64(..SCRATCH))
    }
}

struct Pusher {
    conn: Conn,
    host: String,
    basic: Option<String>,
}

impl Pusher {
    async fn must(&mut self, req: &Req, status: u16) -> Resp {
        let bytes = req.to_bytes(&self.host, self.basic.as_deref());
        let resp = tokio::time::timeout(super::HANG, self.conn.exchange(&bytes, false))
            .await
            .unwrap_or_else(|_| panic!("pushing the pool: no answer to {}", req.method))
            .unwrap_or_else(|e| panic!("pushing the pool: {e}"));
        assert_eq!(
            resp.status,
            status,
            "pushing the pool: {} {} answered {}",
            req.method,
            String::from_utf8_lossy(&req.target),
            super::fuzz::answer(&resp)
        );
        resp
    }
}
