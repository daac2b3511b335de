"""Image scanning as the clients see it: PutRegistryScanningConfiguration,
GetRegistryScanningConfiguration, BatchGetRepositoryScanningConfiguration, StartImageScan,
DescribeImageScanFindings (its pages and botocore's paginator, the `image_scan_complete` waiter),
the scan summary of DescribeImages, scan on push (the repository's setting or a registry rule)
worked by the server's background scans, and the `wharf vulndb import|list` and `wharf scan`
commands.

The images are built here: a Debian 12 layer (os-release and a dpkg status) whose packages the
OSV fixture below makes vulnerable or not, exactly. The vulnerability database is the
registry's: the fixture is imported once per run (`wharf vulndb import`, which replaces the
server's Debian advisories, so run the suite against test servers only); a test that imports
another imports the fixture again at its end. The scanning configuration is the registry's too:
a test that sets one sets rules only for repositories of its own, and puts the one it found back
at its end.

`wharf scan IMAGE` and `--rescan` read the image's layers themselves: WHARF_ADMIN_ARGS name the
server's blob storage as well as its database.
"""

import datetime
import gzip
import json
import os
import re
import time
import unittest
import uuid
import zipfile

import botocore.exceptions

import ecr
from ecr import EcrTestCase

SEVERITIES = ["CRITICAL", "HIGH", "MEDIUM", "LOW", "INFORMATIONAL", "UNDEFINED"]

# CVSS v3.1 vectors and the base scores (and so severities) they have.
V3_CRITICAL = "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H"  # 9.8
V3_HIGH = "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:N/A:N"  # 7.5
V3_HIGH_INTEGRITY = "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:N/I:H/A:N"  # 7.5
V3_MEDIUM = "CVSS:3.1/AV:N/AC:L/PR:L/UI:N/S:U/C:L/I:N/A:N"  # 4.3
V3_LOW = "CVSS:3.1/AV:L/AC:H/PR:H/UI:N/S:U/C:L/I:N/A:N"  # 1.9

OS_RELEASE_DEBIAN_12 = """PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"
NAME="Debian GNU/Linux"
VERSION_ID="12"
VERSION="12 (bookworm)"
VERSION_CODENAME=bookworm
ID=debian
"""

# What an image of each distribution Wharf scans says in /etc/os-release: (OSV's name, ID, VERSION_ID).
DISTRIBUTIONS = [
    ("Amazon Linux", "amzn", "2023"),
    ("Rocky Linux", "rocky", "9.3"),
    ("AlmaLinux", "almalinux", "9.3"),
    ("Red Hat", "rhel", "9.3"),
    ("Ubuntu", "ubuntu", "22.04"),
    ("Alpine", "alpine", "3.19.1"),
]


def dpkg_entry(package, version, source=None, status="install ok installed"):
    entry = f"Package: {package}\nStatus: {status}\nArchitecture: amd64\nVersion: {version}\n"
    if source:
        entry += f"Source: {source}\n"
    return entry + "Description: a package of the ECR suite\n"


# libssl3 (source openssl) is older than the advisory's fix: exactly one finding. zlib1g (source
# zlib) is at the fix of an advisory: none. bash is removed (only its configuration is left).
BASIC_STATUS = "\n".join([
    dpkg_entry("libssl3", "3.0.11-1~deb12u1", "openssl"),
    dpkg_entry("zlib1g", "1:1.2.13.dfsg-1", "zlib"),
    dpkg_entry("bash", "5.2.15-2", status="deinstall ok config-files"),
])
# Five packages more, one finding each, of every severity.
MANY_STATUS = "\n".join([
    BASIC_STATUS,
    dpkg_entry("curl", "7.88.1-10+deb12u5"),
    dpkg_entry("tar", "1.34+dfsg-1.2"),
    dpkg_entry("gzip", "1.12-1"),
    dpkg_entry("sed", "4.9-1"),
    dpkg_entry("libtasn1-6", "4.19.0-2"),
])


def debian(release, name, events):
    return {"package": {"ecosystem": f"Debian:{release}", "name": name},
            "ranges": [{"type": "ECOSYSTEM", "events": events}]}


def fixed(version):
    return [{"introduced": "0"}, {"fixed": version}]


def osv(advisory_id, cve, affected, vector=None, **more):
    """An OSV record as osv.dev publishes Debian's; CVE, if any, as an alias."""
    record = {
        "schema_version": "1.6.0",
        "id": advisory_id,
        "modified": "2024-06-01T00:00:00Z",
        "published": "2024-05-01T00:00:00Z",
        "aliases": [cve] if cve else [],
        "summary": f"{advisory_id}: a vulnerability of the ECR suite",
        "references": [{"type": "ADVISORY", "url": f"https://security-tracker.debian.org/tracker/{advisory_id}"}],
        "affected": affected,
    }
    if vector:
        record["severity"] = [{"type": "CVSS_V3", "score": vector}]
    record.update(more)
    return record


# The fixture every scan here is matched against.
FIXTURE = [
    # Named by the CVE of its `upstream`, as Debian's DSAs name theirs.
    osv("DSA-9001-1", None, [
        debian(12, "openssl", fixed("3.0.11-1~deb12u2")),
        debian(11, "openssl", fixed("1.1.1w-0+deb11u1")),
    ], V3_HIGH, upstream=["DEBIAN-CVE-2024-90001", "CVE-2024-90001"]),
    # At the installed version: fixed.
    osv("DEBIAN-CVE-2024-90002", "CVE-2024-90002", [debian(12, "zlib", fixed("1:1.2.13.dfsg-1"))], V3_CRITICAL),
    # Of another release.
    osv("DEBIAN-CVE-2024-90003", "CVE-2024-90003", [debian(11, "openssl", fixed("9"))], V3_CRITICAL),
    # Withdrawn.
    osv("DEBIAN-CVE-2024-90004", "CVE-2024-90004", [debian(12, "openssl", fixed("9"))], V3_CRITICAL,
        withdrawn="2024-06-01T00:00:00Z"),
    # Of no distribution.
    {"id": "GHSA-wh4r-f5ui-te00", "modified": "2024-06-01T00:00:00Z", "aliases": ["CVE-2024-90005"],
     "affected": [{"package": {"ecosystem": "PyPI", "name": "openssl"},
                   "ranges": [{"type": "ECOSYSTEM", "events": fixed("9")}]}]},
    # A package removed but for its configuration.
    osv("DEBIAN-CVE-2024-90006", "CVE-2024-90006", [debian(12, "bash", fixed("5.2.15-3"))], V3_CRITICAL),
    # The packages of MANY_STATUS.
    osv("DEBIAN-CVE-2024-90011", "CVE-2024-90011", [debian(12, "curl", fixed("7.88.1-10+deb12u6"))], V3_CRITICAL),
    osv("DEBIAN-CVE-2024-90012", "CVE-2024-90012", [debian(12, "tar", fixed("1.34+dfsg-1.2+deb12u1"))], V3_MEDIUM),
    osv("DEBIAN-CVE-2024-90013", "CVE-2024-90013", [debian(12, "gzip", fixed("1.12-1+deb12u1"))], V3_LOW),
    osv("DEBIAN-CVE-2024-90014", "CVE-2024-90014",
        [debian(12, "sed", [{"introduced": "0"}, {"last_affected": "4.9-1"}])]),
    # Of no CVE: named by its own id.
    osv("DSA-9015-1", None, [debian(12, "libtasn1-6", fixed("4.19.0-2+deb12u1"))], V3_HIGH_INTEGRITY),
]
FIXTURE_RECORDS, FIXTURE_KEPT, FIXTURE_WITHDRAWN, FIXTURE_UNRELATED = 11, 9, 1, 1

