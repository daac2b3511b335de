"""Shared set-up of the ECR API suite: the server under test, clients, images and assertions.

The suite drives Wharf's Amazon ECR API (`POST /`, AWS JSON 1.1, SigV4) the way users do: with the
`aws` CLI and boto3 from the venv the runner uses, plus skopeo and plain HTTP for the /v2 side.

Environment (tests/ecr/run.sh sets it):
  WHARF_URL                 base URL of the server (required)
  WHARF_ECR_AUTH=1          the server runs with --auth true; the auth tests run only then
  WHARF_ECR_KEY_ID / _SECRET  an access key of `admin` (with auth off any credentials work)
  WHARF_BIN, WHARF_ADMIN_ARGS  the wharf binary and the arguments naming its database
                            (`--data-dir D [--database-url U]`), to create users, keys, policies
  WHARF_ECR_REGISTRY_ID     the --registry-id the server was given (optional)
  WHARF_ECR_REGION          the --region the server was given (default us-east-1)
  WHARF_ECR_CREATE_ON_PUSH  the --create-on-push the server was given (default true)
  CI=true                   a missing tool or setting fails the test instead of skipping it
"""

import base64
import datetime
import gzip
import hashlib
import io
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import tarfile
import tempfile
import unittest
import urllib.error
import urllib.request
import uuid
from urllib.parse import urlsplit

import boto3
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.config import Config
from botocore.credentials import Credentials
from botocore.exceptions import ClientError

# The test script exports Garage's AWS_* settings for S3, and a developer's machine may have a
# profile or config of its own: neither boto3 nor the CLI may see them. Every client here gets its
# endpoint, region and credentials explicitly. The `wharf` commands keep them: with S3 storage
# they read the server's bucket.
_WHARF_AWS = {name: os.environ.pop(name) for name in [n for n in os.environ if n.startswith("AWS_")]}
os.environ.update(AWS_CONFIG_FILE=os.devnull, AWS_SHARED_CREDENTIALS_FILE=os.devnull, AWS_EC2_METADATA_DISABLED="true")

URL = os.environ.get("WHARF_URL", "").rstrip("/")
if not URL:
    sys.exit("WHARF_URL is not set: run the suite through tests/ecr/run.sh URL LABEL")
HOST = urlsplit(URL).netloc
REGION = os.environ.get("WHARF_ECR_REGION", "us-east-1")
AUTH = os.environ.get("WHARF_ECR_AUTH", "") in ("1", "true")
KEY_ID = os.environ.get("WHARF_ECR_KEY_ID") or "AKIAWHARFTESTDUMMY00"
SECRET = os.environ.get("WHARF_ECR_SECRET") or "dummy-secret-any-signature-is-fine"
REGISTRY_ID = os.environ.get("WHARF_ECR_REGISTRY_ID") or None
CREATE_ON_PUSH = os.environ.get("WHARF_ECR_CREATE_ON_PUSH", "true").lower() != "false"
WHARF_BIN = os.environ.get("WHARF_BIN") or None
WHARF_ADMIN_ARGS = shlex.split(os.environ.get("WHARF_ADMIN_ARGS", ""))
IN_CI = os.environ.get("CI", "").lower() in ("true", "1")
TARGET_PREFIX = "AmazonEC2ContainerRegistry_V20150921."
RUN = uuid.uuid4().hex[:6]  # names of this run, so that reruns against one server never collide

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER = "application/vnd.oci.image.layer.v1.tar+gzip"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
DOCKER_CONFIG = "application/vnd.docker.container.image.v1+json"
DOCKER_LAYER = "application/vnd.docker.image.rootfs.diff.tar.gzip"
OCI_EMPTY = "application/vnd.oci.empty.v1+json"


def sha256(data):
    return "sha256:" + hashlib.sha256(data).hexdigest()


def repo_name(label="repo"):
    """A repository name no other test (or earlier run against the same server) uses."""
    return f"ecr-suite/{label}-{RUN}-{uuid.uuid4().hex[:8]}"


# ---------------------------------------------------------------------------------------------
# clients


def client(key_id=KEY_ID, secret=SECRET, **config):
    """A boto3 ECR client for the server; retries off, so an error is seen as the server sent it."""
    config.setdefault("retries", {"mode": "standard", "total_max_attempts": 1})
    return boto3.client(
        "ecr",
        endpoint_url=URL,
        region_name=REGION,
        aws_access_key_id=key_id,
        aws_secret_access_key=secret,
        config=Config(**config),
    )


