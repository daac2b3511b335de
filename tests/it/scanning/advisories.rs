//! The OSV fixture of the scanning tests: advisories for Debian, Ubuntu, Alpine and
//! AlmaLinux that the test images' packages meet in every way that matters (fixed, not yet
//! fixed, last affected, another release, epochs, tildes, pre-release suffixes, binary and
//! source names, withdrawn), written as files or a zip.

use std::io::Write;
use std::path::Path;

use serde_json::{Value, json};

pub(super) fn range(ecosystem: &str, name: &str, events: Value) -> Value {
    json!({"package": {"ecosystem": ecosystem, "name": name},
           "ranges": [{"type": "ECOSYSTEM", "events": events}]})
}

pub(super) fn fixed(version: &str) -> Value {
    json!([{"introduced": "0"}, {"fixed": version}])
}

pub(super) fn advisory(
    id: &str,
    aliases: &[&str],
    severity: Option<(&str, &str)>,
    affected: Vec<Value>,
) -> Value {
    let mut record = json!({
        "id": id, "aliases": aliases, "summary": format!("{id} summary"),
        "references": [{"type": "ADVISORY", "url": format!("https://example.org/{id}")}],
        "affected": affected,
    });
    if let Some((kind, score)) = severity {
        record["severity"] = json!([{"type": kind, "score": score}]);
    }
    record
}

pub(super) const V3_HIGH: (&str, &str) =
    ("CVSS_V3", "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:N/A:N");
pub(super) const V3_MEDIUM: (&str, &str) =
    ("CVSS_V3", "CVSS:3.1/AV:N/AC:L/PR:L/UI:N/S:U/C:L/I:N/A:N");
pub(super) const V4_CRITICAL: (&str, &str) = (
    "CVSS_V4",
    "CVSS:4.0/AV:N/AC:L/AT:N/PR:N/UI:N/VC:H/VI:H/VA:H/SC:N/SI:N/SA:N",
);
pub(super) const V2_LOW: (&str, &str) = ("CVSS_V2", "AV:N/AC:H/Au:N/C:N/I:P/A:N");

pub(super) fn debian_advisories() -> Vec<Value> {
    vec![
        advisory(
            "DSA-5532-1",
            &["CVE-2023-5363"],
            Some(V3_HIGH),
            vec![
                range("Debian:12", "openssl", fixed("3.0.11-1~deb12u2")),
                range("Debian:11", "openssl", fixed("1.1.1w-0+deb11u1")),
            ],
        ),
        // The same CVE from Debian's tracker, less severe: one finding, the more severe.
        advisory(
            "DEBIAN-CVE-2023-5363",
            &["CVE-2023-5363"],
            Some(V3_MEDIUM),
            vec![range("Debian:12", "openssl", fixed("3.0.11-1~deb12u2"))],
        ),
        advisory(
            "DEBIAN-CVE-2023-1001",
            &["CVE-2023-1001"],
            Some(V4_CRITICAL),
            vec![range("Debian:12", "zlib", fixed("1:1.2.13.dfsg-2"))],
        ),
        // Without an epoch, 1.2.14 is older than 1:1.2.13.
        advisory(
            "DEBIAN-CVE-2023-1002",
            &["CVE-2023-1002"],
            Some(V3_HIGH),
            vec![range("Debian:12", "zlib", fixed("1.2.14"))],
        ),
        advisory(
            "DEBIAN-CVE-2023-1003",
            &["CVE-2023-1003"],
            None,
            vec![range(
                "Debian:12",
                "tzdata",
                json!([{"introduced": "0"}, {"last_affected": "2023c-5"}]),
            )],
        ),
        advisory(
            "DEBIAN-CVE-2023-1004",
            &["CVE-2023-1004"],
            None,
            vec![range(
                "Debian:12",
                "libtasn1-6",
                json!([{"introduced": "0"}, {"last_affected": "4.19.0-2"}]),
            )],
        ),
        advisory(
            "DEBIAN-CVE-2023-1005",
            &["CVE-2023-1005"],
            Some(V3_HIGH),
            vec![range("Debian:11", "curl", fixed("7.88.1-10+deb12u6"))],
        ),
        advisory(
            "DEBIAN-CVE-2023-1006",
            &["CVE-2023-1006"],
            Some(V3_HIGH),
            vec![range("Debian:12", "bash", fixed("5.2.15-3"))],
        ),
        // A binary package's name: Debian's advisories name source packages.
        advisory(
            "DEBIAN-CVE-2023-1007",
            &["CVE-2023-1007"],
            Some(V3_HIGH),
            vec![range("Debian:12", "helper", fixed("1.0-2"))],
        ),
        advisory(
            "DEBIAN-CVE-2023-1008",
            &["CVE-2023-1008"],
            Some(V3_MEDIUM),
            vec![range("Debian:12", "helper-src", fixed("1.0-2"))],
        ),
        // The source's own version (1.5-2), not the binary's (1.5-2+b1).
        advisory(
            "DEBIAN-CVE-2023-1009",
            &["CVE-2023-1009"],
            Some(V2_LOW),
            vec![json!({
            "package": {"ecosystem": "Debian:12", "name": "example"}, "versions": ["1.5-2"]})],
        ),
        advisory(
            "DEBIAN-CVE-2023-1010",
            &["CVE-2023-1010"],
            Some(V3_HIGH),
            vec![range("Debian:12", "vim", fixed("2:9.0.1378-3"))],
        ),
        {
            let mut withdrawn = advisory(
                "DEBIAN-CVE-2023-1011",
                &["CVE-2023-1011"],
                Some(V3_HIGH),
                vec![range("Debian:12", "openssl", fixed("9"))],
            );
            withdrawn["withdrawn"] = json!("2024-01-01T00:00:00Z");
            withdrawn
        },
        advisory(
            "UBUNTU-CVE-2023-1012",
            &["CVE-2023-1012"],
            Some(V3_HIGH),
            vec![range("Ubuntu:22.04:LTS", "openssl", fixed("9"))],
        ),
        advisory(
            "GHSA-xxxx-yyyy-zzzz",
            &["CVE-2023-1013"],
            Some(V3_HIGH),
            vec![range("PyPI", "openssl", fixed("9"))],
        ),
    ]
}