OPENSSL_FINDING = {
    "name": "CVE-2024-90001",
    "description": "DSA-9001-1: a vulnerability of the ECR suite",
    "uri": "https://security-tracker.debian.org/tracker/DSA-9001-1",
    "severity": "HIGH",
    "attributes": {
        "package_name": "libssl3",
        "package_version": "3.0.11-1~deb12u1",
        "CVSS3_SCORE": "7.5",
        "CVSS3_VECTOR": V3_HIGH,
    },
}
# (name, severity, package, version) of the findings of MANY_STATUS.
MANY_FINDINGS = [
    ("CVE-2024-90011", "CRITICAL", "curl", "7.88.1-10+deb12u5"),
    ("CVE-2024-90001", "HIGH", "libssl3", "3.0.11-1~deb12u1"),
    ("DSA-9015-1", "HIGH", "libtasn1-6", "4.19.0-2"),
    ("CVE-2024-90012", "MEDIUM", "tar", "1.34+dfsg-1.2"),
    ("CVE-2024-90013", "LOW", "gzip", "1.12-1"),
    ("CVE-2024-90014", "UNDEFINED", "sed", "4.9-1"),
]
MANY_COUNTS = {"CRITICAL": 1, "HIGH": 2, "MEDIUM": 1, "LOW": 1, "UNDEFINED": 1}

# A newer Debian database: openssl's advisory is gone, zlib's is fixed later.
NEWER = [osv("DEBIAN-CVE-2024-90002", "CVE-2024-90002", [debian(12, "zlib", fixed("1:1.2.13.dfsg-2"))], V3_CRITICAL)]


def write_osv(directory, records, zipped=()):
    """Writes RECORDS as osv.dev publishes them: one JSON file each, under DIRECTORY (nested),
    and those whose ids are in ZIPPED into DIRECTORY/debian.zip instead. The paths to import."""
    nested = os.path.join(directory, "osv", "Debian")
    os.makedirs(nested, exist_ok=True)
    paths = [os.path.join(directory, "osv")]
    in_zip = [record for record in records if record["id"] in zipped]
    for record in records:
        if record not in in_zip:
            with open(os.path.join(nested, record["id"] + ".json"), "w") as f:
                json.dump(record, f, indent=2)
    if in_zip:
        archive = os.path.join(directory, "debian.zip")
        with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as z:
            for record in in_zip:
                z.writestr(record["id"] + ".json", json.dumps(record))
        paths.append(archive)
    return paths


# ---------------------------------------------------------------------------------------------
# images


def layer(files, compress=True):
    """A layer of FILES ({path: text}), gzipped unless not COMPRESS."""
    compressed, plain = ecr.tar_gz({path: text.encode() for path, text in files.items()})
    return compressed if compress else plain


class LayeredImage(ecr.Image):
    """An image of the given layers (each a tar, gzipped or not), unique by a label of its config."""

    def __init__(self, *layers, docker=False):
        self.blobs, self.layers, diff_ids = {}, [], []
        for data in layers:
            gzipped = data[:2] == b"\x1f\x8b"
            try:
                plain = gzip.decompress(data) if gzipped else data
            except Exception:  # a corrupt layer: its diff id does not matter
                plain = data
            if docker:
                media_type = ecr.DOCKER_LAYER
            else:
                media_type = ecr.OCI_LAYER if gzipped else "application/vnd.oci.image.layer.v1.tar"
            self.blobs[ecr.sha256(data)] = data
            diff_ids.append(ecr.sha256(plain))
            self.layers.append({"mediaType": media_type, "digest": ecr.sha256(data), "size": len(data)})
        config = json.dumps({
            "architecture": "amd64", "os": "linux",
            "config": {"Labels": {"seed": uuid.uuid4().hex}},
            "rootfs": {"type": "layers", "diff_ids": diff_ids},
        }, sort_keys=True).encode()
        self.config = config
        self.blobs[ecr.sha256(config)] = config
        self.config_media_type = ecr.DOCKER_CONFIG if docker else ecr.OCI_CONFIG
        manifest = {
            "schemaVersion": 2,
            "mediaType": ecr.DOCKER_MANIFEST if docker else ecr.OCI_MANIFEST,
            "config": {"mediaType": self.config_media_type, "digest": ecr.sha256(config), "size": len(config)},
            "layers": self.layers,
        }
        self.media_type = manifest["mediaType"]
        self.manifest = json.dumps(manifest, indent=2)
        self.digest = ecr.sha256(self.manifest.encode())
        self.size = len(self.manifest.encode())
        self.layers_size = sum(item["size"] for item in self.layers)


def debian_image(status=BASIC_STATUS, docker=False):
    """Debian 12 in two layers: the base with os-release and a status listing nothing, then the
    packages (the later status replaces the earlier). Images share their base layer, and their
    packages layer when their packages are the same."""
    base = layer({"etc/os-release": OS_RELEASE_DEBIAN_12, "var/lib/dpkg/status": "",
                  "etc/debian_version": "12.5\n"})
    packages = layer({"var/lib/dpkg/status": status, "usr/share/doc/libssl3/copyright": "(c)\n"})
    return LayeredImage(base, packages, docker=docker)


def push(client, repo, image, tag=None):
    """Pushes IMAGE through the ECR API as docker does: only the blobs that
    BatchCheckLayerAvailability does not find. PutImage's answer."""
    found = client.batch_check_layer_availability(repositoryName=repo, layerDigests=list(image.blobs))["layers"]
    available = {entry["layerDigest"] for entry in found if entry.get("layerAvailability") == "AVAILABLE"}
    for digest, data in image.blobs.items():
        if digest not in available:
            ecr.upload_blob(client, repo, data)
    return ecr.put_image(client, repo, image.manifest, tag, image.media_type)


# ---------------------------------------------------------------------------------------------
# the vulnerability database

_imported = {}


def import_fixture(test):
    """Imports FIXTURE (once a run, or again after a test imported another); `wharf vulndb
    import`'s output."""
    test.need_wharf_cli()
    if "output" not in _imported:
        directory = test.tempdir()
        paths = write_osv(directory, FIXTURE, zipped={"DSA-9001-1", "GHSA-wh4r-f5ui-te00", "DSA-9015-1"})
        _imported["output"] = ecr.run_wharf("vulndb", "import", *paths)
    return _imported["output"]


def forget_fixture():
    _imported.clear()


# ---------------------------------------------------------------------------------------------
# tests


