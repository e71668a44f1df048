#!/usr/bin/python3
"""Checks that the runtime image will hold every shared library the slipway binary loads.

    /usr/bin/python3 deploy/check_runtime_libs.py [--packages FILE] [--print] BINARY

Runs `ldd BINARY`, maps each resolved library to the Debian package that ships it
(`dpkg -S`), and fails, naming the library and its package, when that package is neither in
deploy/runtime-packages.txt (what deploy/Dockerfile installs into debian:12-slim) nor in
BASE_PACKAGES. It also fails when ldd reports a library "not found", and when a library belongs
to no package and is not the ONNX Runtime that the image copies in itself.

Run it on a binary built on Debian 12 (the runtime image's release), where the packages that
the build linked against are installed. `--print` prints the packages the binary needs, for
regenerating the list.

Exit status: 0 when the list covers the binary, 1 when it does not, 2 when the check cannot run.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

DEFAULT_PACKAGES_FILE = Path(__file__).resolve().parent / "runtime-packages.txt"

# Installed in the debian:12-slim base image already (it is built from them: apt needs
# libstdc++6 and libgcc-s1, and everything needs libc6), so runtime-packages.txt need not
# name them. The dynamic loader (ld-linux-x86-64.so.2) is part of libc6.
BASE_PACKAGES = frozenset({"libc6", "libgcc-s1", "libstdc++6"})

# Libraries the image copies from the ONNX Runtime build instead of installing a package.
BUNDLED = re.compile(r"^libonnxruntime(_providers_[A-Za-z0-9_]+)?\.so(\.\d+)*$")

# Virtual or kernel-provided objects that ldd lists without a file.
VIRTUAL = re.compile(r"^linux-(vdso|gate)\.so\.\d+$")


@dataclass
class Library:
    soname: str          # the name the binary asks for (or the loader's path)
    path: str | None     # where ldd resolved it; None when "not found"


def parse_ldd(output: str) -> list[Library]:
    """Reads `ldd` output into one entry per library."""
    libs: list[Library] = []
    for raw in output.splitlines():
        line = raw.strip()
        if not line:
            continue
        if "=>" in line:
            name, _, rest = line.partition("=>")
            name, rest = name.strip(), rest.strip()
            if rest.startswith("not found"):
                libs.append(Library(name, None))
                continue
            target = rest.split(" (")[0].strip()
            if not target:  # "linux-vdso.so.1 =>  (0x...)" on some versions
                continue
            libs.append(Library(name, target))
        else:
            # "/lib64/ld-linux-x86-64.so.2 (0x...)" or "linux-vdso.so.1 (0x...)"
            target = line.split(" (")[0].strip()
            if target.startswith("/"):
                libs.append(Library(os.path.basename(target), target))
    return [lib for lib in libs if not VIRTUAL.match(lib.soname)]


def run_ldd(binary: str) -> str:
    try:
        result = subprocess.run(["ldd", binary], capture_output=True, text=True, check=False)
    except FileNotFoundError:
        raise SystemExit("check_runtime_libs: ldd is not installed (package libc-bin)")
    text = result.stdout + result.stderr
    if result.returncode != 0 or "not a dynamic executable" in text:
        raise SystemExit(f"check_runtime_libs: ldd {binary} failed:\n{text.strip()}")
    return result.stdout


def path_candidates(path: str) -> list[str]:
    """The path, its target, and their twins across Debian's merged /usr (dpkg records one)."""
    out: list[str] = []
    for p in (path, os.path.realpath(path)):
        for q in (p, merged_usr_twin(p)):
            if q and q not in out:
                out.append(q)
    return out


def merged_usr_twin(path: str) -> str | None:
    for short in ("/lib/", "/lib64/", "/lib32/", "/bin/", "/sbin/"):
        if path.startswith(short):
            return "/usr" + path
        if path.startswith("/usr" + short):
            return path[len("/usr"):]
    return None


def dpkg_owners(paths: list[str]) -> dict[str, list[str]]:
    """Maps each path that some installed package owns to those packages (without :arch)."""
    if not paths:
        return {}
    try:
        result = subprocess.run(["dpkg", "-S", *paths], capture_output=True, text=True,
                                check=False)
    except FileNotFoundError:
        raise SystemExit("check_runtime_libs: dpkg is not installed; run this on Debian 12")
    owners: dict[str, list[str]] = {}
    for line in result.stdout.splitlines():
        if line.startswith("diversion by") or ": " not in line:
            continue
        pkgs, _, path = line.partition(": ")
        names = [p.strip().split(":")[0] for p in pkgs.split(",") if p.strip()]
        owners.setdefault(path.strip(), []).extend(names)
    return owners