def unvalidated_client():
    """boto3 without client-side parameter validation, to send what the model forbids."""
    return client(parameter_validation=False)


def aws_cli_path():
    beside = os.path.join(os.path.dirname(sys.executable), "aws")
    return beside if os.path.exists(beside) else shutil.which("aws")


def cli_env(key_id=KEY_ID, secret=SECRET):
    env = dict(os.environ)
    env.update(
        AWS_ACCESS_KEY_ID=key_id,
        AWS_SECRET_ACCESS_KEY=secret,
        AWS_MAX_ATTEMPTS="1",
        AWS_RETRY_MODE="standard",
        AWS_PAGER="",
    )
    return env


def cli_run(*args, input=None):
    """Runs `aws ecr ARGS… --endpoint-url URL --region REGION --output json`."""
    command = [aws_cli_path(), "ecr", *args, "--endpoint-url", URL, "--region", REGION, "--output", "json"]
    return subprocess.run(command, env=cli_env(), input=input, capture_output=True, text=True, timeout=120)


def cli(*args):
    """`aws ecr ARGS…`, which must succeed; its JSON output parsed (None when it printed nothing)."""
    done = cli_run(*args)
    if done.returncode != 0:
        raise AssertionError(f"aws ecr {shlex.join(args)} failed ({done.returncode}): {done.stderr.strip()}")
    out = done.stdout.strip()
    return json.loads(out) if out.startswith(("{", "[")) else (out or None)


def skopeo_path():
    return shutil.which("skopeo")


def wharf(*args, input=None, timeout=120):
    """`wharf ADMIN_ARGS… ARGS…` against the server's database and storage (with the AWS_*
    settings of its storage), which may fail; the CompletedProcess."""
    return subprocess.run(
        [WHARF_BIN, *WHARF_ADMIN_ARGS, *args], input=input, capture_output=True, text=True, timeout=timeout,
        env={**os.environ, **_WHARF_AWS},
    )


def run_wharf(*args, input=None):
    """`wharf ADMIN_ARGS… ARGS…`, which must succeed; its standard output."""
    done = wharf(*args, input=input)
    if done.returncode != 0:
        raise AssertionError(f"wharf {shlex.join(args)} failed: {done.stderr.strip()} {done.stdout.strip()}")
    return done.stdout


def create_key(user):
    """`wharf key create --user USER`: (access key id, secret)."""
    out = run_wharf("key", "create", "--user", user)
    key_id = re.search(r"access key id:\s*(\S+)", out)
    secret = re.search(r"secret access key:\s*(\S+)", out)
    if not key_id or not secret:
        raise AssertionError(f"cannot read the key from `wharf key create`: {out!r}")
    return key_id.group(1), secret.group(1)


_login_password = None


def login_password():
    """The password of GetAuthorizationToken (user AWS), fetched once with the admin key."""
    global _login_password
    if _login_password is None:
        token = client().get_authorization_token()["authorizationData"][0]["authorizationToken"]
        user, _, _login_password = base64.b64decode(token).decode().partition(":")
        assert user == "AWS", token
    return _login_password


# ---------------------------------------------------------------------------------------------
# plain HTTP


class Response:
    def __init__(self, status, headers, body):
        self.status, self.headers, self.body = status, headers, body

    def json(self):
        return json.loads(self.body)

    def __repr__(self):
        return f"<{self.status} {dict(self.headers)} {self.body[:500]!r}>"


def http(method, url, body=None, headers=None, basic=None):
    """One HTTP exchange with urllib (no redirects followed for non-GET); errors are answers too."""
    headers = dict(headers or {})
    if basic:
        headers["Authorization"] = "Basic " + base64.b64encode(basic.encode()).decode()
    if not url.startswith("http"):
        url = URL + url
    request = urllib.request.Request(url, data=body, headers=headers, method=method)
    try:
        with urllib.request.urlopen(request, timeout=60) as answer:
            return Response(answer.status, answer.headers, answer.read())
    except urllib.error.HTTPError as error:
        return Response(error.code, error.headers, error.read())


def v2(method, path, body=None, headers=None):
    """A /v2 request, with Basic AWS:<login password> when auth is on."""
    return http(method, "/v2/" + path, body, headers, basic=("AWS:" + login_password()) if AUTH else None)