def plain_finding(finding):
    """A finding with its attributes as a dict."""
    out = dict(finding)
    out["attributes"] = {a["key"]: a["value"] for a in finding.get("attributes", [])}
    keys = [a["key"] for a in finding.get("attributes", [])]
    assert len(keys) == len(set(keys)), f"an attribute twice: {finding}"
    return out


def row(finding):
    attributes = plain_finding(finding)["attributes"]
    return (finding["name"], finding["severity"], attributes.get("package_name"), attributes.get("package_version"))


class ScanningTestCase(EcrTestCase):
    def keep_registry_configuration(self):
        """Puts the registry's scanning configuration back as it is now after the test."""
        before = self.ecr.get_registry_scanning_configuration()["scanningConfiguration"]
        self.addCleanup(lambda: self.ecr.put_registry_scanning_configuration(
            scanType=before.get("scanType", "BASIC"), rules=before.get("rules", [])))
        return before

    def scan_status(self, repo, **image_id):
        return self.ecr.describe_image_scan_findings(repositoryName=repo, imageId=image_id)["imageScanStatus"]

    def wait_complete(self, repo, **image_id):
        """botocore's `image_scan_complete` waiter, polling each second; then the findings (first page)."""
        self.ecr.get_waiter("image_scan_complete").wait(
            repositoryName=repo, imageId=image_id, WaiterConfig={"Delay": 1, "MaxAttempts": 40}
        )
        return self.ecr.describe_image_scan_findings(repositoryName=repo, imageId=image_id)

    def wait_ended(self, repo, timeout=40, **image_id):
        """Polls until the scan is no longer IN_PROGRESS; DescribeImageScanFindings' answer."""
        deadline = time.monotonic() + timeout
        while True:
            answer = self.ecr.describe_image_scan_findings(repositoryName=repo, imageId=image_id)
            if answer["imageScanStatus"]["status"] != "IN_PROGRESS" or time.monotonic() > deadline:
                return answer
            time.sleep(0.5)

    def all_findings(self, repo, page_size=None, **image_id):
        """Every finding, through the paginator."""
        config = {"PageSize": page_size} if page_size else {}
        pages = list(self.ecr.get_paginator("describe_image_scan_findings").paginate(
            repositoryName=repo, imageId=image_id, PaginationConfig=config))
        return pages, [f for page in pages for f in page.get("imageScanFindings", {}).get("findings", [])]

    def assertSeverityOrder(self, findings):
        ranks = [SEVERITIES.index(f["severity"]) for f in findings]
        self.assertEqual(ranks, sorted(ranks), "the findings are not most severe first")

    def assertSummary(self, summary, counts, completed_after=None):
        """An imageScanFindings(Summary) of a completed scan with these severity counts."""
        self.assertEqual(summary["findingSeverityCounts"], counts)
        self.assertRecent(summary["imageScanCompletedAt"])
        self.assertIsInstance(summary["vulnerabilitySourceUpdatedAt"], datetime.datetime)
        self.assertLessEqual(summary["vulnerabilitySourceUpdatedAt"], summary["imageScanCompletedAt"])
        if completed_after:
            self.assertGreaterEqual(summary["imageScanCompletedAt"], completed_after)


