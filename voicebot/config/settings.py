"""Installation settings (voicebot.yml) and the tenants they load, validated at start-up."""

import dataclasses
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Literal, Optional

import pydantic
import yaml

from voicebot.config.base import Strict
from voicebot.config.errors import ConfigError, config_error
from voicebot.config.tenant import Tenant
from voicebot.config.topics import Topic, Topics
from voicebot.intents import OFFICE_INTENTS

logger = logging.getLogger(__name__)

DEFAULT_SETTINGS = "voicebot.yml"


class Endpoint(Strict):
    host: str = "127.0.0.1"
    port: int = pydantic.Field(..., ge=0, le=65535)

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"


class Dashboard(Strict):
    # A signed-in browser must sign in again after this long.
    session_minutes: int = pydantic.Field(480, ge=5, le=7 * 24 * 60)
    # True when browsers reach the dashboard over HTTPS (a TLS proxy in front): the session
    # cookie is then never sent in clear.
    secure_cookie: bool = False
    # Agents' click-to-dial: beside each tel: link a sip:NUMBER@this-domain link, for softphones
    # that dial through the contact centre's PBX (e.g. pbx.example.org). None: tel: links only.
    dial_sip_domain: Optional[str] = pydantic.Field(None, regex=r"^[A-Za-z0-9.-]+(:\d{1,5})?$")


class TextChannel(Strict):
    # Text turns answered at once (the rest wait in line), and how many may wait before a chat
    # is answered 503 "send again": a burst of chats must not delay the callers' turns. One at a
    # time kept calls quickest beside 200 chats (voicebot bench load); raise it when the languages
    # run on Rasa servers of their own (rasa_servers), where a turn costs this process little.
    turns_at_once: int = pydantic.Field(1, ge=1, le=1000)
    max_waiting: int = pydantic.Field(200, ge=0, le=10000)
    # Calls first: from a caller's first word to the first word of the bot's answer, a text turn
    # waits this long at most to enter the dialogue (0: it does not wait for calls).
    wait_for_calls_s: float = pydantic.Field(3.0, ge=0, le=30)


class ActionServer(Endpoint):
    # Start our own action server process; false means one runs elsewhere at host:port (then
    # give it and the bot the same secret in VOICEBOT_ACTIONS_TOKEN).
    spawn: bool = True
    # A turn waits this long for the dialogue and its actions; then the caller is told and
    # handed to a person (Rasa itself would wait five minutes on a hung action server).
    timeout_s: float = pydantic.Field(5.0, gt=0, le=60)


class NluSettings(Strict):
    # Below this intent confidence an utterance counts as not understood.
    fallback_threshold: float = pydantic.Field(0.5, gt=0, lt=1)
    # Understood utterances below this confidence also go to the trainers' review inbox.
    review_below: float = pydantic.Field(0.7, gt=0, le=1)
    random_seed: int = 42
    # A model retrained from the dashboard that gets more than this share fewer of the held-out
    # sentences (heldout/<lang>.yml) right than the live one goes live only if a trainer says so.
    max_heldout_drop: float = pydantic.Field(0.02, ge=0, le=1)
    # Models kept per language for going back (models/versions/<lang>/), the live one besides.
    keep_versions: int = pydantic.Field(5, ge=1, le=100)


class QueueAlerts(Strict):
    """When the operators' wallboard marks a queue, and Prometheus alerts (`voicebot alert-rules`)."""

    callers_waiting: Optional[int] = pydantic.Field(None, ge=1)  # this many callers waiting, or more
    longest_wait_s: Optional[float] = pydantic.Field(None, ge=1)  # a caller waiting this long, or longer
    service_level: Optional[float] = pydantic.Field(None, gt=0, le=1)  # a lower share answered in service_level_s


class Queue(Strict):
    """A queue of callers waiting for agents; several lines (tenants) may send callers to one."""

    name: str
    # longest_idle rings the agent idle the longest; ring_all rings every available agent.
    strategy: Literal["longest_idle", "ring_all"] = "longest_idle"
    # An agent who does not answer within this is paused and the next one is tried.
    ring_timeout_s: float = pydantic.Field(15, ge=2, le=120)
    # After a call an agent gets this long before the next one (notes, case system).
    wrap_up_s: float = pydantic.Field(10, ge=0, le=600)
    # Callers beyond this are not queued: they are offered a callback.
    max_waiting: int = pydantic.Field(20, ge=1, le=1000)
    # After waiting this long a caller is offered a callback (and may keep waiting).
    max_wait_s: float = pydantic.Field(600, ge=10, le=7200)
    # Position and expected wait are announced this often while a caller waits.
    announce_every_s: float = pydantic.Field(30, ge=5, le=600)
    # Answered within this counts towards the service level (e.g. 80 % within 60 s).
    service_level_s: float = pydantic.Field(60, ge=1, le=3600)
    # Hold music: "tone" (generated) or a 16-bit mono WAV file.
    hold_music: str = "tone"
    # Tell the agent who is calling before connecting (tenant, topic), in the agent's ear only.
    whisper: bool = True
    alert_when: QueueAlerts = QueueAlerts()