def raw_ecr(operation, body=b"{}", key_id=KEY_ID, secret=SECRET, sign=True, target=None):
    """`POST /` with X-Amz-Target …V20150921.OPERATION, SigV4-signed unless sign=False."""
    if isinstance(body, (dict, list)):
        body = json.dumps(body).encode()
    request = AWSRequest(
        method="POST",
        url=URL + "/",
        data=body,
        headers={
            "X-Amz-Target": target or TARGET_PREFIX + operation,
            "Content-Type": "application/x-amz-json-1.1",
        },
    )
    if sign:
        SigV4Auth(Credentials(key_id, secret), "ecr", REGION).add_auth(request)
    prepared = request.prepare()
    return http("POST", prepared.url, prepared.body, dict(prepared.headers.items()))


# ---------------------------------------------------------------------------------------------
# images


def tar_gz(files):
    """A gzipped tar of {name: bytes}, deterministic; (compressed, uncompressed)."""
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size, info.mtime, info.mode = len(data), 0, 0o644
            tar.addfile(info, io.BytesIO(data))
    plain = raw.getvalue()
    return gzip.compress(plain, mtime=0), plain


class Image:
    """A small single-platform image built in memory, unique unless `seed` repeats.

    `manifest` is the exact manifest text (its digest is `digest`); `blobs` maps digest → bytes.
    """

    def __init__(self, docker=False, layers=1, seed=None):
        seed = seed or uuid.uuid4().hex
        self.blobs = {}
        self.layers = []
        diff_ids = []
        for i in range(layers):
            compressed, plain = tar_gz({f"hello-{i}.txt": f"{seed} layer {i}\n".encode()})
            self.blobs[sha256(compressed)] = compressed
            diff_ids.append(sha256(plain))
            self.layers.append(
                {"mediaType": DOCKER_LAYER if docker else OCI_LAYER, "digest": sha256(compressed), "size": len(compressed)}
            )
        config = json.dumps(
            {
                "architecture": "amd64",
                "os": "linux",
                "config": {"Labels": {"seed": seed}},
                "rootfs": {"type": "layers", "diff_ids": diff_ids},
            },
            sort_keys=True,
        ).encode()
        self.config = config
        self.blobs[sha256(config)] = config
        self.config_media_type = DOCKER_CONFIG if docker else OCI_CONFIG
        manifest = {
            "schemaVersion": 2,
            "mediaType": DOCKER_MANIFEST if docker else OCI_MANIFEST,
            "config": {"mediaType": self.config_media_type, "digest": sha256(config), "size": len(config)},
            "layers": self.layers,
        }
        self.media_type = manifest["mediaType"]
        self.manifest = json.dumps(manifest, indent=2)
        self.digest = sha256(self.manifest.encode())
        self.size = len(self.manifest.encode())
        self.layers_size = sum(layer["size"] for layer in self.layers)

    def descriptor(self):
        return {"mediaType": self.media_type, "digest": self.digest, "size": self.size}

    def write_oci_layout(self, directory, ref="latest"):
        """An OCI image layout at DIRECTORY holding this image as REF (for `skopeo copy oci:DIR:REF`)."""
        os.makedirs(os.path.join(directory, "blobs", "sha256"), exist_ok=True)
        for digest, data in list(self.blobs.items()) + [(self.digest, self.manifest.encode())]:
            with open(os.path.join(directory, "blobs", "sha256", digest.split(":")[1]), "wb") as f:
                f.write(data)
        with open(os.path.join(directory, "oci-layout"), "w") as f:
            json.dump({"imageLayoutVersion": "1.0.0"}, f)
        index = {
            "schemaVersion": 2,
            "mediaType": OCI_INDEX,
            "manifests": [dict(self.descriptor(), annotations={"org.opencontainers.image.ref.name": ref})],
        }
        with open(os.path.join(directory, "index.json"), "w") as f:
            json.dump(index, f)
        return f"oci:{directory}:{ref}"


def index_of(*images, docker=False):
    """The exact text of an image index (or Docker manifest list) listing IMAGES, and its digest."""
    manifests = [dict(image.descriptor(), platform={"architecture": arch, "os": "linux"})
                 for image, arch in zip(images, ["amd64", "arm64", "s390x", "ppc64le"])]
    text = json.dumps({"schemaVersion": 2, "mediaType": DOCKER_LIST if docker else OCI_INDEX, "manifests": manifests})
    return text, sha256(text.encode())


