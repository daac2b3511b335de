#!/usr/bin/env python3
"""Writes dpkg.txt: version pairs ordered by `dpkg --compare-versions` itself. The versions
are this machine's installed packages', random ones built from the characters Debian allows,
and small changes of both (a tilde, a letter, a digit, an epoch, a revision), which is where
orderings differ. Run it on a Debian machine: python3 make_dpkg.py > dpkg.txt"""

import random
import subprocess

rng = random.Random(20261130)


def dpkg(a, op, b):
    return subprocess.run(["dpkg", "--compare-versions", a, op, b]).returncode == 0


def order(a, b):
    if dpkg(a, "lt", b):
        return "<"
    return "=" if dpkg(a, "eq", b) else ">"


def random_part(first_digit):
    out = [rng.choice("0123456789")] if first_digit else []
    for _ in range(rng.randint(0, 7)):
        out.append(rng.choice(["0", "00", "1", "2", "9", "10", "010", "123", "a", "b", "z", "A",
                               "Z", ".", ".", "+", "~", "~", "rc", "git", "dfsg", "ubuntu"]))
    return "".join(out)


def random_version():
    version = random_part(True)
    if rng.random() < 0.2:
        version = f"{rng.randint(0, 3)}:{version}"
    if rng.random() < 0.6:
        revision = random_part(False).replace("-", "") or "1"
        version = f"{version}-{revision}"
    return version


def nudge(version):
    choice = rng.randrange(7)
    if choice == 0:
        return version + "~"
    if choice == 1:
        return version + rng.choice(["a", "+1", ".0", "~rc1", "0"])
    if choice == 2 and ":" not in version:
        return f"{rng.randint(0, 2)}:{version}"
    if choice == 3:
        return version + "-" + rng.choice(["0", "1", "1~bpo1", "0ubuntu1"]) if "-" not in version else version + ".1"
    if choice == 4:
        digits = [i for i, c in enumerate(version) if c.isdigit()]
        if digits:
            i = rng.choice(digits)
            return version[:i] + rng.choice("0123456789") + version[i + 1:]
    if choice == 5:
        return version.replace(".", "~", 1)
    return version.replace("-", "-0", 1) if "-" in version else "0" + version


installed = subprocess.run(["dpkg-query", "-W", "-f=${Version}\n"], capture_output=True,
                           text=True, check=True).stdout.split()
installed = sorted(set(installed))
pairs = []
for _ in range(1500):
    pairs.append((rng.choice(installed), rng.choice(installed)))
for _ in range(1500):
    pairs.append((random_version(), random_version()))
for _ in range(1000):
    base = rng.choice(installed) if rng.random() < 0.5 else random_version()
    pairs.append((base, nudge(base)))
version = subprocess.run(["dpkg", "--version"], capture_output=True, text=True).stdout.split("\n")[0]
print(f"# How `dpkg --compare-versions` orders these pairs ({version}); made by make_dpkg.py.")
seen = set()
for a, b in pairs:
    if (a, b) in seen:
        continue
    seen.add((a, b))
    print(a, order(a, b), b)
