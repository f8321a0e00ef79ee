"""Whisper models in CTranslate2 format that `voicebot models get LANG --engine whisper --size NAME`
fetches from Hugging Face into <asr.cache_dir>/whisper/NAME.

Systran's conversions are pinned to a commit with each file's size and SHA-256. The checksums
are the Hub's own (the Git LFS object id of a large file), taken from two independent projects'
pinned manifests that agree with each other and with the Hub's file pages (searched, not
downloaded: these machines reach no model host); the base model's four pins match the bundled
base model's files byte for byte. A file without a pin (None) is checked at download time
against the checksum the Hub sends with it (see voicebot.audio.asr.download)."""

from dataclasses import dataclass
from typing import Optional, Tuple

HUB = "https://huggingface.co"


@dataclass(frozen=True)
class HubFile:
    name: str
    size: Optional[int] = None
    sha256: Optional[str] = None


@dataclass(frozen=True)
class HubModel:
    repo: str
    revision: str
    files: Tuple[HubFile, ...]
    about: str  # what `models get --help` and the README say about it
    languages: Optional[Tuple[str, ...]] = None  # None: multilingual

    def url(self, name: str, base: Optional[str] = None) -> str:
        return f"{base.rstrip('/')}/{name}" if base else f"{HUB}/{self.repo}/resolve/{self.revision}/{name}"

    @property
    def size(self) -> int:
        return sum(f.size or 0 for f in self.files)


# Shared by every multilingual Systran conversion but large-v3 (whose vocabulary grew by one token).
_TOKENIZER = HubFile("tokenizer.json", 2_203_239, "fb7b63191e9bb045082c79fd742a3106a12c99513ab30df4a0d47fa6cb6fd0ab")
_VOCABULARY = HubFile("vocabulary.txt", 459_861, "34ce3fe1c5041027b3f8d42912270993f986dbc4bb34cf27f951e34a1e453913")


def _systran(size: str, revision: str, config: HubFile, model: HubFile, about: str,
             rest: Tuple[HubFile, ...] = (_TOKENIZER, _VOCABULARY)) -> HubModel:
    return HubModel(f"Systran/faster-whisper-{size}", revision, (config, model, *rest), about)


WHISPER = {
    "tiny": _systran(
        "tiny", "d90ca5fe260221311c53c58e660288d3deb8d356",
        HubFile("config.json", 2_249, "a73a28cdfe1c43ccc7202fa333d1f89c202477271407ae9a7f19afa52039cac8"),
        HubFile("model.bin", 75_538_270, "dcb76c6586fc06cbdac6dd21f14cfd129cc4cdd9dce19bf4ffa62e59cbe6e6d1"),
        "75 MB; faster and less accurate than the bundled base"),
    "base": _systran(
        "base", "ebe41f70d5b6dfa9166e2c581c45c9c0cfc57b66",
        HubFile("config.json", 2_309, "56a6d8110d311f19c8f0471e562832c7527f146b567275bfca59fcf7c184da9a"),
        HubFile("model.bin", 145_217_532, "d01c3014881c9c6f3133c182f3d2887eb6ca1c789a7538c5c007196857a0a6a9"),
        "145 MB; the model the install bundles (about 1 s per turn on 2 cores)"),
    "small": _systran(
        "small", "536b0662742c02347bc0e980a01041f333bce120",
        HubFile("config.json", 2_370, "b55496ac7940a7ae47d2c01eab40edfd8701feec1229d9cce3b40014383fb828"),
        HubFile("model.bin", 483_546_902, "3e305921506d8872816023e4c273e75d2419fb89b24da97b4fe7bce14170d671"),
        "484 MB; more accurate than base and slower (not measured here)"),
    "medium": _systran(
        "medium", "7832330bcea9a8d5fd6d6637c49fe5d256e98277",
        HubFile("config.json", 2_257, "3622a2ddc41ec0e0fd4e68c13c6830f03b90c38d89aaad184de02c8c642cf807"),
        HubFile("model.bin", 1_527_906_378, "9b45e1009dcc4ab601eff815b61d80e60ce3fd8c74c1a14f4a282258286b51ae"),
        "1.5 GB; slower again: more than 2 cores to answer a caller in time"),
    "large-v3": _systran(
        "large-v3", "edaa852ec7e145841d8ffdb056a99866b5f0a478",
        HubFile("config.json", 2_394, "a9306624f5ec14270a014b647e5c316b6e03a662c369758d1b90697a7b0655b9"),
        HubFile("model.bin", 3_087_284_237, "69f74147e3334731bc3a76048724833325d2ec74642fb52620eda87352e3d4f1"),
        "3.1 GB; the most accurate, for a machine with many cores or a GPU",
        rest=(HubFile("preprocessor_config.json", 340,
                      "7ccc62c6f2765af1f3b46c00c9b5894426835a05021c8b9c01eecb6dfb542711"),
              HubFile("tokenizer.json", 2_480_617, "6d8cbd7cd0d8d5815e478dac67b85a26bbe77c1f5e0c6d76d1ce2abc0e5f21ca"),
              HubFile("vocabulary.json"))),  # no published pin: checked against the Hub's ETag
    # Danish: syv.ai's hviske-v2 (Whisper large-v3 fine-tuned on CoRal and Common Voice; CoRal
    # WER 11.8%), converted to CTranslate2 (FP16) by a third party (github.com/Pluttodk/hvisketiske,
    # converted with ct2-transformers-converter --copy_files tokenizer.json preprocessor_config.json).
    # Neither CoRal nor syv.ai publishes a CTranslate2 copy. Licence: OpenRAIL (the CoRal data's
    # use restrictions apply). No file pins are published: each file is checked against the Hub's
    # checksum at download time, and the repository is followed at main.
    "da-hviske-tiske": HubModel(
        "pluttodk/hviske-tiske", "main",
        (HubFile("config.json"), HubFile("model.bin"), HubFile("preprocessor_config.json"),
         HubFile("tokenizer.json"), HubFile("vocabulary.json")),
        "about 3 GB; Danish only (hviske-v2, large-v3 size): for a machine with many cores or a GPU",
        languages=("da",)),
}
DEFAULT_SIZE = "small"
