"""Installs the Airflow UI bundle into the leoflow-server image at build time.

Does what `leoflow_http::ui_assets::install_from_wheel` does (the server reads the same
layout): checks the apache-airflow-core wheel against the SHA-256 pinned in
leoflow-adapters/http/src/ui_assets/install.rs (the pin is read from that file, so it has
one source), then unpacks `airflow/ui/dist/**` plus the wheel's LICENSE and NOTICE into
the output directory and writes the VERSION marker last. Standard library only.

    python3 ui-assets.py --pins install.rs --out DIR [--wheel FILE]

Without --wheel the wheel is downloaded from the URL pinned in install.rs.
"""

import argparse
import hashlib
import re
import shutil
import sys
import urllib.request
import zipfile
from pathlib import Path, PurePosixPath


def pins(install_rs):
    text = Path(install_rs).read_text()

    def const(name):
        m = re.search(rf'const {name}: &str = "([^"]+)";', text)
        if not m:
            sys.exit(f"{install_rs}: no {name} constant; update leoflow-pro/docker/ui-assets.py")
        return m.group(1)

    return {n: const(n) for n in ("AIRFLOW_VERSION", "WHEEL_URL", "WHEEL_SHA256", "VERSION_FILE", "DIST_PREFIX", "LICENSE_DIR")}


def target_of(name, pin):
    """Where a wheel entry goes under the output directory, or None (skipped)."""
    if name.startswith(pin["DIST_PREFIX"]):
        rel = name[len(pin["DIST_PREFIX"]):]
    elif name.startswith(pin["LICENSE_DIR"]) and name[len(pin["LICENSE_DIR"]):] in ("LICENSE", "NOTICE"):
        rel = name[len(pin["LICENSE_DIR"]):]
    else:
        return None
    parts = PurePosixPath(rel).parts
    if not parts or rel.endswith("/") or any(p in ("..", ".", "") for p in parts) or rel.startswith("/"):
        return None
    return PurePosixPath(*parts)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--pins", required=True, help="leoflow-adapters/http/src/ui_assets/install.rs")
    ap.add_argument("--out", required=True, type=Path)
    ap.add_argument("--wheel", type=Path, help="an already downloaded wheel")
    args = ap.parse_args()
    pin = pins(args.pins)

    if args.wheel:
        data = args.wheel.read_bytes()
    else:
        print(f"downloading {pin['WHEEL_URL']}", file=sys.stderr)
        with urllib.request.urlopen(pin["WHEEL_URL"], timeout=300) as r:
            data = r.read()
    actual = hashlib.sha256(data).hexdigest()
    if actual != pin["WHEEL_SHA256"]:
        sys.exit(f"the wheel has SHA-256 {actual}, but Airflow {pin['AIRFLOW_VERSION']} is pinned to {pin['WHEEL_SHA256']}")

    staging = args.out.with_name(args.out.name + ".installing")
    shutil.rmtree(staging, ignore_errors=True)
    tmp = staging.with_suffix(".whl")
    tmp.parent.mkdir(parents=True, exist_ok=True)
    tmp.write_bytes(data)
    with zipfile.ZipFile(tmp) as z:
        for info in z.infolist():
            rel = target_of(info.filename, pin)
            if rel is None or info.is_dir():
                continue
            dest = staging.joinpath(rel)
            dest.parent.mkdir(parents=True, exist_ok=True)
            dest.write_bytes(z.read(info))
    tmp.unlink()
    if not (staging / "index.html").is_file():
        sys.exit(f"the wheel has no {pin['DIST_PREFIX']}index.html")
    (staging / pin["VERSION_FILE"]).write_text(pin["AIRFLOW_VERSION"] + "\n")
    shutil.rmtree(args.out, ignore_errors=True)
    staging.rename(args.out)
    print(f"Airflow {pin['AIRFLOW_VERSION']} UI installed in {args.out}", file=sys.stderr)


if __name__ == "__main__":
    main()