class Agent(Strict):
    """A person who answers queued callers: a softphone that registers with the agents'
    registrar (`username` with `ha1`, the MD5 of "username:realm:password", never the
    password itself: `voicebot agents hash-password`), or a fixed SIP URI that is always there."""

    name: str
    queues: List[str]
    username: Optional[str] = None
    ha1: Optional[str] = pydantic.Field(None, regex=r"^[0-9a-f]{32}$")
    uri: Optional[str] = pydantic.Field(None, regex=r"^sips?:\S+$")

    @pydantic.root_validator(skip_on_failure=True)
    def one_way_to_reach(cls, values):
        registers = values.get("username") is not None or values.get("ha1") is not None
        if registers == (values.get("uri") is not None):
            raise ValueError("give either username and ha1 (a softphone that registers) or uri (a fixed address)")
        if registers and not (values.get("username") and values.get("ha1")):
            raise ValueError("a registering agent needs both username and ha1")
        return values


class AgentRegistrar(Endpoint):
    """Where agents' softphones register (digest authentication in this realm)."""

    port: int = pydantic.Field(5080, ge=0, le=65535)
    realm: str = "voicebot"
    # Failed logins within a minute before the address goes silent (doubling each time), and before
    # an agent's name is refused from every address it has not logged in from in the last day.
    max_failures: int = pydantic.Field(5, ge=1, le=100)
    max_agent_failures: int = pydantic.Field(10, ge=1, le=1000)


class SipSettings(Strict):
    host: str = "127.0.0.1"
    port: int = pydantic.Field(5060, ge=0, le=65535)
    transports: List[str] = ["udp", "tcp"]
    # Offered in this order; G.722 is wideband (16 kHz), G.711 the telephone standard.
    codecs: List[str] = ["G722/16000", "PCMA/8000", "PCMU/8000"]

    @pydantic.validator("transports", each_item=True)
    def known_transport(cls, value: str) -> str:
        if value not in ("udp", "tcp"):
            raise ValueError(f"{value!r}: transports are udp and tcp (terminate TLS at the edge)")
        return value


class EndOfTurnSettings(Strict):
    # The words so far are judged at each pause (voicebot/audio/turn_end.py): a request the NLU
    # is this sure of ends the turn after complete_ms of silence; a last word a sentence does not
    # end on (content/<lang>.yml turn.unfinished: "to", "erm") waits unfinished_ms; else hangover_ms.
    listen_to_words: bool = True
    confidence: float = pydantic.Field(0.85, ge=0.0, le=1.0)
    # Not much shorter: a gap inside a sentence (a fricative, a frame the network lost) that long
    # after words the NLU is already sure of ("opening hours" ... "for Saturday") ends the turn.
    complete_ms: int = pydantic.Field(200, ge=60, le=2000)
    unfinished_ms: int = pydantic.Field(900, ge=100, le=3000)
    # A routine question the NLU is sure of (opening hours, a topic) is answered after this much
    # silence, while the turn is still open (0: only once it ends): should the caller go on, the
    # answer stops at once and the dialogue takes that turn back (voicebot/call/session.py), and
    # the call's early answers wait longer from then on (voicebot/audio/turn_end.py EarlyWait).
    # Not much shorter: at 60 ms, gaps between words over the phone set off a fifth of the bench's
    # turns (voicebot bench call, benchmarks/RESULTS.md).
    answer_early_ms: int = pydantic.Field(100, ge=0, le=2000)
    # A "no" often leads a correction ("no ... I meant Sunday"): it never ends a turn early.
    wait_after: List[str] = ["deny"]


