"""Models for users who have a network: fetched with a progress report, checked against a
pinned SHA-256 where one is known (else against the checksum the server sends with the file),
and moved into place only when whole, so an interrupted or damaged download leaves nothing
half-installed. Offline, a clear error says what to do."""

import hashlib
import http.client
import re
import shutil
import urllib.error
import urllib.request
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, List, Optional, Tuple

from voicebot.config import ConfigError

Progress = Callable[[int, int], None]  # (bytes just received, total or 0)


@dataclass
class Download:
    what: str  # for messages: "the da Whisper model"
    url: str
    sha256: Optional[str] = None
    instead: str = "asr.models.<lang>.path"  # the setting that points at a model fetched by hand
    size: Optional[int] = None  # expected bytes, where known


class _ServedChecksum(urllib.request.HTTPRedirectHandler):
    """Hugging Face answers a large (LFS) file with a redirect whose X-Linked-Etag is the file's
    SHA-256 (huggingface_hub reads the same header); urllib follows the redirect and forgets
    those headers, so note them on the way."""

    def __init__(self):
        self.etags: List[str] = []

    def redirect_request(self, req, fp, code, msg, headers, newurl):
        self.etags.append(headers.get("X-Linked-Etag") or headers.get("ETag") or "")
        return super().redirect_request(req, fp, code, msg, headers, newurl)


def _served_digest(etag: str) -> Optional[Tuple[str, str]]:
    """What a server's ETag vouches for: a SHA-256 (64 hex digits, the Hub's large files) or a
    Git blob SHA-1 (40 hex digits, the Hub's small files kept in Git); else nothing."""
    value = etag.strip().strip('"').lower()
    if re.fullmatch(r"[0-9a-f]{64}", value):
        return "sha256", value
    if re.fullmatch(r"[0-9a-f]{40}", value):
        return "git-sha1", value
    return None


def _git_blob_sha1(path: Path) -> str:
    digest = hashlib.sha1(f"blob {path.stat().st_size}\0".encode())
    with path.open("rb") as data:
        while chunk := data.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def fetch(download: Download, target: Path, progress: Progress) -> str:
    """Download to `target` (written as target.partial, renamed when whole and checked);
    returns its SHA-256."""
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(target.name + ".partial")
    try:
        sha256, served = _receive(download, partial, progress)
        _check(download, partial, sha256, served)
    except BaseException:  # an error, or Ctrl-C: no half file stays behind
        partial.unlink(missing_ok=True)
        raise
    partial.replace(target)
    return sha256


def _receive(download: Download, partial: Path, progress: Progress) -> Tuple[str, Optional[Tuple[str, str]]]:
    digest, redirects = hashlib.sha256(), _ServedChecksum()
    try:
        with urllib.request.build_opener(redirects).open(download.url, timeout=30) as response, \
                partial.open("wb") as out:
            total, received = int(response.headers.get("Content-Length") or 0), 0
            while chunk := response.read(1 << 16):
                out.write(chunk)
                digest.update(chunk)
                received += len(chunk)
                progress(len(chunk), total)
            if total and received != total:  # http.client does not raise for a body cut short
                raise ConnectionError(f"the connection closed after {received} of {total} bytes")
            etags = [*redirects.etags, response.headers.get("X-Linked-Etag") or response.headers.get("ETag") or ""]
    except (urllib.error.URLError, OSError, http.client.HTTPException) as error:  # refused, cut off, ...
        raise ConfigError(f"could not download {download.what} from {download.url}: {error}. Offline? Download it "
                          f"elsewhere and point voicebot.yml at it ({download.instead})") from None
    served = next((found for etag in etags if (found := _served_digest(etag))), None)
    return digest.hexdigest(), served


def _check(download: Download, partial: Path, sha256: str, served: Optional[Tuple[str, str]]) -> None:
    damaged = "the download is damaged or changed; nothing was installed"
    received = partial.stat().st_size
    if download.size is not None and received != download.size:
        raise ConfigError(f"{download.what}: {download.url} gave {received} bytes, expected {download.size}: {damaged}")
    if download.sha256:
        if sha256 != download.sha256.lower():
            raise ConfigError(f"{download.what}: SHA-256 {sha256}, expected {download.sha256}: {damaged}")
    elif served:  # no pin: the server's own checksum is the next best thing
        kind, expected = served
        actual = sha256 if kind == "sha256" else _git_blob_sha1(partial)
        if actual != expected:
            raise ConfigError(f"{download.what}: {kind} {actual}, the server says {expected}: {damaged}")


def fetch_zip(download: Download, target: Path, is_model: Callable[[Path], bool], progress: Progress) -> Path:
    """Download a zipped model and unpack it as the folder `target` (the archive's own top
    folder, if it has one, becomes `target`)."""
    archive = target.with_name(target.name + ".zip")
    sha256 = fetch(download, archive, progress)
    unpacked = target.with_name(target.name + ".unpacking")
    shutil.rmtree(unpacked, ignore_errors=True)
    try:
        with zipfile.ZipFile(archive) as zipped:
            zipped.extractall(unpacked)
        inner = next((p for p in [unpacked, *unpacked.iterdir()] if is_model(p)), None)
        if inner is None:
            raise ConfigError(f"{download.url} holds no model; nothing was installed")
        shutil.rmtree(target, ignore_errors=True)
        inner.rename(target)
    finally:
        shutil.rmtree(unpacked, ignore_errors=True)
        archive.unlink(missing_ok=True)
    (target / "SHA256").write_text(sha256 + "\n")
    return target


def fetch_folder(files: List[Tuple[str, Download]], target: Path, progress: Progress) -> Path:
    """Download several files as the folder `target`: built beside it as target.partial and
    moved into place only when every file arrived whole and checked. `target/SHA256` lists them
    in sha256sum's format."""
    building = target.with_name(target.name + ".partial")
    shutil.rmtree(building, ignore_errors=True)
    building.mkdir(parents=True)
    try:
        sums = [f"{fetch(download, building / name, progress)}  {name}" for name, download in files]
        (building / "SHA256").write_text("\n".join(sums) + "\n")
        shutil.rmtree(target, ignore_errors=True)
        building.rename(target)
    finally:
        shutil.rmtree(building, ignore_errors=True)
    return target
