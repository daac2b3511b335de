#!/usr/bin/env python3
"""Client side of scripts/bench.sh: one measurement per invocation, printed as one JSON line.

Standard library only. Every command talks to one registry (`--url`). Payloads are random and
generated before the clock starts, distinct per call, so neither a registry nor Garage (which
deduplicates blocks) can skip work because it has seen the bytes before. A failed measurement
prints {"error": ...} and exits 0, so one registry's failure does not end the run; `report`
shows it.

  push-mono    URL REPO SIZE --state FILE   POST, then PUT ?digest= with the whole body
  push-chunked URL REPO SIZE CHUNK          POST, PATCHes with Content-Range, PUT ?digest=
  pull         URL REPO --state FILE        GET the blob push-mono pushed, bytes counted
  seed         URL REPO --manifest FILE     config + layer blobs, manifest tagged `latest`
  make-tags    URL REPO COUNT               PUT one manifest under COUNT tags, 16 clients
  walk-tags    URL REPO                     follow the tags list's Link headers, n=100
  push-images  URL REPO IMAGES              IMAGES images at once, 10 layers each
  report       SAMPLES                      medians and ratios, one table per backend pair
"""

import argparse
import concurrent.futures
import hashlib
import http.client
import json
import os
import statistics
import sys
import time
import urllib.parse

MB = 1_000_000  # throughput is in MB/s (10^6 bytes), as disks and networks count
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
BUFFER = 1 << 20  # 1 MiB reads and writes keep the client's CPU cost out of the way


class Failure(Exception):
    pass


class Registry:
    """One keep-alive connection to a registry; requests follow the spec's upload flow."""

    def __init__(self, url):
        parsed = urllib.parse.urlsplit(url)
        self.host, self.port = parsed.hostname, parsed.port
        self.conn = http.client.HTTPConnection(self.host, self.port, timeout=600, blocksize=BUFFER)

    def request(self, method, target, body=None, headers=None, expect=(200,)):
        self.conn.request(method, target, body=body, headers=headers or {})
        response = self.conn.getresponse()
        data = response.read()
        if response.status not in expect:
            raise Failure(f"{method} {target.split('?')[0]}: {response.status} {data[:200]!r}")
        return response, data

    @staticmethod
    def target(location, **query):
        """The path and query of a Location (Distribution answers with absolute URLs and
        changes the `_state` parameter on every PATCH), with extra query parameters."""
        parts = urllib.parse.urlsplit(location)
        extra = urllib.parse.urlencode(query)
        query_string = "&".join(q for q in (parts.query, extra) if q)
        return parts.path + ("?" + query_string if query_string else "")

    def start_upload(self, repo):
        response, _ = self.request("POST", f"/v2/{repo}/blobs/uploads/", expect=(202,))
        return response.getheader("Location")

    def push_blob(self, repo, data, digest):
        """Monolithic push: POST, then PUT with the body. Returns the seconds from the last
        byte handed to the kernel to the response, the time the registry spends finishing."""
        location = self.start_upload(repo)
        target = self.target(location, digest=digest)
        self.conn.putrequest("PUT", target)
        self.conn.putheader("Content-Type", "application/octet-stream")
        self.conn.putheader("Content-Length", str(len(data)))
        self.conn.endheaders()
        self.conn.sock.sendall(data)
        sent = time.perf_counter()
        response = self.conn.getresponse()
        body = response.read()
        finished = time.perf_counter()
        if response.status != 201:
            raise Failure(f"PUT blob: {response.status} {body[:200]!r}")
        return finished - sent

    def put_manifest(self, repo, reference, body):
        self.request("PUT", f"/v2/{repo}/manifests/{reference}", body=body,
                     headers={"Content-Type": OCI_MANIFEST}, expect=(201,))


def random_blob(size):
    data = os.urandom(size)
    return data, "sha256:" + hashlib.sha256(data).hexdigest()


def manifest_for(config, layers):
    """A small valid OCI image manifest; `config` and `layers` are (data, digest) pairs."""
    return json.dumps({
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                   "digest": config[1], "size": len(config[0])},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
                    "digest": digest, "size": len(data)} for data, digest in layers],
    }, separators=(",", ":")).encode()


def random_config():
    """An image config, unique per call, with its digest."""
    data = json.dumps({"architecture": "amd64", "os": "linux",
                       "rootfs": {"type": "layers", "diff_ids": []},
                       "config": {"Labels": {"bench": os.urandom(8).hex()}}}).encode()
    return data, "sha256:" + hashlib.sha256(data).hexdigest()