def read_package_list(path: Path) -> set[str]:
    packages: set[str] = set()
    for line in path.read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            packages.update(line.split())
    return packages


@dataclass
class Verdict:
    needed: dict[str, list[str]]  # package -> libraries it provides to the binary
    bundled: list[Library]
    problems: list[str]


def check(libs: list[Library], listed: set[str], list_name: str = "the runtime package list"
          ) -> Verdict:
    problems: list[str] = []
    bundled: list[Library] = []
    needed: dict[str, list[str]] = {}
    for lib in libs:
        if lib.path is None:
            problems.append(f"{lib.soname}: ldd reports 'not found' (the binary cannot start)")
    resolved = [lib for lib in libs if lib.path is not None]
    candidates = {lib.soname: path_candidates(lib.path) for lib in resolved}
    owners = dpkg_owners(sorted({p for c in candidates.values() for p in c}))
    for lib in resolved:
        if BUNDLED.match(lib.soname):
            bundled.append(lib)
            continue
        pkgs: list[str] = []
        for p in candidates[lib.soname]:
            if p in owners:
                pkgs = owners[p]
                break
        if not pkgs:
            problems.append(f"{lib.soname} ({lib.path}) belongs to no Debian package and is not "
                            "the bundled ONNX Runtime: the runtime image would not have it")
            continue
        for pkg in pkgs:
            needed.setdefault(pkg, []).append(lib.soname)
        if not any(p in listed or p in BASE_PACKAGES for p in pkgs):
            problems.append(
                f"{lib.soname} ({lib.path}) comes from Debian package "
                f"{' or '.join(repr(p) for p in pkgs)}, which is neither in {list_name} "
                f"nor in the debian:12-slim base set ({', '.join(sorted(BASE_PACKAGES))})")
    return Verdict(needed, bundled, problems)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("binary", help="the slipway binary, e.g. build/slipway")
    parser.add_argument("--packages", type=Path, default=DEFAULT_PACKAGES_FILE,
                        help=f"runtime package list (default {DEFAULT_PACKAGES_FILE})")
    parser.add_argument("--print", dest="print_needed", action="store_true",
                        help="print the packages the binary needs (base set excluded) and exit")
    args = parser.parse_args(argv)

    if not os.path.isfile(args.binary):
        print(f"check_runtime_libs: {args.binary} does not exist (build it first)",
              file=sys.stderr)
        return 2
    if not args.print_needed and not args.packages.is_file():
        print(f"check_runtime_libs: package list {args.packages} does not exist",
              file=sys.stderr)
        return 2
    listed = read_package_list(args.packages) if args.packages.is_file() else set()
    libs = parse_ldd(run_ldd(args.binary))
    if not libs:
        print(f"check_runtime_libs: ldd listed no libraries for {args.binary}", file=sys.stderr)
        return 2
    verdict = check(libs, listed, str(args.packages))

    if args.print_needed:
        for pkg in sorted(set(verdict.needed) - BASE_PACKAGES):
            print(pkg)
        missing = [lib.soname for lib in libs if lib.path is None]
        if missing:
            print(f"check_runtime_libs: not found: {', '.join(missing)}", file=sys.stderr)
        return 1 if missing else 0

    if verdict.problems:
        print(f"check_runtime_libs: {args.packages} does not cover {args.binary}:",
              file=sys.stderr)
        for problem in verdict.problems:
            print(f"  - {problem}", file=sys.stderr)
        print("Add the missing packages to the list (deploy/Dockerfile installs it) or rebuild.",
              file=sys.stderr)
        return 1
    unused = sorted(listed - set(verdict.needed))
    print(f"check_runtime_libs: ok: {len(libs)} libraries of {args.binary} come from "
          f"{len(verdict.needed)} packages, all in {args.packages.name} or the base image"
          + (f"; bundled: {', '.join(lib.soname for lib in verdict.bundled)}"
             if verdict.bundled else ""))
    if unused:
        print(f"check_runtime_libs: listed but not linked (fine if intended): {', '.join(unused)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