pub(super) fn alpine_advisories() -> Vec<Value> {
    vec![
        advisory(
            "ALPINE-CVE-2023-5678",
            &[],
            Some(V3_MEDIUM),
            vec![range("Alpine:v3.19", "openssl", fixed("3.1.4-r3"))],
        ),
        advisory(
            "ALPINE-CVE-2023-2001",
            &[],
            Some(V3_HIGH),
            vec![range("Alpine:v3.19", "busybox", fixed("1.36.1-r15"))],
        ),
        advisory(
            "ALPINE-CVE-2023-2002",
            &[],
            Some(V3_HIGH),
            vec![range("Alpine:v3.19", "foo", fixed("2.0-r0"))],
        ),
        advisory(
            "ALPINE-CVE-2023-2003",
            &[],
            Some(V3_HIGH),
            vec![range("Alpine:v3.19", "bar", fixed("2.0-r0"))],
        ),
        advisory(
            "ALPINE-CVE-2023-2004",
            &[],
            Some(V3_HIGH),
            vec![range("Alpine:v3.18", "busybox", fixed("1.36.1-r16"))],
        ),
    ]
}

pub(super) fn alma_advisories() -> Vec<Value> {
    vec![
        advisory(
            "ALSA-2024:3001",
            &["CVE-2024-3001"],
            Some(V3_HIGH),
            vec![range(
                "AlmaLinux:9",
                "openssl-libs",
                fixed("1:3.0.7-25.el9"),
            )],
        ),
        // Without an epoch, 3.0.8 is older than 1:3.0.7.
        advisory(
            "ALSA-2024:3002",
            &["CVE-2024-3002"],
            Some(V3_HIGH),
            vec![range("AlmaLinux:9", "openssl-libs", fixed("3.0.8-1.el9"))],
        ),
        advisory(
            "ALSA-2024:3003",
            &["CVE-2024-3003"],
            Some(V3_HIGH),
            vec![range(
                "AlmaLinux:8",
                "openssl-libs",
                fixed("1:3.0.7-99.el8"),
            )],
        ),
    ]
}

/// Writes `records` as one JSON file each under `dir`.
pub(super) fn write_records(dir: &Path, records: &[Value]) {
    std::fs::create_dir_all(dir).unwrap();
    for record in records {
        let name = record["id"].as_str().unwrap().replace(':', "_");
        std::fs::write(dir.join(format!("{name}.json")), record.to_string()).unwrap();
    }
}

/// Writes `records` into a zip file as osv.dev publishes them.
pub(super) fn write_zip(path: &Path, records: &[Value]) {
    let mut zip = zip::ZipWriter::new(std::fs::File::create(path).unwrap());
    let options = zip::write::SimpleFileOptions::default();
    for record in records {
        zip.start_file(format!("{}.json", record["id"].as_str().unwrap()), options)
            .unwrap();
        zip.write_all(record.to_string().as_bytes()).unwrap();
    }
    zip.finish().unwrap();
}