class RegistryScanningConfiguration(ScanningTestCase):
    """The registry's configuration and what it makes of each repository; no scans."""

    def test_put_and_get(self):
        self.keep_registry_configuration()
        prefix = ecr.repo_name("scan-cfg")
        rules = [
            {"scanFrequency": "SCAN_ON_PUSH", "repositoryFilters": [
                {"filter": f"{prefix}/push*", "filterType": "WILDCARD"},
                {"filter": f"{prefix}/*/release", "filterType": "WILDCARD"},
            ]},
            {"scanFrequency": "MANUAL", "repositoryFilters": [{"filter": f"{prefix}/*", "filterType": "WILDCARD"}]},
        ]
        put = self.ecr.put_registry_scanning_configuration(scanType="BASIC", rules=rules)
        self.assertEqual(put["registryScanningConfiguration"], {"scanType": "BASIC", "rules": rules})
        got = self.ecr.get_registry_scanning_configuration()
        self.assertEqual(got["registryId"], self.registry_id())
        self.assertEqual(got["scanningConfiguration"], {"scanType": "BASIC", "rules": rules})

        # The CLI, from a file, and without rules.
        path = os.path.join(self.tempdir(), "rules.json")
        with open(path, "w") as f:
            json.dump(rules[:1], f)
        put = ecr.cli("put-registry-scanning-configuration", "--scan-type", "BASIC", "--rules", f"file://{path}")
        self.assertEqual(put["registryScanningConfiguration"], {"scanType": "BASIC", "rules": rules[:1]})
        got = ecr.cli("get-registry-scanning-configuration")
        self.assertEqual(got["registryId"], self.registry_id())
        self.assertEqual(got["scanningConfiguration"], {"scanType": "BASIC", "rules": rules[:1]})
        put = ecr.cli("put-registry-scanning-configuration", "--scan-type", "BASIC")
        self.assertEqual(put["registryScanningConfiguration"], {"scanType": "BASIC", "rules": []})
        self.assertEqual(self.ecr.get_registry_scanning_configuration()["scanningConfiguration"],
                         {"scanType": "BASIC", "rules": []})

    def test_invalid_configurations_are_refused(self):
        self.keep_registry_configuration()
        prefix = ecr.repo_name("scan-bad")
        valid = [{"scanFrequency": "SCAN_ON_PUSH", "repositoryFilters": [{"filter": f"{prefix}*", "filterType": "WILDCARD"}]}]
        self.ecr.put_registry_scanning_configuration(scanType="BASIC", rules=valid)

        def rule(frequency="SCAN_ON_PUSH", *filters, filter_type="WILDCARD"):
            return {"scanFrequency": frequency,
                    "repositoryFilters": [{"filter": f, "filterType": filter_type} for f in (filters or [f"{prefix}*"])]}

        raw = ecr.unvalidated_client()
        for why, args in (
            ("ENHANCED scanning", {"scanType": "ENHANCED", "rules": [rule()]}),
            ("ENHANCED without rules", {"scanType": "ENHANCED", "rules": []}),
            ("an unknown scan type", {"scanType": "THOROUGH", "rules": []}),
            ("three rules", {"scanType": "BASIC", "rules": [rule(), rule("MANUAL"), rule()]}),
            ("continuous scans", {"scanType": "BASIC", "rules": [rule("CONTINUOUS_SCAN")]}),
            ("an unknown frequency", {"scanType": "BASIC", "rules": [rule("HOURLY")]}),
            ("a rule without filters", {"scanType": "BASIC", "rules": [{"scanFrequency": "SCAN_ON_PUSH", "repositoryFilters": []}]}),
            ("101 filters", {"scanType": "BASIC", "rules": [rule("SCAN_ON_PUSH", *[f"{prefix}-{i}" for i in range(101)])]}),
            ("a PREFIX_MATCH filter", {"scanType": "BASIC", "rules": [rule(filter_type="PREFIX_MATCH")]}),
            ("an upper-case filter", {"scanType": "BASIC", "rules": [rule("SCAN_ON_PUSH", "Prod/*")]}),
            ("a filter ending in a separator", {"scanType": "BASIC", "rules": [rule("SCAN_ON_PUSH", "prod/")]}),
            ("an empty filter", {"scanType": "BASIC", "rules": [rule("SCAN_ON_PUSH", "")]}),
        ):
            with self.subTest(why):
                self.assertEcrError("InvalidParameterException", raw.put_registry_scanning_configuration, **args)
                self.assertEqual(self.ecr.get_registry_scanning_configuration()["scanningConfiguration"],
                                 {"scanType": "BASIC", "rules": valid})
        self.assertCliError("InvalidParameterException", "put-registry-scanning-configuration", "--scan-type", "ENHANCED")
        # A hundred filters are allowed.
        most = [rule("SCAN_ON_PUSH", *[f"{prefix}-{i}" for i in range(100)])]
        self.assertEqual(self.ecr.put_registry_scanning_configuration(scanType="BASIC", rules=most)
                         ["registryScanningConfiguration"]["rules"], most)

    def test_repository_scanning_configurations(self):
        self.keep_registry_configuration()
        prefix = ecr.repo_name("scan-repos")
        push_filters = [{"filter": f"{prefix}/push*", "filterType": "WILDCARD"}]
        manual_filters = [{"filter": f"{prefix}/manual-*", "filterType": "WILDCARD"},
                          {"filter": f"{prefix}/push*", "filterType": "WILDCARD"}]
        self.ecr.put_registry_scanning_configuration(scanType="BASIC", rules=[
            {"scanFrequency": "SCAN_ON_PUSH", "repositoryFilters": push_filters},
            {"scanFrequency": "MANUAL", "repositoryFilters": manual_filters},
        ])
        pushed, manual, own, neither = (f"{prefix}/pushed", f"{prefix}/manual-x", f"{prefix}/own", f"{prefix}/neither")
        for name in (pushed, manual, neither):
            self.ecr.create_repository(repositoryName=name)
        self.ecr.create_repository(repositoryName=own, imageScanningConfiguration={"scanOnPush": True})
        missing = f"{prefix}/missing"

        answer = self.ecr.batch_get_repository_scanning_configuration(
            repositoryNames=[pushed, manual, own, neither, missing])
        registry_id = self.registry_id()
        arn = f"arn:aws:ecr:{ecr.REGION}:{registry_id}:repository/"
        self.assertEqual(answer["scanningConfigurations"], [
            {"repositoryArn": arn + pushed, "repositoryName": pushed, "scanOnPush": True,
             "scanFrequency": "SCAN_ON_PUSH", "appliedScanFilters": push_filters},
            {"repositoryArn": arn + manual, "repositoryName": manual, "scanOnPush": False,
             "scanFrequency": "MANUAL", "appliedScanFilters": manual_filters},
            {"repositoryArn": arn + own, "repositoryName": own, "scanOnPush": True,
             "scanFrequency": "SCAN_ON_PUSH", "appliedScanFilters": []},
            {"repositoryArn": arn + neither, "repositoryName": neither, "scanOnPush": False,
             "scanFrequency": "MANUAL", "appliedScanFilters": []},
        ])
        self.assertEqual(len(answer["failures"]), 1, answer["failures"])
        self.assertEqual(answer["failures"][0]["repositoryName"], missing)
        self.assertEqual(answer["failures"][0]["failureCode"], "REPOSITORY_NOT_FOUND")
        self.assertTrue(answer["failures"][0]["failureReason"])

        # The repository's own setting, turned on and off.
        self.ecr.put_image_scanning_configuration(repositoryName=neither, imageScanningConfiguration={"scanOnPush": True})
        self.ecr.put_image_scanning_configuration(repositoryName=own, imageScanningConfiguration={"scanOnPush": False})
        out = ecr.cli("batch-get-repository-scanning-configuration", "--repository-names", neither, own)
        self.assertEqual([(c["repositoryName"], c["scanOnPush"], c["scanFrequency"]) for c in out["scanningConfigurations"]],
                         [(neither, True, "SCAN_ON_PUSH"), (own, False, "MANUAL")])
        self.assertEqual(out["failures"], [])

        # A rule set later applies to repositories that exist.
        self.ecr.put_registry_scanning_configuration(scanType="BASIC", rules=[
            {"scanFrequency": "SCAN_ON_PUSH", "repositoryFilters": [{"filter": f"{prefix}/*", "filterType": "WILDCARD"}]}])
        later = self.ecr.batch_get_repository_scanning_configuration(repositoryNames=[manual, own])
        self.assertEqual([(c["scanOnPush"], c["scanFrequency"]) for c in later["scanningConfigurations"]],
                         [(True, "SCAN_ON_PUSH"), (True, "SCAN_ON_PUSH")])

        raw = ecr.unvalidated_client()
        for why, names in (("no names", []), ("26 names", [f"{prefix}/n{i}" for i in range(26)])):
            with self.subTest(why):
                self.assertEcrError("InvalidParameterException", raw.batch_get_repository_scanning_configuration,
                                    repositoryNames=names)
        everything_missing = self.ecr.batch_get_repository_scanning_configuration(repositoryNames=[missing])
        self.assertEqual(everything_missing["scanningConfigurations"], [])
        self.assertEqual([f["failureCode"] for f in everything_missing["failures"]], ["REPOSITORY_NOT_FOUND"])