class AudioSettings(Strict):
    # Silence after speech that ends a caller's turn (end_of_turn: sooner or later by the words).
    hangover_ms: int = pydantic.Field(300, ge=100, le=2000)
    end_of_turn: EndOfTurnSettings = EndOfTurnSettings()
    # Shorter sounds (a cough, "mm") neither start a turn nor interrupt the bot.
    min_speech_ms: int = pydantic.Field(160, ge=40, le=1000)
    # Voice this long interrupts the bot (barge-in); a shorter sound as the bot begins to answer
    # (a breath, the tail of the caller's own turn) leaves the answer playing.
    barge_in_ms: int = pydantic.Field(400, ge=40, le=2000)
    # No speech for this long after the bot spoke: one reprompt, then the keypad menu.
    silence_timeout_s: float = pydantic.Field(8.0, ge=2, le=60)
    max_utterance_s: float = pydantic.Field(15.0, ge=3, le=60)
    words_per_minute: int = pydantic.Field(165, ge=80, le=400)
    # What tells the caller's voice from other sound (voicebot/audio/vad.py). Silero by default:
    # on G.711 speech it found every turn, clean and in noise at 20 and 10 dB SNR (energy: 2/20
    # and 0/20), and started no turn on noise, hum, coughs, typing or hold music, where energy
    # started about 4 a minute, each a false barge-in; for about 70 µs of CPU per 20 ms frame
    # instead of 10, and 30-50 ms later (`voicebot bench vad`, benchmarks/RESULTS.md).
    vad: Literal["energy", "silero"] = "silero"

    @pydantic.root_validator(skip_on_failure=True)
    def _hangovers_in_order(cls, values):
        end = values["end_of_turn"]
        if not end.complete_ms <= values["hangover_ms"] <= end.unfinished_ms:
            raise ValueError(f"end_of_turn: complete_ms ({end.complete_ms}) <= hangover_ms ({values['hangover_ms']}) "
                             f"<= unfinished_ms ({end.unfinished_ms}) does not hold")
        if end.answer_early_ms > end.complete_ms:
            raise ValueError(f"end_of_turn: answer_early_ms ({end.answer_early_ms}) is longer than complete_ms "
                             f"({end.complete_ms}): the turn would end first")
        return values


class AsrModel(Strict):
    # vosk (streaming) or whisper (per turn); left out: Vosk where it has a model, else Whisper.
    engine: Optional[Literal["vosk", "whisper"]] = None
    path: Optional[Path] = None  # a model folder of that engine, instead of the cache's
    model: str = "base"  # Whisper: which model in the cache (voicebot models get LANG --engine whisper)
    # The line's words: Vosk's grammar (recognition restricted to these), Whisper's decoding hint.
    phrases: List[str] = []


class AsrSettings(Strict):
    # Models of every engine, one folder each: <cache_dir>/vosk/<lang>, <cache_dir>/whisper/<model>.
    cache_dir: Path = Path("~/.cache/voicebot")
    models: Dict[str, AsrModel] = {}


class Settings(Strict):
    tenants_dir: Path = Path("tenants")
    # The topics callers ask about, shared by every line (voicebot.config.topics).
    topics_file: Path = Path("topics.yml")
    models_dir: Path = Path("models")
    audio_prompts_dir: Path = Path("audio_prompts")
    store_url: str = "sqlite:///var/voicebot.sqlite3"
    http: Endpoint = Endpoint(port=8080)
    text: TextChannel = TextChannel()
    action_server: ActionServer = ActionServer(port=5055)
    dashboard: Dashboard = Dashboard()
    nlu: NluSettings = NluSettings()
    sip: SipSettings = SipSettings()
    audio: AudioSettings = AudioSettings()
    asr: AsrSettings = AsrSettings()
    queues: Dict[str, Queue]
    agents: Dict[str, Agent] = {}
    agent_registrar: AgentRegistrar = AgentRegistrar()
    # Languages whose Rasa runs as its own server (`voicebot rasa serve`): language -> its URL.
    # The others are loaded into the bot's own process.
    rasa_servers: Dict[str, pydantic.AnyHttpUrl] = {}
    # Several bot workers: agents' states and the callers waiting live in this Redis
    # (redis://HOST:PORT/DB), so a caller on one worker reaches an agent registered through
    # another. None (the default): in this process only. VOICEBOT_REDIS_URL overrides it.
    queue_redis_url: Optional[str] = pydantic.Field(None, regex=r"^rediss?://\S+$")

    @pydantic.validator("agents")
    def agents_serve_known_queues(cls, agents, values):
        queues = values.get("queues") or {}
        for agent_id, agent in agents.items():
            unknown = [q for q in agent.queues if q not in queues]
            if unknown:
                raise ValueError(f"{agent_id}: queues {unknown} are not in queues")
        usernames = [a.username for a in agents.values() if a.username]
        if len(set(usernames)) != len(usernames):
            raise ValueError("two agents have the same username")
        return agents