def push_mono(args):
    data, digest = random_blob(args.size)
    registry = Registry(args.url)
    start = time.perf_counter()
    finish = registry.push_blob(args.repo, data, digest)
    seconds = time.perf_counter() - start
    with open(args.state, "w") as f:
        json.dump({"digest": digest, "size": len(data)}, f)
    return {"bytes": len(data), "seconds": seconds, "mbps": len(data) / seconds / MB,
            "finish_ms": finish * 1000}


def push_chunked(args):
    data, digest = random_blob(args.size)
    view = memoryview(data)
    registry = Registry(args.url)
    start = time.perf_counter()
    location = registry.start_upload(args.repo)
    for offset in range(0, len(data), args.chunk):
        chunk = view[offset:offset + args.chunk]
        response, _ = registry.request(
            "PATCH", registry.target(location), body=chunk, expect=(202,),
            headers={"Content-Type": "application/octet-stream",
                     "Content-Range": f"{offset}-{offset + len(chunk) - 1}"})
        location = response.getheader("Location")
    finish_start = time.perf_counter()
    registry.request("PUT", registry.target(location, digest=digest), expect=(201,))
    end = time.perf_counter()
    seconds = end - start
    return {"bytes": len(data), "seconds": seconds, "mbps": len(data) / seconds / MB,
            "finish_ms": (end - finish_start) * 1000}


def pull(args):
    with open(args.state) as f:
        state = json.load(f)
    registry = Registry(args.url)
    path = f"/v2/{args.repo}/blobs/{state['digest']}"

    def get(sink):
        registry.conn.request("GET", path)
        response = registry.conn.getresponse()
        if response.status != 200:
            raise Failure(f"GET blob: {response.status} {response.read()[:200]!r}")
        buffer = bytearray(BUFFER)
        view, total = memoryview(buffer), 0
        while True:
            n = response.readinto(buffer)
            if not n:
                break
            total += n
            sink(view[:n])
        if total != state["size"]:
            raise Failure(f"GET blob: {total} bytes, expected {state['size']}")

    start = time.perf_counter()
    get(lambda _: None)  # counting only: the measurement is the server, not our hashing
    seconds = time.perf_counter() - start
    result = {"bytes": state["size"], "seconds": seconds, "mbps": state["size"] / seconds / MB}
    if args.verify:
        hasher = hashlib.sha256()
        get(hasher.update)
        if "sha256:" + hasher.hexdigest() != state["digest"]:
            raise Failure("GET blob: the pulled bytes do not match the digest")
        result["verified"] = True
    return result


def seed(registry, repo, layer_size=4096):
    """Pushes a config and a layer and returns the manifest that references them."""
    config, layer = random_config(), random_blob(layer_size)
    for data, digest in (config, layer):
        registry.push_blob(repo, data, digest)
    return manifest_for(config, [layer])


def seed_command(args):
    registry = Registry(args.url)
    manifest = seed(registry, args.repo)
    registry.put_manifest(args.repo, "latest", manifest)
    with open(args.manifest, "wb") as f:
        f.write(manifest)
    return {"digest": "sha256:" + hashlib.sha256(manifest).hexdigest()}


def make_tags(args):
    manifest = seed(Registry(args.url), args.repo)
    tags = [f"tag-{i:05d}" for i in range(args.count)]
    workers = 16

    def put_slice(index):
        registry = Registry(args.url)
        for tag in tags[index::workers]:
            registry.put_manifest(args.repo, tag, manifest)

    start = time.perf_counter()
    with concurrent.futures.ThreadPoolExecutor(workers) as pool:
        for future in [pool.submit(put_slice, i) for i in range(workers)]:
            future.result()
    seconds = time.perf_counter() - start
    return {"count": args.count, "seconds": seconds, "rps": args.count / seconds}


def next_link(response):
    # Link: </v2/repo/tags/list?n=100&last=tag-00099>; rel="next"
    for value in response.headers.get_all("Link") or []:
        for part in value.split(","):
            if 'rel="next"' in part and "<" in part:
                return part[part.index("<") + 1:part.index(">")]
    return None


def walk_tags(args):
    registry = Registry(args.url)
    target, pages, tags = f"/v2/{args.repo}/tags/list?n={args.n}", [], []
    start = time.perf_counter()
    while target:
        page_start = time.perf_counter()
        response, data = registry.request("GET", registry.target(target))
        pages.append((time.perf_counter() - page_start) * 1000)
        tags += json.loads(data).get("tags") or []
        target = next_link(response)
    total = (time.perf_counter() - start) * 1000
    return {"total_ms": total, "first_ms": pages[0], "last_ms": pages[-1], "pages": len(pages),
            "tags": len(tags), "distinct_tags": len(set(tags))}


