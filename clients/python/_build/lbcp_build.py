"""A PEP 517 build backend in the standard library only, so that
`pip install ./clients/python` works without reaching PyPI (setuptools' wheel
support needs the `wheel` package before setuptools 70, which machines
without network access may not have). It packs lbcp/ into a pure-Python wheel."""
import base64
import hashlib
import os
import tarfile
import zipfile

NAME, VERSION = "lbcp", "0.1.0"
HERE = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DIST = f"{NAME}-{VERSION}.dist-info"
METADATA = f"""Metadata-Version: 2.1
Name: {NAME}
Version: {VERSION}
Summary: Python client of lbcp over the slaves' HTTP/JSON API (standard library only)
License: MIT
Requires-Python: >=3.8
"""
WHEEL = "Wheel-Version: 1.0\nGenerator: lbcp_build\nRoot-Is-Purelib: true\nTag: py3-none-any\n"


def _files():
    for dirpath, _, names in os.walk(os.path.join(HERE, NAME)):
        for n in sorted(names):
            if n.endswith(".py"):
                full = os.path.join(dirpath, n)
                yield full, os.path.relpath(full, HERE).replace(os.sep, "/")


def get_requires_for_build_wheel(config_settings=None):
    return []


def get_requires_for_build_sdist(config_settings=None):
    return []


def prepare_metadata_for_build_wheel(metadata_directory, config_settings=None):
    d = os.path.join(metadata_directory, DIST)
    os.makedirs(d, exist_ok=True)
    for name, text in (("METADATA", METADATA), ("WHEEL", WHEEL)):
        with open(os.path.join(d, name), "w") as f:
            f.write(text)
    return DIST


def build_wheel(wheel_directory, config_settings=None, metadata_directory=None):
    fn = f"{NAME}-{VERSION}-py3-none-any.whl"
    record = []
    with zipfile.ZipFile(os.path.join(wheel_directory, fn), "w", zipfile.ZIP_DEFLATED) as z:
        def add(arc, data):
            z.writestr(arc, data)
            h = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
            record.append(f"{arc},sha256={h},{len(data)}")
        for full, arc in _files():
            with open(full, "rb") as f:
                add(arc, f.read())
        add(f"{DIST}/METADATA", METADATA.encode())
        add(f"{DIST}/WHEEL", WHEEL.encode())
        record.append(f"{DIST}/RECORD,,")
        z.writestr(f"{DIST}/RECORD", "\n".join(record) + "\n")
    return fn


def build_sdist(sdist_directory, config_settings=None):
    base = f"{NAME}-{VERSION}"
    fn = base + ".tar.gz"
    with tarfile.open(os.path.join(sdist_directory, fn), "w:gz") as t:
        for rel in ("pyproject.toml", "README.md", "_build/lbcp_build.py"):
            t.add(os.path.join(HERE, rel), f"{base}/{rel}")
        for full, arc in _files():
            t.add(full, f"{base}/{arc}")
        info = tarfile.TarInfo(f"{base}/PKG-INFO")
        info.size = len(METADATA.encode())
        import io
        t.addfile(info, io.BytesIO(METADATA.encode()))
    return fn