def upload_blob(ecr, repo, data, parts=1):
    """Uploads DATA through InitiateLayerUpload / UploadLayerPart / CompleteLayerUpload; its digest."""
    upload_id = ecr.initiate_layer_upload(repositoryName=repo)["uploadId"]
    step = max(1, -(-len(data) // parts))
    for first in range(0, len(data), step):
        chunk = data[first:first + step]
        ecr.upload_layer_part(
            repositoryName=repo, uploadId=upload_id, partFirstByte=first,
            partLastByte=first + len(chunk) - 1, layerPartBlob=chunk,
        )
    answer = ecr.complete_layer_upload(repositoryName=repo, uploadId=upload_id, layerDigests=[sha256(data)])
    return answer["layerDigest"]


def push_blobs(ecr, repo, image):
    for data in image.blobs.values():
        upload_blob(ecr, repo, data)


def push_image(ecr, repo, image, tag=None, media_type=True):
    """Pushes IMAGE entirely through the ECR API; PutImage's answer."""
    push_blobs(ecr, repo, image)
    return put_image(ecr, repo, image.manifest, tag, image.media_type if media_type else None)


def put_image(ecr, repo, manifest, tag=None, media_type=None, **extra):
    args = dict(repositoryName=repo, imageManifest=manifest, **extra)
    if tag:
        args["imageTag"] = tag
    if media_type:
        args["imageManifestMediaType"] = media_type
    return ecr.put_image(**args)


# ---------------------------------------------------------------------------------------------
# skopeo


def skopeo(*args, creds=True):
    """Runs skopeo with credentials for the destination/source when auth is on; CompletedProcess."""
    command = [skopeo_path(), *args]
    if AUTH and creds and args and args[0] == "copy":
        command[2:2] = ["--src-creds", "AWS:" + login_password(), "--dest-creds", "AWS:" + login_password()]
    return subprocess.run(command, capture_output=True, text=True, timeout=120)


# ---------------------------------------------------------------------------------------------
# test base


class EcrTestCase(unittest.TestCase):
    maxDiff = 4000

    @classmethod
    def setUpClass(cls):
        cls.ecr = client()

    def need(self, condition, why):
        """Skips (fails under CI=true) when a prerequisite of the test is missing."""
        if not condition:
            if IN_CI:
                self.fail(f"required under CI: {why}")
            self.skipTest(why)

    def need_skopeo(self):
        self.need(skopeo_path(), "skopeo is not installed")

    def need_wharf_cli(self):
        self.need(WHARF_BIN and WHARF_ADMIN_ARGS, "WHARF_BIN / WHARF_ADMIN_ARGS are not set")

    def tempdir(self):
        path = tempfile.mkdtemp(prefix="wharf-ecr-")
        self.addCleanup(shutil.rmtree, path, True)
        return path

    def new_repo(self, label="repo", **create):
        name = repo_name(label)
        self.ecr.create_repository(repositoryName=name, **create)
        return name

    def assertEcrError(self, code, call, *args, status=400, **kwargs):
        """CALL(*ARGS, **KWARGS) must fail with the ECR error CODE (and HTTP STATUS); the error."""
        with self.assertRaises(ClientError) as caught:
            call(*args, **kwargs)
        error = caught.exception.response
        self.assertEqual(error["Error"]["Code"], code, error)
        if status is not None:
            self.assertEqual(error["ResponseMetadata"]["HTTPStatusCode"], status, error)
        self.assertTrue(error["Error"].get("Message"), f"{code} without a message: {error}")
        return error

    def assertCliError(self, code, *args):
        done = cli_run(*args)
        self.assertNotEqual(done.returncode, 0, f"aws ecr {shlex.join(args)} succeeded: {done.stdout}")
        self.assertIn(f"({code})", done.stderr)
        return done.stderr

    def assertRecent(self, when, slack=300):
        self.assertIsInstance(when, datetime.datetime)
        self.assertIsNotNone(when.tzinfo)
        now = datetime.datetime.now(datetime.timezone.utc)
        self.assertLess(abs((when - now).total_seconds()), slack, f"{when} is not close to {now}")

    def registry_id(self):
        return self.ecr.describe_registry()["registryId"]