@dataclass(frozen=True)
class Installation:
    """Everything configured for one installation: settings, tenants, and where they live."""

    root: Path
    settings: Settings
    tenants: Dict[str, Tenant]
    settings_file: Optional[Path] = None
    topics: Dict[str, Topic] = dataclasses.field(default_factory=dict)

    def path(self, relative: Path) -> Path:
        return relative if relative.is_absolute() else self.root / relative

    @property
    def models_dir(self) -> Path:
        return self.path(self.settings.models_dir)

    @property
    def topics_file(self) -> Path:
        return self.path(self.settings.topics_file)

    @property
    def routine_intents(self) -> tuple:
        """The intents that ask the line something: its offices, and every topic."""
        return OFFICE_INTENTS + tuple(self.topics)

    @property
    def languages(self) -> list:
        return sorted({t.language for t in self.tenants.values()})

    def tenant(self, tenant_id: str) -> Tenant:
        try:
            return self.tenants[tenant_id]
        except KeyError:
            raise ConfigError(f"no line {tenant_id!r}; configured: {', '.join(self.tenants)}") from None

    def serving(self, line_ids) -> "Installation":
        """This installation with only these lines (and so only their languages' models): a
        process that serves some of the lines."""
        return dataclasses.replace(self, tenants={line_id: self.tenant(line_id) for line_id in line_ids})

    def tenant_for_number(self, number: str) -> Optional[Tenant]:
        for tenant in self.tenants.values():
            if number in tenant.numbers:
                return tenant
        return None

    def tenant_for_dialled(self, user: str) -> Optional[Tenant]:
        """The line a call is for, from the Request-URI's user part without parameters
        (voicebot.telephony.sip.uri_user): a number configured as +N may be dialled as N too.
        The Kamailio front accepts the same (voicebot.cluster.kamailio.numbers_regex)."""
        return self.tenant_for_number(user) or (self.tenant_for_number("+" + user) if user[:1] != "+" else None)


def _read_yaml(path: Path) -> dict:
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"{path}: file not found") from None
    except yaml.YAMLError as error:
        raise ConfigError(f"{path}: not valid YAML: {error}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping at the top level")
    return data


def load_tenant(path: Path) -> Tenant:
    try:
        return Tenant.parse_obj(_read_yaml(path))
    except pydantic.ValidationError as error:
        raise config_error(path, error) from None


def _warn_of_agents_without_office(path: Path, tenant: Tenant) -> None:
    """Agent hours on a day no office of the line opens, or on its closures, are allowed (a phone
    team may work when the counters do not) but worth a word at start-up."""
    office_days = {day for office in tenant.offices.values() for day, ranges in office.hours.days.items() if ranges}
    for day, ranges in tenant.handoff.agent_hours.days.items():
        if ranges and day not in office_days:
            logger.warning("%s: handoff.agent_hours.%s: agents take calls on a day no office of the line opens",
                           path, day)
    if not tenant.handoff.follow_office_exceptions:
        closed = [str(e.date) for e in tenant.office().exceptions
                  if e.closed and tenant.handoff.agent_hours.on(e.date)]
        if closed:
            logger.warning("%s: handoff.follow_office_exceptions: false: callers are offered staff on %s, "
                           "when %s is closed", path, ", ".join(closed), tenant.default_office)


def load_topics(path: Path) -> Dict[str, Topic]:
    """The topics file (settings topics_file); without one, the bot has only its built-in intents."""
    if not path.exists():
        return {}
    try:
        return Topics.parse_obj(_read_yaml(path)).topics
    except pydantic.ValidationError as error:
        raise config_error(path, error) from None