# Ten layers of one image, in MiB: a few big ones and a tail of small ones, about 85 MiB.
LAYER_MIB = [30, 20, 12, 8, 5, 4, 3, 1.5, 1, 0.5]


def push_images(args):
    # All payloads exist before the clock starts (~85 MiB per image).
    images = []
    for _ in range(args.images):
        layers = [random_blob(int(mib * (1 << 20))) for mib in LAYER_MIB]
        images.append((random_config(), layers))
    total = sum(len(data) for config, layers in images for data, _ in [config] + layers)

    def push(index):
        config, layers = images[index]
        repo = f"{args.repo}-{index}"
        registry = Registry(args.url)
        for data, digest in layers + [config]:
            registry.push_blob(repo, data, digest)
        registry.put_manifest(repo, "v1", manifest_for(config, layers))

    start = time.perf_counter()
    with concurrent.futures.ThreadPoolExecutor(args.images) as pool:
        for future in [pool.submit(push, i) for i in range(args.images)]:
            future.result()
    seconds = time.perf_counter() - start
    return {"bytes": total, "seconds": seconds, "mbps": total / seconds / MB}


# ---------------------------------------------------------------------------------------------
# Report

NAMES = {"distribution": "Distribution", "trow": "Trow", "wharf": "Wharf"}
PAIRS = {"fs": "SQLite + filesystem (Distribution and Trow: filesystem)",
         "s3": "Postgres + S3 on Garage (Distribution: S3 on the same Garage)"}


def size_label(size):
    for unit, factor in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if size >= factor:
            return f"{size / factor:g} {unit}"
    return f"{size} B"


def rows(samples):
    """(path, metric, label, unit) for each table row, sizes taken from the samples."""
    def size_of(path):
        sizes = [s["result"].get("bytes") for s in samples if s["path"] == path]
        sizes = [s for s in sizes if s]
        return size_label(sizes[0]) if sizes else "?"

    tags = next((s["result"].get("count") for s in samples
                 if s["path"] == "make_tags" and "count" in s["result"]), 0)
    return [
        ("push_mono", "mbps", f"{size_of('push_mono')} monolithic push (POST + PUT)", "MB/s"),
        ("push_mono", "finish_ms", "  PUT: last byte sent -> 201", "ms"),
        ("push_chunked", "mbps", f"{size_of('push_chunked')} chunked push, 8 MiB PATCHes", "MB/s"),
        ("push_chunked", "finish_ms", "  finishing PUT", "ms"),
        ("pull", "mbps", f"{size_of('push_mono')} pull (GET, bytes counted)", "MB/s"),
        ("rss_early", "mib", "peak RSS after the rows above, round 1", "MiB"),
        ("get_c64", "rps", "manifest GET by tag, 64 connections", "req/s"),
        ("get_c64", "p99_ms", "  p99 latency", "ms"),
        ("get_c1", "rps", "manifest GET by tag, 1 connection", "req/s"),
        ("get_c1", "p99_ms", "  p99 latency", "ms"),
        ("put_c8", "rps", "manifest PUT, 8 connections, new tag each", "req/s"),
        ("put_c8", "p99_ms", "  p99 latency", "ms"),
        ("make_tags", "rps", f"{tags:,} tag PUTs, 16 clients (round 1 only)", "req/s"),
        ("walk_tags", "total_ms", f"tags list walk, n=100, {tags:,} tags", "ms"),
        ("walk_tags", "first_ms", "  first page", "ms"),
        ("walk_tags", "last_ms", "  last page", "ms"),
        ("walk_tags", "pages", "  pages (Link headers followed)", "pages"),
        ("push_images", "mbps", "8 images x 10 layers, ~85 MiB each, at once", "MB/s"),
        ("rss_end", "mib", "peak RSS over the whole run", "MiB"),
    ]


def number(value, unit):
    if value is None:
        return "-"
    if unit == "pages":
        return f"{value:g}"
    if abs(value) >= 100:
        return f"{value:,.0f}"
    return f"{value:.3g}" if abs(value) < 1 else f"{value:.1f}"