class ScanErrors(ScanningTestCase):
    """What StartImageScan and DescribeImageScanFindings refuse; no advisories needed."""

    def test_missing_repositories_images_and_scans(self):
        missing = ecr.repo_name("scan-missing")
        for call in (self.ecr.start_image_scan, self.ecr.describe_image_scan_findings):
            with self.subTest(call.__name__):
                self.assertEcrError("RepositoryNotFoundException", call, repositoryName=missing, imageId={"imageTag": "v1"})
        repo = self.new_repo("scan-errors")
        for image_id in ({"imageTag": "v1"}, {"imageDigest": ecr.sha256(b"nothing")}):
            for call in (self.ecr.start_image_scan, self.ecr.describe_image_scan_findings):
                with self.subTest(call.__name__, **image_id):
                    error = self.assertEcrError("ImageNotFoundException", call, repositoryName=repo, imageId=image_id)
                    self.assertIn(repo, error["Error"]["Message"])

        # An image never scanned has no scan, by tag or digest, and says so in the CLI too.
        image = ecr.Image()
        push(self.ecr, repo, image, tag="v1")
        for image_id in ({"imageTag": "v1"}, {"imageDigest": image.digest}):
            with self.subTest("never scanned", **image_id):
                self.assertEcrError("ScanNotFoundException", self.ecr.describe_image_scan_findings,
                                    repositoryName=repo, imageId=image_id)
        self.assertCliError("ScanNotFoundException", "describe-image-scan-findings", "--repository-name", repo,
                            "--image-id", "imageTag=v1")
        detail = self.ecr.describe_images(repositoryName=repo)["imageDetails"][0]
        self.assertNotIn("imageScanStatus", detail)
        self.assertNotIn("imageScanFindingsSummary", detail)
        self.assertCliError("ImageNotFoundException", "start-image-scan", "--repository-name", repo,
                            "--image-id", "imageTag=nope")

        # A scan goes with its image: pushed again, the image has none.
        self.ecr.start_image_scan(repositoryName=repo, imageId={"imageTag": "v1"})
        self.assertIn(self.scan_status(repo, imageTag="v1")["status"], ("IN_PROGRESS", "UNSUPPORTED_IMAGE"))
        self.ecr.batch_delete_image(repositoryName=repo, imageIds=[{"imageTag": "v1"}])
        push(self.ecr, repo, image, tag="v1")
        self.assertEcrError("ScanNotFoundException", self.ecr.describe_image_scan_findings,
                            repositoryName=repo, imageId={"imageTag": "v1"})

    def test_artifacts_are_not_scanned(self):
        repo = self.new_repo("scan-artifact")
        subject = ecr.Image()
        push(self.ecr, repo, subject, tag="v1")
        empty, sbom = b"{}", json.dumps({"sbom": uuid.uuid4().hex}).encode()
        ecr.upload_blob(self.ecr, repo, empty)
        ecr.upload_blob(self.ecr, repo, sbom)
        artifact = json.dumps({
            "schemaVersion": 2,
            "mediaType": ecr.OCI_MANIFEST,
            "artifactType": "application/vnd.example.sbom.v1+json",
            "config": {"mediaType": ecr.OCI_EMPTY, "digest": ecr.sha256(empty), "size": len(empty)},
            "layers": [{"mediaType": "application/json", "digest": ecr.sha256(sbom), "size": len(sbom)}],
            "subject": subject.descriptor(),
        })
        ecr.put_image(self.ecr, repo, artifact, "sbom", ecr.OCI_MANIFEST)
        for image_id in ({"imageTag": "sbom"}, {"imageDigest": ecr.sha256(artifact.encode())}):
            with self.subTest(**image_id):
                self.assertEcrError("UnsupportedImageTypeException", self.ecr.start_image_scan,
                                    repositoryName=repo, imageId=image_id)
        self.assertCliError("UnsupportedImageTypeException", "start-image-scan", "--repository-name", repo,
                            "--image-id", "imageTag=sbom")
        self.assertEcrError("ScanNotFoundException", self.ecr.describe_image_scan_findings,
                            repositoryName=repo, imageId={"imageTag": "sbom"})

    def test_invalid_requests(self):
        repo = self.new_repo("scan-invalid")
        image = ecr.Image()
        push(self.ecr, repo, image, tag="v1")
        self.ecr.start_image_scan(repositoryName=repo, imageId={"imageTag": "v1"})
        raw = ecr.unvalidated_client()
        for why, args in (
            ("maxResults 0", {"maxResults": 0}),
            ("maxResults 1001", {"maxResults": 1001}),
            ("a token of nothing", {"nextToken": "not a token!"}),
        ):
            with self.subTest(why):
                self.assertEcrError("InvalidParameterException", raw.describe_image_scan_findings,
                                    repositoryName=repo, imageId={"imageTag": "v1"}, **args)
        for why, image_id in (("an empty imageId", {}), ("a malformed digest", {"imageDigest": "sha256:12"})):
            with self.subTest(why):
                with self.assertRaises(botocore.exceptions.ClientError) as caught:
                    raw.start_image_scan(repositoryName=repo, imageId=image_id)
                error = caught.exception.response
                self.assertIn(error["Error"]["Code"], ("InvalidParameterException", "ValidationException"), error)
                self.assertEqual(error["ResponseMetadata"]["HTTPStatusCode"], 400, error)
        # The most findings a page may have is 1000.
        self.ecr.describe_image_scan_findings(repositoryName=repo, imageId={"imageTag": "v1"}, maxResults=1000)