def with_topics(path: Path, tenant: Tenant, topics: Dict[str, Topic], settings: Settings, where: Path) -> Tenant:
    """The line with a behaviour for every topic (its own, or the topic's default, from the
    topics file `where`), or a ConfigError that names the file, the key and what is missing. On a
    shared line a topic may instead be given by every municipality."""
    places = {"": tenant.topics, **{f"municipalities.{m_id}.": m.topics for m_id, m in tenant.municipalities.items()}}
    for prefix, given in places.items():
        unknown = sorted(set(given) - set(topics))
        if unknown:
            raise ConfigError(f"{path}: {prefix}topics.{unknown[0]}: not a topic in {where} "
                              f"({', '.join(topics) or 'it has none'}); add it there first")
    behaviours = {}
    for topic_id, topic in topics.items():
        if tenant.language not in topic.names:
            raise ConfigError(f"{where}: topics.{topic_id}.names: no name in {tenant.language!r} (line {tenant.id})")
        behaviour = tenant.topics.get(topic_id) or topic.default
        lacking = [m_id for m_id, m in tenant.municipalities.items() if topic_id not in m.topics]
        if behaviour is None and (lacking or not tenant.municipalities):
            name = topic.name(tenant.language)
            if lacking:
                raise ConfigError(f"{path}: municipalities.{lacking[0]}.topics.{topic_id}: "
                                  f"{tenant.municipalities[lacking[0]].name} on line {tenant.id} says nothing for the "
                                  f"topic {name!r}, and neither the line (topics.{topic_id}) nor {where} (a default) "
                                  "does: give an answer (a text), hand_off or offer_callback")
            raise ConfigError(f"{path}: topics.{topic_id}: line {tenant.id} says nothing for the topic {name!r} and "
                              f"{where} gives no default: give an answer (a text), hand_off or offer_callback")
        for prefix, given in places.items():
            chosen = given.get(topic_id) or (behaviour if not prefix else None)
            if chosen and chosen.queue and chosen.queue not in settings.queues:
                raise ConfigError(f"{path}: {prefix}topics.{topic_id}.queue: {chosen.queue!r} is not one of the "
                                  f"queues ({', '.join(settings.queues)})")
        if behaviour is not None:
            behaviours[topic_id] = behaviour
    for m_id, municipality in tenant.municipalities.items():
        if municipality.queue and municipality.queue not in settings.queues:
            raise ConfigError(f"{path}: municipalities.{m_id}.queue: {municipality.queue!r} is not one of the "
                              f"queues ({', '.join(settings.queues)})")
    for intent in tenant.keypad_menu:
        if intent not in OFFICE_INTENTS + tuple(topics):
            raise ConfigError(f"{path}: keypad_menu: {intent!r} is not a topic; choose from "
                              f"{', '.join(OFFICE_INTENTS + tuple(topics))}")
    return tenant.copy(update={"topics": behaviours})


def load_installation(settings_path: Optional[Path] = None) -> Installation:
    """Load and cross-check voicebot.yml and every tenants/*.yml; raise ConfigError if wrong."""
    settings_path = Path(settings_path or os.environ.get("VOICEBOT_CONFIG", DEFAULT_SETTINGS)).resolve()
    try:
        settings = Settings.parse_obj(_read_yaml(settings_path))
    except pydantic.ValidationError as error:
        raise config_error(settings_path, error) from None
    if os.environ.get("VOICEBOT_STORE_URL"):  # keeps database passwords out of files
        settings = settings.copy(update={"store_url": os.environ["VOICEBOT_STORE_URL"]})
    if os.environ.get("VOICEBOT_REDIS_URL"):  # the same for a Redis password
        settings = settings.copy(update={"queue_redis_url": os.environ["VOICEBOT_REDIS_URL"]})
    root = settings_path.parent
    tenants_dir = settings.tenants_dir if settings.tenants_dir.is_absolute() else root / settings.tenants_dir
    files = sorted(tenants_dir.glob("*.yml"))
    if not files:
        raise ConfigError(f"{settings_path}: tenants_dir: no *.yml files in {tenants_dir}")
    topics_file = root / settings.topics_file  # an absolute path stays as it is
    topics = load_topics(topics_file)
    tenants: Dict[str, Tenant] = {}
    owner_of_number: Dict[str, Path] = {}
    for path in files:
        tenant = with_topics(path, load_tenant(path), topics, settings, topics_file)
        if tenant.id in tenants:
            raise ConfigError(f"{path}: id: {tenant.id!r} is already used by another tenant file")
        if tenant.handoff.queue not in settings.queues:
            raise ConfigError(
                f"{path}: handoff.queue: {tenant.handoff.queue!r} is not a queue in {settings_path.name}"
            )
        for number in tenant.numbers:
            if number in owner_of_number:
                raise ConfigError(f"{path}: numbers: {number} is already dialled for {owner_of_number[number]}")
            owner_of_number[number] = path
        _warn_of_agents_without_office(path, tenant)
        tenants[tenant.id] = tenant
    return Installation(root=root, settings=settings, tenants=tenants, settings_file=settings_path, topics=topics)