def report(args):
    samples = []
    with open(args.samples) as f:
        for line in f:
            if line.strip():
                samples.append(json.loads(line))
    notes = []
    for pair in dict.fromkeys(s["pair"] for s in samples):
        pair_samples = [s for s in samples if s["pair"] == pair]
        registries = [r for r in NAMES if any(s["registry"] == r for s in pair_samples)]
        others = [r for r in registries if r != "wharf"]
        rounds = max(s["round"] for s in pair_samples)
        header = (["path", "unit"] + [NAMES[r] for r in registries] +
                  [f"Wharf/{NAMES[r]}" for r in others if "wharf" in registries])
        table = []
        for path, metric, label, unit in rows(pair_samples):
            medians, cells = {}, [label, unit]
            for registry in registries:
                values, flagged = [], False
                for s in pair_samples:
                    if s["path"] != path or s["registry"] != registry:
                        continue
                    result = s["result"]
                    if "error" in result:
                        notes.append(f"{pair} {NAMES[registry]} round {s['round']} {path}: "
                                     f"{result['error']}")
                        flagged = True
                        continue
                    errors = result.get("status_errors", 0) + result.get("socket_errors", 0)
                    if errors and metric == "rps":
                        notes.append(f"{pair} {NAMES[registry]} round {s['round']} {path}: "
                                     f"{result.get('status_errors', 0)} HTTP errors, "
                                     f"{result.get('socket_errors', 0)} socket errors "
                                     f"of {result.get('requests')} requests")
                        flagged = True
                    if metric in result:
                        values.append(result[metric])
                medians[registry] = statistics.median(values) if values else None
                cells.append(number(medians[registry], unit) + (" !" if flagged else ""))
            if "wharf" in registries:
                for other in others:
                    w, o = medians.get("wharf"), medians.get(other)
                    comparable = w is not None and o and unit != "pages"
                    ratio = w / o if comparable else None
                    cells.append("-" if ratio is None else
                                 f"{ratio:.2f}" if ratio >= 0.1 else f"{ratio:.2g}")
            table.append(cells)
        widths = [max(len(row[i]) for row in table + [header]) for i in range(len(header))]

        def line(row):
            return "  ".join(c.ljust(w) if i < 2 else c.rjust(w)
                             for i, (c, w) in enumerate(zip(row, widths))).rstrip()

        print(f"\n== {PAIRS.get(pair, pair)}: medians of {rounds} round(s)")
        print(line(header))
        print("  ".join("-" * w for w in widths))
        for row in table:
            print(line(row))
    print("\nRatios are Wharf / other: above 1 is better for MB/s and req/s, below 1 for ms and "
          "MiB. MB = 10^6 bytes. '!' marks a median over samples with errors (listed below).")
    for note in dict.fromkeys(notes):  # a path with two rows would list its errors twice
        print("  " + note)
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"meta": json.loads(args.meta) if args.meta else {}, "samples": samples},
                      f, indent=1)
        print(f"\nraw samples: {args.json}")


def parse_size(text):
    units = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30}
    text = text.strip().upper().removesuffix("IB").removesuffix("B")
    if text and text[-1] in units:
        return int(float(text[:-1]) * units[text[-1]])
    return int(text)


def main():
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True)

    def command(name, function, *positional):
        sub = commands.add_parser(name)
        sub.set_defaults(function=function)
        for arg, kind in positional:
            sub.add_argument(arg, type=kind)
        return sub

    command("push-mono", push_mono, ("url", str), ("repo", str), ("size", parse_size)) \
        .add_argument("--state", required=True)
    command("push-chunked", push_chunked, ("url", str), ("repo", str), ("size", parse_size),
            ("chunk", parse_size))
    sub = command("pull", pull, ("url", str), ("repo", str))
    sub.add_argument("--state", required=True)
    sub.add_argument("--verify", action="store_true", help="GET again, untimed, and hash")
    command("seed", seed_command, ("url", str), ("repo", str)) \
        .add_argument("--manifest", required=True)
    command("make-tags", make_tags, ("url", str), ("repo", str), ("count", int))
    command("walk-tags", walk_tags, ("url", str), ("repo", str)) \
        .add_argument("--n", type=int, default=100)
    command("push-images", push_images, ("url", str), ("repo", str), ("images", int))
    sub = command("report", report, ("samples", str))
    sub.add_argument("--json")
    sub.add_argument("--meta", help="JSON object stored with the raw samples")
    args = parser.parse_args()

    if args.command == "report":
        return report(args)
    try:
        result = args.function(args)
    except (Failure, OSError, http.client.HTTPException) as e:
        result = {"error": f"{type(e).__name__}: {e}" if not isinstance(e, Failure) else str(e)}
    # Milliseconds and MB/s need no more than three decimals.
    print(json.dumps({k: round(v, 3) if isinstance(v, float) else v for k, v in result.items()}))


if __name__ == "__main__":
    sys.exit(main())