class Scans(ScanningTestCase):
    """Scans against the fixture, worked by the server's background scans."""

    def setUp(self):
        import_fixture(self)

    def test_start_scan_and_read_findings(self):
        repo = self.new_repo("scan-manual")
        image = debian_image()
        push(self.ecr, repo, image, tag="v1")
        pushed_at = self.ecr.describe_images(repositoryName=repo)["imageDetails"][0]["imagePushedAt"]
        # Not scanned on push: the repository does not ask for it.
        self.assertEcrError("ScanNotFoundException", self.ecr.describe_image_scan_findings,
                            repositoryName=repo, imageId={"imageTag": "v1"})

        started = self.ecr.start_image_scan(repositoryName=repo, imageId={"imageTag": "v1"})
        self.assertEqual(started["registryId"], self.registry_id())
        self.assertEqual(started["repositoryName"], repo)
        self.assertEqual(started["imageId"], {"imageDigest": image.digest, "imageTag": "v1"})
        self.assertEqual(started["imageScanStatus"]["status"], "IN_PROGRESS")
        early = self.ecr.describe_image_scan_findings(repositoryName=repo, imageId={"imageDigest": image.digest})
        self.assertIn(early["imageScanStatus"]["status"], ("IN_PROGRESS", "COMPLETE"))
        if early["imageScanStatus"]["status"] == "IN_PROGRESS":
            self.assertNotIn("imageScanFindings", early)

        answer = self.wait_complete(repo, imageTag="v1")
        self.assertEqual(answer["registryId"], self.registry_id())
        self.assertEqual(answer["repositoryName"], repo)
        self.assertEqual(answer["imageId"], {"imageDigest": image.digest, "imageTag": "v1"})
        self.assertEqual(answer["imageScanStatus"]["status"], "COMPLETE")
        self.assertIsInstance(answer["imageScanStatus"].get("description", ""), str)
        findings = answer["imageScanFindings"]
        self.assertSummary(findings, {"HIGH": 1}, completed_after=pushed_at)
        # Exactly libssl3's: not zlib1g (at the fix), not bash (removed), nothing of Debian 11,
        # withdrawn or of PyPI.
        self.assertEqual([plain_finding(f) for f in findings["findings"]], [OPENSSL_FINDING])
        self.assertNotIn("nextToken", answer)
        by_digest = self.ecr.describe_image_scan_findings(repositoryName=repo, imageId={"imageDigest": image.digest})
        self.assertEqual(by_digest["imageId"], {"imageDigest": image.digest})
        self.assertEqual(by_digest["imageScanFindings"], findings)

        # DescribeImages carries the summary, without the findings.
        detail = self.ecr.describe_images(repositoryName=repo, imageIds=[{"imageTag": "v1"}])["imageDetails"][0]
        self.assertEqual(detail["imageScanStatus"], answer["imageScanStatus"])
        self.assertEqual(detail["imageScanFindingsSummary"], {
            key: findings[key] for key in ("findingSeverityCounts", "imageScanCompletedAt", "vulnerabilitySourceUpdatedAt")
        })

        # The CLI: its waiter (the scan is complete, so it returns at its first look) and the findings.
        done = ecr.cli_run("wait", "image-scan-complete", "--repository-name", repo, "--image-id", "imageTag=v1")
        self.assertEqual(done.returncode, 0, done.stderr)
        out = ecr.cli("describe-image-scan-findings", "--repository-name", repo, "--image-id", "imageTag=v1")
        self.assertEqual(out["imageScanStatus"]["status"], "COMPLETE")
        self.assertEqual(out["imageScanFindings"]["findingSeverityCounts"], {"HIGH": 1})
        self.assertEqual([plain_finding(f) for f in out["imageScanFindings"]["findings"]], [OPENSSL_FINDING])
        listed = ecr.cli("describe-images", "--repository-name", repo)["imageDetails"][0]
        self.assertEqual(listed["imageScanStatus"]["status"], "COMPLETE")
        self.assertEqual(listed["imageScanFindingsSummary"]["findingSeverityCounts"], {"HIGH": 1})

        # A scan started again completes again, later.
        again = ecr.cli("start-image-scan", "--repository-name", repo, "--image-id", f"imageDigest={image.digest}")
        self.assertEqual(again["imageId"]["imageDigest"], image.digest)
        self.assertEqual(again["imageScanStatus"]["status"], "IN_PROGRESS")
        rescanned = self.wait_complete(repo, imageDigest=image.digest)
        self.assertGreaterEqual(rescanned["imageScanFindings"]["imageScanCompletedAt"], findings["imageScanCompletedAt"])
        self.assertEqual([plain_finding(f) for f in rescanned["imageScanFindings"]["findings"]], [OPENSSL_FINDING])

    def test_findings_pages(self):
        repo = self.new_repo("scan-pages")
        image = debian_image(MANY_STATUS, docker=True)
        push(self.ecr, repo, image, tag="many")
        self.ecr.start_image_scan(repositoryName=repo, imageId={"imageTag": "many"})
        whole = self.wait_complete(repo, imageTag="many")
        self.assertEqual(whole["imageScanFindings"]["findingSeverityCounts"], MANY_COUNTS)
        findings = whole["imageScanFindings"]["findings"]
        self.assertEqual(sorted(row(f) for f in findings), sorted(MANY_FINDINGS))
        self.assertSeverityOrder(findings)
        self.assertNotIn("nextToken", whole)

        # By hand: two a page, each page with the whole summary.
        pages, token = [], None
        while True:
            page = self.ecr.describe_image_scan_findings(
                repositoryName=repo, imageId={"imageTag": "many"}, maxResults=2, **({"nextToken": token} if token else {}))
            pages.append(page)
            self.assertEqual(page["imageScanStatus"]["status"], "COMPLETE")
            self.assertEqual(page["imageScanFindings"]["findingSeverityCounts"], MANY_COUNTS)
            self.assertLessEqual(len(page["imageScanFindings"]["findings"]), 2)
            token = page.get("nextToken")
            if not token:
                break
            self.assertLess(len(pages), 10, "the pages do not end")
        self.assertEqual(len(pages), 3)
        self.assertEqual([f for page in pages for f in page["imageScanFindings"]["findings"]], findings)

        # botocore's paginator, one, four and a thousand a page; and its merged result.
        for size in (1, 4, 1000):
            with self.subTest(page_size=size):
                pages, paged = self.all_findings(repo, size, imageTag="many")
                self.assertEqual(paged, findings)
                self.assertEqual(len(pages), -(-len(findings) // size))
                self.assertNotIn("nextToken", pages[-1])
        merged = self.ecr.get_paginator("describe_image_scan_findings").paginate(
            repositoryName=repo, imageId={"imageDigest": image.digest}, PaginationConfig={"PageSize": 4}
        ).build_full_result()
        self.assertEqual(merged["imageScanFindings"]["findings"], findings)
        self.assertEqual(merged["imageScanStatus"]["status"], "COMPLETE")
        self.assertEqual(merged["imageId"]["imageDigest"], image.digest)

        # The CLI follows the pages itself, and stops at --max-items with a token to go on from.
        out = ecr.cli("describe-image-scan-findings", "--repository-name", repo, "--image-id", "imageTag=many",
                      "--page-size", "2")
        self.assertEqual([row(f) for f in out["imageScanFindings"]["findings"]], [row(f) for f in findings])
        first = ecr.cli("describe-image-scan-findings", "--repository-name", repo, "--image-id", "imageTag=many",
                        "--max-items", "4")
        self.assertEqual([row(f) for f in first["imageScanFindings"]["findings"]], [row(f) for f in findings[:4]])
        rest = ecr.cli("describe-image-scan-findings", "--repository-name", repo, "--image-id", "imageTag=many",
                       "--starting-token", first["NextToken"])
        self.assertEqual([row(f) for f in rest["imageScanFindings"]["findings"]], [row(f) for f in findings[4:]])

    def test_scan_on_push_of_a_repository(self):
        repo = self.new_repo("scan-push", imageScanningConfiguration={"scanOnPush": True})
        # Through /v2 (skopeo) and PutImage.
        self.need_skopeo()
        pushed = debian_image()
        source = pushed.write_oci_layout(os.path.join(self.tempdir(), "image"))
        copied = ecr.skopeo("copy", "--preserve-digests", "--dest-tls-verify=false", source,
                            f"docker://{ecr.HOST}/{repo}:skopeo")
        self.assertEqual(copied.returncode, 0, copied.stderr)
        put = debian_image(MANY_STATUS, docker=True)
        push(self.ecr, repo, put, tag="put")
        # Queued with the push.
        for tag in ("skopeo", "put"):
            self.assertIn(self.scan_status(repo, imageTag=tag)["status"], ("IN_PROGRESS", "COMPLETE"))

        answer = self.wait_complete(repo, imageTag="skopeo")
        self.assertEqual(answer["imageId"]["imageDigest"], pushed.digest)
        self.assertEqual([plain_finding(f) for f in answer["imageScanFindings"]["findings"]], [OPENSSL_FINDING])
        answer = self.wait_complete(repo, imageTag="put")
        self.assertEqual(answer["imageScanFindings"]["findingSeverityCounts"], MANY_COUNTS)
        details = {d["imageDigest"]: d for d in self.ecr.describe_images(repositoryName=repo)["imageDetails"]}
        self.assertEqual(details[pushed.digest]["imageScanFindingsSummary"]["findingSeverityCounts"], {"HIGH": 1})
        self.assertEqual(details[put.digest]["imageScanFindingsSummary"]["findingSeverityCounts"], MANY_COUNTS)

        # Tagging an image already there is no new push: it is not scanned again.
        completed = answer["imageScanFindings"]["imageScanCompletedAt"]
        ecr.put_image(self.ecr, repo, put.manifest, "again", put.media_type)
        self.assertEqual(self.scan_status(repo, imageTag="again")["status"], "COMPLETE")
        self.assertEqual(self.ecr.describe_image_scan_findings(repositoryName=repo, imageId={"imageTag": "again"})
                         ["imageScanFindings"]["imageScanCompletedAt"], completed)

        # Turned off: a new image is not scanned.
        self.ecr.put_image_scanning_configuration(repositoryName=repo, imageScanningConfiguration={"scanOnPush": False})
        later = debian_image()
        push(self.ecr, repo, later, tag="later")
        self.assertEcrError("ScanNotFoundException", self.ecr.describe_image_scan_findings,
                            repositoryName=repo, imageId={"imageTag": "later"})

    def test_scan_on_push_by_a_registry_rule(self):
        self.keep_registry_configuration()
        prefix = ecr.repo_name("scan-rule")
        self.ecr.put_registry_scanning_configuration(scanType="BASIC", rules=[
            {"scanFrequency": "SCAN_ON_PUSH", "repositoryFilters": [{"filter": f"{prefix}/prod-*", "filterType": "WILDCARD"}]},
            {"scanFrequency": "MANUAL", "repositoryFilters": [{"filter": f"{prefix}/*", "filterType": "WILDCARD"}]},
        ])
        prod, dev = f"{prefix}/prod-web", f"{prefix}/dev-web"
        self.ecr.create_repository(repositoryName=prod)
        self.ecr.create_repository(repositoryName=dev)
        image = debian_image()
        push(self.ecr, prod, image, tag="1")
        push(self.ecr, dev, image, tag="1")
        pushed = [prod]
        if ecr.CREATE_ON_PUSH:
            # A repository a /v2 push creates is scanned by the rule too.
            self.need_skopeo()
            created = f"{prefix}/prod-created"
            source = image.write_oci_layout(os.path.join(self.tempdir(), "image"))
            copied = ecr.skopeo("copy", "--preserve-digests", "--dest-tls-verify=false", source,
                                f"docker://{ecr.HOST}/{created}:1")
            self.assertEqual(copied.returncode, 0, copied.stderr)
            pushed.append(created)
        for repo in pushed:
            with self.subTest(repo):
                answer = self.wait_complete(repo, imageTag="1")
                self.assertEqual([plain_finding(f) for f in answer["imageScanFindings"]["findings"]], [OPENSSL_FINDING])
        # The MANUAL rule's repository is not scanned on push, but on demand.
        self.assertEcrError("ScanNotFoundException", self.ecr.describe_image_scan_findings,
                            repositoryName=dev, imageId={"imageTag": "1"})
        self.assertNotIn("imageScanStatus", self.ecr.describe_images(repositoryName=dev)["imageDetails"][0])
        self.ecr.start_image_scan(repositoryName=dev, imageId={"imageTag": "1"})
        self.assertEqual(self.wait_complete(dev, imageTag="1")["imageScanFindings"]["findingSeverityCounts"], {"HIGH": 1})

    def test_images_that_cannot_be_scanned(self):
        repo = self.new_repo("scan-odd")
        sources = {line.split("\t")[0] for line in ecr.run_wharf("vulndb", "list").splitlines()}
        unimported = [d for d in DISTRIBUTIONS if d[0] not in sources]
        images = {
            # No os-release.
            "scratch": LayeredImage(layer({"app": "#!/bin/true\n"})),
            # A distribution Wharf does not scan (an uncompressed layer).
            "fedora": LayeredImage(layer({"etc/os-release": 'ID=fedora\nVERSION_ID="40"\n'}, compress=False)),
            # Not gzip at all, though it says so.
            "corrupt": LayeredImage(b"\x1f\x8b\x08\x00 not really gzip"),
        }
        if unimported:
            _, os_id, version = unimported[0]
            images["unimported"] = LayeredImage(layer({"etc/os-release": f'ID={os_id}\nVERSION_ID="{version}"\n'}))
        for tag, image in images.items():
            push(self.ecr, repo, image, tag=tag)
            self.ecr.start_image_scan(repositoryName=repo, imageId={"imageTag": tag})

        expected = {"scratch": "UNSUPPORTED_IMAGE", "fedora": "UNSUPPORTED_IMAGE", "corrupt": "FAILED",
                    "unimported": "FINDINGS_UNAVAILABLE"}
        for tag in images:
            with self.subTest(tag):
                answer = self.wait_ended(repo, imageTag=tag)
                status = answer["imageScanStatus"]
                self.assertEqual(status["status"], expected[tag], answer)
                self.assertTrue(status.get("description", "").strip(), answer)
                self.assertNotIn("imageScanFindings", answer)
                detail = self.ecr.describe_images(repositoryName=repo, imageIds=[{"imageTag": tag}])["imageDetails"][0]
                self.assertEqual(detail["imageScanStatus"], status)
                self.assertNotIn("imageScanFindingsSummary", detail)
        # botocore's waiter stops at FAILED.
        with self.assertRaises(botocore.exceptions.WaiterError) as caught:
            self.ecr.get_waiter("image_scan_complete").wait(
                repositoryName=repo, imageId={"imageTag": "corrupt"}, WaiterConfig={"Delay": 1, "MaxAttempts": 3})
        self.assertIn("terminal failure state", str(caught.exception))
        done = ecr.cli_run("wait", "image-scan-complete", "--repository-name", repo, "--image-id", "imageTag=corrupt")
        self.assertNotEqual(done.returncode, 0, done.stdout)
        self.assertIn("failure state", done.stderr)

    def test_new_advisories_replace_the_old_until_rescanned(self):
        repo = self.new_repo("scan-reimport")
        image = debian_image()
        push(self.ecr, repo, image, tag="v1")
        self.ecr.start_image_scan(repositoryName=repo, imageId={"imageTag": "v1"})
        before = self.wait_complete(repo, imageTag="v1")
        self.assertEqual([f["name"] for f in before["imageScanFindings"]["findings"]], ["CVE-2024-90001"])

        # A newer Debian database replaces the fixture (and the fixture comes back after the test).
        forget_fixture()
        self.addCleanup(lambda: (forget_fixture(), import_fixture(self)))
        time.sleep(0.01)  # import times are in milliseconds
        out = ecr.run_wharf("vulndb", "import", *write_osv(self.tempdir(), NEWER))
        self.assertRegex(out, r"(?m)^Debian: 1 advisory \(replacing earlier imports\)$")
        self.assertRegex(out, r"(?m)^imported 1 records: 1 kept, 0 withdrawn, 0 about no distribution scanned$")
        self.assertRegex(ecr.run_wharf("vulndb", "list"), r"(?m)^Debian\t1 advisories\timported \S+$")

        # The scan stands until the image is scanned again, and says its findings are stale.
        stale = self.ecr.describe_image_scan_findings(repositoryName=repo, imageId={"imageTag": "v1"})
        self.assertEqual(stale["imageScanStatus"]["status"], "COMPLETE")
        self.assertIn("stale", stale["imageScanStatus"]["description"])
        self.assertEqual(stale["imageScanFindings"], before["imageScanFindings"])

        self.ecr.start_image_scan(repositoryName=repo, imageId={"imageTag": "v1"})
        after = self.wait_complete(repo, imageTag="v1")
        self.assertNotIn("stale", after["imageScanStatus"].get("description", ""))
        self.assertEqual([row(f) for f in after["imageScanFindings"]["findings"]],
                         [("CVE-2024-90002", "CRITICAL", "zlib1g", "1:1.2.13.dfsg-1")])
        self.assertEqual(after["imageScanFindings"]["findingSeverityCounts"], {"CRITICAL": 1})
        self.assertGreater(after["imageScanFindings"]["vulnerabilitySourceUpdatedAt"],
                           before["imageScanFindings"]["vulnerabilitySourceUpdatedAt"])

        # The fixture again, and every scanned image scanned again with it by the CLI itself.
        directory = self.tempdir()
        paths = write_osv(directory, FIXTURE)
        out = ecr.run_wharf("vulndb", "import", "--rescan", *paths)
        self.assertRegex(out, r"(?m)^queued [1-9][0-9]* images for a new scan; scanned here: ")
        _imported["output"] = out
        again = self.wait_complete(repo, imageTag="v1")
        self.assertEqual([plain_finding(f) for f in again["imageScanFindings"]["findings"]], [OPENSSL_FINDING])

    def test_vulndb_cli(self):
        forget_fixture()
        out = import_fixture(self)
        self.assertRegex(out, rf"(?m)^Debian: {FIXTURE_KEPT} advisories \(replacing earlier imports\)$")
        self.assertRegex(out, rf"(?m)^imported {FIXTURE_RECORDS} records: {FIXTURE_KEPT} kept, "
                              rf"{FIXTURE_WITHDRAWN} withdrawn, {FIXTURE_UNRELATED} about no distribution scanned$")
        listed = ecr.run_wharf("vulndb", "list")
        found = re.search(rf"(?m)^Debian\t{FIXTURE_KEPT} advisories\timported (\S+)$", listed)
        self.assertTrue(found, listed)
        self.assertRecent(datetime.datetime.fromisoformat(found.group(1).replace("Z", "+00:00")))

        # An import that cannot be read changes nothing.
        directory = self.tempdir()
        write_osv(directory, NEWER)
        with open(os.path.join(directory, "osv", "Debian", "zz-broken.json"), "w") as f:
            f.write("{ not json")
        failed = ecr.wharf("vulndb", "import", os.path.join(directory, "osv"))
        self.assertNotEqual(failed.returncode, 0, failed.stdout)
        self.assertIn("zz-broken.json", failed.stderr)
        self.assertRegex(ecr.run_wharf("vulndb", "list"), rf"(?m)^Debian\t{FIXTURE_KEPT} advisories\t")
        missing = ecr.wharf("vulndb", "import", os.path.join(directory, "no-such-file.zip"))
        self.assertNotEqual(missing.returncode, 0, missing.stdout)

    def test_wharf_scan_cli(self):
        repo = self.new_repo("scan-cli")
        image = debian_image(MANY_STATUS)
        push(self.ecr, repo, image, tag="v1")

        done = ecr.wharf("scan", f"{repo}:v1", "--json")
        self.assertEqual(done.returncode, 0, done.stderr)
        scanned = json.loads(done.stdout)
        self.assertEqual(scanned["repositoryName"], repo)
        self.assertEqual(scanned["imageId"]["imageDigest"], image.digest)
        self.assertEqual(scanned["imageScanStatus"]["status"], "COMPLETE")
        self.assertEqual(scanned["imageScanFindings"]["findingSeverityCounts"], MANY_COUNTS)
        # The scan is the server's too, done: the same findings through the ECR API.
        answer = self.ecr.describe_image_scan_findings(repositoryName=repo, imageId={"imageTag": "v1"})
        self.assertEqual(answer["imageScanStatus"]["status"], "COMPLETE")
        findings = answer["imageScanFindings"]["findings"]
        self.assertEqual([plain_finding(f) for f in scanned["imageScanFindings"]["findings"]],
                         [plain_finding(f) for f in findings])
        self.assertEqual(sorted(row(f) for f in findings), sorted(MANY_FINDINGS))

        # The table.
        done = ecr.wharf("scan", f"{repo}@{image.digest}")
        self.assertEqual(done.returncode, 0, done.stderr)
        lines = done.stdout.splitlines()
        self.assertEqual(lines[0], f"{repo}@{image.digest}: COMPLETE")
        self.assertEqual(lines[1].split(), ["SEVERITY", "NAME", "PACKAGE", "VERSION", "CVSS"])
        self.assertEqual(lines[2].split(), ["CRITICAL", "CVE-2024-90011", "curl", "7.88.1-10+deb12u5", "9.8"])
        self.assertIn(["UNDEFINED", "CVE-2024-90014", "sed", "4.9-1"], [line.split() for line in lines])
        self.assertTrue(lines[-1].startswith("6 findings: "), lines[-1])
        self.assertCountEqual(lines[-1].split(": ", 1)[1].split(", "),
                              [f"{severity} {count}" for severity, count in MANY_COUNTS.items()])

        # An image of no distribution is scanned too, and says why it has no findings.
        scratch = LayeredImage(layer({"app": "#!/bin/true\n"}))
        push(self.ecr, repo, scratch, tag="scratch")
        done = ecr.wharf("scan", f"{repo}:scratch")
        self.assertEqual(done.returncode, 0, done.stderr)
        self.assertEqual(done.stdout.splitlines()[0], f"{repo}@{scratch.digest}: UNSUPPORTED_IMAGE")
        self.assertEqual(self.scan_status(repo, imageTag="scratch")["status"], "UNSUPPORTED_IMAGE")

        for bad in (f"{repo}:nope", f"{ecr.repo_name('scan-cli-missing')}:v1", repo):
            with self.subTest(bad):
                refused = ecr.wharf("scan", bad)
                self.assertNotEqual(refused.returncode, 0, refused.stdout)
                self.assertTrue(refused.stderr.strip())


@unittest.skipUnless(ecr.AUTH, "auth is off on this server (these tests run against the --auth true server)")
class ScanPermissions(ScanningTestCase):
    def test_reading_findings_is_not_starting_scans(self):
        self.need_wharf_cli()
        repo = self.new_repo("scan-reader")
        push(self.ecr, repo, ecr.Image(), tag="v1")
        self.ecr.start_image_scan(repositoryName=repo, imageId={"imageTag": "v1"})
        user = f"ecr-scan-reader-{ecr.RUN}-{uuid.uuid4().hex[:6]}"
        ecr.run_wharf("user", "create", user, "--password", uuid.uuid4().hex)
        self.addCleanup(ecr.run_wharf, "user", "delete", user)
        path = os.path.join(self.tempdir(), "policy.json")
        with open(path, "w") as f:
            json.dump({"Version": "2012-10-17", "Statement": [{
                "Effect": "Allow",
                "Action": ["ecr:DescribeImageScanFindings", "ecr:DescribeImages", "ecr:GetRegistryScanningConfiguration"],
                "Resource": "*",
            }]}, f)
        ecr.run_wharf("policy", "set", "--user", user, path)
        reader = ecr.client(*ecr.create_key(user))

        status = reader.describe_image_scan_findings(repositoryName=repo, imageId={"imageTag": "v1"})["imageScanStatus"]
        self.assertIn(status["status"], ("IN_PROGRESS", "UNSUPPORTED_IMAGE"))
        reader.get_registry_scanning_configuration()
        self.assertEcrError("AccessDeniedException", reader.start_image_scan, repositoryName=repo, imageId={"imageTag": "v1"})
        self.assertEcrError("AccessDeniedException", reader.put_registry_scanning_configuration, scanType="BASIC", rules=[])
        self.assertEcrError("AccessDeniedException", reader.batch_get_repository_scanning_configuration, repositoryNames=[repo])
        self.assertEcrError("AccessDeniedException", reader.put_image_scanning_configuration,
                            repositoryName=repo, imageScanningConfiguration={"scanOnPush": True})
