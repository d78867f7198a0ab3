"""Load `config/`: every file validated, every cross-reference checked, every error reported."""

from __future__ import annotations

import hashlib
import string
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path
from typing import Any, TypeVar
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ValidationError

from casework.calendar import WorkCalendar
from casework.callbacks import CallbackPolicy
from hotline.config import schema
from hotline.config.errors import ConfigError, ConfigInvalid
from hotline.config.yaml_source import YamlDocument, YamlSyntaxError, read_yaml
from ivr.flow import with_menu_words
from ivr.model import (
    Dialogue,
    IvrPlan,
    Language,
    Menu,
    MenuOption,
    OptionTarget,
    Prompts,
    QueueSettings,
    RecordSettings,
    ToDescribe,
    ToGeneralDesk,
    ToMenu,
    ToSpecialty,
    UnderstandingSettings,
)
from routing.acd import Agent, DeskLevel
from routing.hours import BusinessHours, Window
from routing.queue_router import QueueRouter
from routing.specialty import VOICEMAIL, Specialty
from routing.tiers import TierRules
from speech.examples import DeskExamples

FILES: dict[str, tuple[str, type[BaseModel]]] = {
    "line": ("line.yaml", schema.LineFile),
    "prompts": ("prompts.yaml", schema.PromptsFile),
    "specialties": ("specialties.yaml", schema.SpecialtiesFile),
    "menus": ("menus.yaml", schema.MenusFile),
    "tiers": ("tiers.yaml", schema.TiersFile),
    "speech": ("speech.yaml", schema.SpeechFile),
    "agents": ("agents.yaml", schema.AgentsFile),
    "districts": ("districts.yaml", schema.DistrictsFile),
    "access": ("access.yaml", schema.AccessFile),
}
EXAMPLES_DIR = "examples"
# Fewer examples than this per desk make the classifier guess (a warning, not an error).
MIN_EXAMPLES = {"zh": 15, "en": 5}
MAX_DEPTH_WARNING = 3

M = TypeVar("M", bound=BaseModel)


@dataclass(frozen=True)
class SpeechSettings:
    deadline_s: float
    min_length_s: float
    max_length_s: float
    vosk_rate: int | None
    zh_model: str | None
    en_model: str | None


@dataclass(frozen=True)
class Staffing:
    agents: Mapping[str, Agent]
    wrap_up_s: int
    service_level_s: int
    idle_recheck_s: int


@dataclass(frozen=True)
class LoadedConfig:
    plan: IvrPlan
    directory: Path
    digest: str  # changes whenever any file changes: tells a reload what it loaded
    warnings: tuple[str, ...]
    examples: Mapping[str, DeskExamples]
    speech: SpeechSettings
    staffing: Staffing
    districts: Mapping[str, Mapping[str, str]]  # district id -> language -> name
    departments: Mapping[str, Mapping[str, str]]  # department id -> language -> name
    # department id -> SHA-256 hex digests of its ops API tokens (access.yaml)
    access: Mapping[str, tuple[str, ...]]
    callbacks: CallbackPolicy = field(default_factory=CallbackPolicy)  # line.yaml callbacks:


def config_files(directory: Path) -> list[Path]:
    """Every file the config is made of (the fixed files and the examples)."""
    fixed = [directory / filename for filename, _ in FILES.values()]
    return fixed + sorted((directory / EXAMPLES_DIR).glob("*.yaml"))


def load_config(directory: Path) -> LoadedConfig:
    """Load and validate the whole directory, or raise ConfigInvalid listing every problem."""
    errors: list[ConfigError] = []
    docs: dict[str, YamlDocument] = {}
    models: dict[str, BaseModel] = {}
    digest = hashlib.sha256()
    for part, (filename, model) in FILES.items():
        path = directory / filename
        if not path.is_file():
            errors.append(ConfigError(str(path), None, "", "file is missing"))
            continue
        read = _read(path, model, errors, digest)
        if read is None:
            continue
        docs[part], validated = read
        if validated is not None:
            models[part] = validated
    examples = _load_examples(directory, docs, errors, digest)
    if errors:
        raise ConfigInvalid(errors)
    line = _as(models["line"], schema.LineFile)
    prompts = _as(models["prompts"], schema.PromptsFile)
    specialties = _as(models["specialties"], schema.SpecialtiesFile)
    menus = _as(models["menus"], schema.MenusFile)
    tiers = _as(models["tiers"], schema.TiersFile)
    speech = _as(models["speech"], schema.SpeechFile)
    agents = _as(models["agents"], schema.AgentsFile)
    districts = _as(models["districts"], schema.DistrictsFile)
    access = _as(models["access"], schema.AccessFile)
    checker = _CrossCheck(docs, errors)
    checker.calendar(tiers)
    checker.districts(districts, [lang.code for lang in line.languages])
    checker.agents(agents, specialties)
    checker.access(access, specialties)
    checker.run(line, prompts, specialties, menus)
    checker.examples(examples, specialties, [lang.code for lang in line.languages])
    if errors:
        raise ConfigInvalid(errors)
    plan = _build(line, prompts, specialties, menus, tiers, speech)
    desks = {
        desk: DeskExamples(
            keywords={lang: tuple(words) for lang, words in spec.keywords.items()},
            examples={
                lang: {appeal: tuple(u) for appeal, u in by_appeal.items()}
                for lang, by_appeal in spec.examples.items()
            },
        )
        for desk, (_, spec) in examples.items()
    }
    r = speech.recognition
    settings = SpeechSettings(
        r.deadline_s,
        r.min_length_s,
        r.max_length_s,
        r.vosk_rate,
        speech.models.zh,
        speech.models.en,
    )
    warnings = _warnings(plan) + _example_warnings(plan, desks)
    staffing = Staffing(
        agents={
            a.id: Agent(
                a.id,
                a.name,
                a.answers_on,
                a.pin_hash,
                {desk: DeskLevel(level) for desk, level in a.desks.items()},
            )
            for a in agents.agents
        },
        wrap_up_s=agents.wrap_up_s,
        service_level_s=agents.service_level_s,
        idle_recheck_s=agents.idle_recheck_s,
    )
    return LoadedConfig(
        plan,
        directory,
        digest.hexdigest()[:16],
        tuple(warnings),
        desks,
        settings,
        staffing,
        districts={d: dict(names) for d, names in districts.districts.items()},
        departments={d: dict(names) for d, names in specialties.departments.items()},
        access={d: tuple(digests) for d, digests in access.departments.items()},
        callbacks=CallbackPolicy(
            max_in_flight=line.callbacks.max_in_flight,
            per_desk=line.callbacks.per_desk,
            attempts=line.callbacks.attempts,
            retry_after=timedelta(minutes=line.callbacks.retry_after_min),
            ring_timeout_s=line.callbacks.ring_timeout_s,
            stop_before_close=timedelta(minutes=line.callbacks.stop_before_close_min),
        ),
    )


def _load_examples(
    directory: Path,
    docs: dict[str, YamlDocument],
    errors: list[ConfigError],
    digest: Any,
) -> dict[str, tuple[str, schema.DeskExamplesSpec]]:
    """Every desk's examples, with the part (file) each came from."""
    found: dict[str, tuple[str, schema.DeskExamplesSpec]] = {}
    for path in sorted((directory / EXAMPLES_DIR).glob("*.yaml")):
        part = f"{EXAMPLES_DIR}/{path.name}"
        read = _read(path, schema.ExamplesFile, errors, digest)
        if read is None:
            continue
        doc, validated = read
        docs[part] = doc
        if validated is None:
            continue
        for desk, spec in validated.root.items():
            if desk in found:
                errors.append(
                    ConfigError(
                        str(path),
                        doc.line_of((desk,)),
                        desk,
                        f"examples for {desk!r} are also in {found[desk][0]}",
                    )
                )
                continue
            found[desk] = (part, spec)
    return found


def _read(
    path: Path, model: type[M], errors: list[ConfigError], digest: Any
) -> tuple[YamlDocument, M | None] | None:
    """One file: its text into the digest, parsed (None if not YAML), then validated."""
    digest.update(path.read_bytes())
    try:
        doc = read_yaml(path)
    except YamlSyntaxError as exc:
        errors.append(ConfigError(str(path), exc.line, "", f"not valid YAML: {exc.message}"))
        return None
    return doc, _validate(doc, model, errors)


def _as(model: BaseModel, kind: type[M]) -> M:
    assert isinstance(model, kind)
    return model


def _validate(doc: YamlDocument, model: type[M], errors: list[ConfigError]) -> M | None:
    try:
        return model.model_validate(doc.data if doc.data is not None else {})
    except ValidationError as exc:
        for err in exc.errors():
            loc = tuple(err["loc"])
            errors.append(ConfigError(str(doc.path), doc.line_of(loc), _dotted(loc), _message(err)))
        return None


def _dotted(loc: tuple[Any, ...]) -> str:
    return ".".join(str(p) for p in loc)


def _message(err: Mapping[str, Any]) -> str:
    if err["type"] == "extra_forbidden":
        return "unknown field (check the spelling; see docs/configuration.md)"
    if err["type"] == "missing":
        return "required field is missing"
    return str(err["msg"])


class _CrossCheck:
    """References between files, languages in every text, placeholders in every prompt."""

    def __init__(self, docs: Mapping[str, YamlDocument], errors: list[ConfigError]) -> None:
        self._docs = docs
        self._errors = errors

    def error(self, part: str, loc: tuple[str | int, ...], message: str) -> None:
        doc = self._docs[part]
        self._errors.append(ConfigError(str(doc.path), doc.line_of(loc), _dotted(loc), message))

    def run(
        self,
        line: schema.LineFile,
        prompts: schema.PromptsFile,
        specialties: schema.SpecialtiesFile,
        menus: schema.MenusFile,
    ) -> None:
        langs = [lang.code for lang in line.languages]
        if len(set(langs)) != len(langs):
            self.error("line", ("languages",), "a language code is listed twice")
        try:
            ZoneInfo(line.timezone)
        except (ZoneInfoNotFoundError, ValueError):
            self.error("line", ("timezone",), f"unknown time zone {line.timezone!r}")
        seen_dates: set[object] = set()
        for i, override in enumerate(line.hours.overrides):
            if override.date in seen_dates:
                self.error("line", ("hours", "overrides", i, "date"), "this date is listed twice")
            seen_dates.add(override.date)
        self._prompts(prompts, langs)
        self._specialties(specialties, langs)
        self._menus(menus, specialties, langs, line.dialogue.switch_key)

    def _text(
        self, part: str, loc: tuple[str | int, ...], text: Mapping[str, str], langs: list[str]
    ) -> None:
        for lang in langs:
            if lang not in text:
                self.error(part, loc, f"no text in language {lang!r}")
        for lang in text:
            if lang not in langs:
                self.error(part, (*loc, lang), f"language {lang!r} is not in line.yaml languages")

    def _prompts(self, prompts: schema.PromptsFile, langs: list[str]) -> None:
        for name in schema.PromptsFile.model_fields:
            if name == "key_names":
                continue
            text: dict[str, str] = getattr(prompts, name)
            self._text("prompts", (name,), text, langs)
            allowed = schema.PLACEHOLDERS.get(name, frozenset())
            for lang, phrase in text.items():
                try:
                    used = {f for _, f, _, _ in string.Formatter().parse(phrase) if f is not None}
                except ValueError as exc:
                    self.error("prompts", (name, lang), f"bad braces: {exc}")
                    continue
                unknown = used - allowed
                if unknown:
                    allowed_list = ", ".join(sorted(allowed)) or "none"
                    self.error(
                        "prompts",
                        (name, lang),
                        f"unknown placeholder {{{sorted(unknown)[0]}}}; allowed: {allowed_list}",
                    )
        for key, text in prompts.key_names.items():
            self._text("prompts", ("key_names", key), text, langs)

    def _specialties(self, file: schema.SpecialtiesFile, langs: list[str]) -> None:
        if file.general_desk not in file.specialties:
            self.error("specialties", ("general_desk",), f"unknown specialty {file.general_desk!r}")
        for dept_id, text in file.departments.items():
            self._text("specialties", ("departments", dept_id), text, langs)
        queues: dict[str, str] = {}
        for spec_id, spec in file.specialties.items():
            here: tuple[str, ...] = ("specialties", spec_id)
            self._text("specialties", (*here, "name"), spec.name, langs)
            if spec.department not in file.departments:
                self.error(
                    "specialties", (*here, "department"), f"unknown department {spec.department!r}"
                )
            overflow = spec.queue.overflow
            if overflow != VOICEMAIL and overflow not in file.specialties:
                self.error(
                    "specialties",
                    (*here, "queue", "overflow"),
                    f"unknown specialty {overflow!r} (or use 'voicemail')",
                )
            if overflow == spec_id:
                self.error(
                    "specialties",
                    (*here, "queue", "overflow"),
                    "a queue cannot overflow into itself",
                )
            name = spec.queue.name or _queue_name(spec_id)
            if name in queues:
                self.error(
                    "specialties",
                    (*here, "queue", "name"),
                    f"queue {name!r} is already used by {queues[name]!r}",
                )
            queues[name] = spec_id

    def _menus(
        self,
        file: schema.MenusFile,
        specialties: schema.SpecialtiesFile,
        langs: list[str],
        switch_key: str,
    ) -> None:
        if file.root not in file.menus:
            self.error("menus", ("root",), f"unknown menu {file.root!r}")
            return
        parents: dict[str, str] = {}
        for menu_id, menu in file.menus.items():
            here: tuple[str, ...] = ("menus", menu_id)
            self._text("menus", (*here, "title"), menu.title, langs)
            self._text("menus", (*here, "prompt"), menu.prompt, langs)
            for key, option in menu.options.items():
                at = (*here, "options", key)
                if option.label is not None:
                    self._text("menus", (*at, "label"), option.label, langs)
                if menu_id == file.root and key == switch_key:
                    self.error(
                        "menus",
                        at,
                        f"key {key} switches the language on the root menu "
                        "(line.yaml dialogue.switch_key); choose another key",
                    )
                if option.menu is not None:
                    if option.menu not in file.menus:
                        self.error("menus", (*at, "menu"), f"unknown menu {option.menu!r}")
                    elif option.menu == file.root:
                        self.error(
                            "menus",
                            (*at, "menu"),
                            "the root menu cannot be a submenu (use # to go back)",
                        )
                    elif option.menu in parents:
                        self.error(
                            "menus",
                            (*at, "menu"),
                            f"menu {option.menu!r} is already reached from "
                            f"{parents[option.menu]!r}; a menu has one parent",
                        )
                    else:
                        parents[option.menu] = menu_id
                if option.specialty is not None and option.specialty not in specialties.specialties:
                    self.error(
                        "menus", (*at, "specialty"), f"unknown specialty {option.specialty!r}"
                    )
        reachable = _reachable(file.root, parents)
        for menu_id in file.menus:
            if menu_id not in reachable:
                self.error("menus", ("menus", menu_id), "no key leads to this menu from the root")

    def calendar(self, file: schema.TiersFile) -> None:
        """A day listed twice, or as both a holiday and a make-up workday, is a typo."""
        seen: dict[object, str] = {}
        for field_name in ("holidays", "makeup_workdays"):
            days: list[date] = getattr(file, field_name)
            for i, day in enumerate(days):
                if day in seen:
                    self.error("tiers", (field_name, i), f"{day} is already listed in {seen[day]}")
                seen[day] = field_name

    def districts(self, file: schema.DistrictsFile, langs: list[str]) -> None:
        for district, names in file.districts.items():
            self._text("districts", ("districts", district), names, langs)

    def access(self, file: schema.AccessFile, specialties: schema.SpecialtiesFile) -> None:
        owner: dict[str, str] = {}
        for dept, digests in file.departments.items():
            if dept not in specialties.departments:
                self.error(
                    "access",
                    ("departments", dept),
                    f"unknown department {dept!r} (see specialties.yaml departments)",
                )
            for i, digest in enumerate(digests):
                # One token for two departments would let one act as the other.
                if digest in owner:
                    self.error(
                        "access",
                        ("departments", dept, i),
                        f"this digest is already a token of {owner[digest]!r}",
                    )
                owner.setdefault(digest, dept)

    def agents(self, file: schema.AgentsFile, specialties: schema.SpecialtiesFile) -> None:
        seen: dict[str, int] = {}
        for i, agent in enumerate(file.agents):
            if agent.id in seen:
                self.error(
                    "agents",
                    ("agents", i, "id"),
                    f"agent id {agent.id!r} is also agent number {seen[agent.id] + 1}",
                )
            seen[agent.id] = i
            for desk in agent.desks:
                if desk not in specialties.specialties:
                    self.error(
                        "agents", ("agents", i, "desks", desk), f"unknown specialty {desk!r}"
                    )

    def examples(
        self,
        found: Mapping[str, tuple[str, schema.DeskExamplesSpec]],
        specialties: schema.SpecialtiesFile,
        langs: list[str],
    ) -> None:
        for desk, (part, spec) in found.items():
            if desk not in specialties.specialties:
                self.error(part, (desk,), f"unknown specialty {desk!r}")
            for field_name, texts in (("keywords", spec.keywords), ("examples", spec.examples)):
                for lang in texts:
                    if lang not in langs:
                        self.error(
                            part,
                            (desk, field_name, lang),
                            f"language {lang!r} is not in line.yaml languages",
                        )


def _reachable(root: str, parents: Mapping[str, str]) -> set[str]:
    found = {root}
    changed = True
    while changed:
        changed = False
        for child, parent in parents.items():
            if parent in found and child not in found:
                found.add(child)
                changed = True
    return found


def _queue_name(specialty_id: str) -> str:
    return f"desk-{specialty_id}"


def _build(
    line: schema.LineFile,
    prompts: schema.PromptsFile,
    specialties: schema.SpecialtiesFile,
    menus: schema.MenusFile,
    tiers: schema.TiersFile,
    speech: schema.SpeechFile,
) -> IvrPlan:
    zone = ZoneInfo(line.timezone)
    overrides = {
        o.date: None if o.closed else Window(o.open, o.close)  # type: ignore[arg-type]
        for o in line.hours.overrides
    }
    hours = BusinessHours(
        zone=zone,
        daily=Window(line.hours.open, line.hours.close),
        overrides=overrides,
        emergency_closed=line.hours.emergency_closed,
    )
    desks = {
        spec_id: Specialty(
            id=spec_id,
            name=dict(spec.name),
            department=spec.department,
            queue=spec.queue.name or _queue_name(spec_id),
            queue_size=spec.queue.size,
            overflow=spec.queue.overflow,
            tier_overrides=dict(spec.tiers),
            max_wait_s=spec.queue.max_wait_s,
        )
        for spec_id, spec in specialties.specialties.items()
    }
    parents = {
        option.menu: menu_id
        for menu_id, menu in menus.menus.items()
        for option in menu.options.values()
        if option.menu is not None
    }
    built_menus = {
        menu_id: Menu(
            id=menu_id,
            title=dict(menu.title),
            prompt=dict(menu.prompt),
            options={
                key: MenuOption(key, _target(option), dict(option.label) if option.label else None)
                for key, option in menu.options.items()
            },
            parent=parents.get(menu_id),
        )
        for menu_id, menu in menus.menus.items()
    }
    prompt_texts = {
        name: dict(getattr(prompts, name))
        for name in schema.PromptsFile.model_fields
        if name != "key_names"
    }
    d = line.dialogue
    plan = IvrPlan(
        languages=tuple(
            Language(lg.code, lg.name, lg.say_language, lg.voice) for lg in line.languages
        ),
        root=menus.root,
        menus=built_menus,
        specialties=desks,
        general_desk=specialties.general_desk,
        hours=hours,
        tiers=TierRules(dict(tiers.defaults)),
        calendar=WorkCalendar(
            working_days=tiers.count == "working-days",
            holidays=frozenset(tiers.holidays),
            makeup_workdays=frozenset(tiers.makeup_workdays),
        ),
        prompts=Prompts(
            **prompt_texts, key_names={k: dict(v) for k, v in prompts.key_names.items()}
        ),
        dialogue=Dialogue(
            max_tries=d.max_tries,
            gather_timeout_s=d.gather_timeout_s,
            switch_key=d.switch_key,
            describe=RecordSettings(
                d.describe.max_length_s, d.describe.timeout_s, d.describe.finish_on_key
            ),
            voicemail=RecordSettings(
                d.voicemail.max_length_s, d.voicemail.timeout_s, d.voicemail.finish_on_key
            ),
            queue=QueueSettings(
                d.queue.hold_music_url, d.queue.hold_pause_s, d.queue.offer_voicemail_every
            ),
            understanding=UnderstandingSettings(
                speech.understanding.confirm_at,
                speech.understanding.choose_at,
                speech.understanding.attempts,
            ),
        ),
        router=QueueRouter(desks),
    )
    return with_menu_words(plan)


def _target(option: schema.OptionSpec) -> OptionTarget:
    if option.menu is not None:
        return ToMenu(option.menu)
    if option.specialty is not None:
        return ToSpecialty(option.specialty)
    if option.describe:
        return ToDescribe()
    return ToGeneralDesk()


def key_depths(plan: IvrPlan) -> dict[str, int]:
    """The fewest key presses from the root that reach each specialty."""
    depths: dict[str, int] = {plan.general_desk: 1}  # 0 reaches the general desk anywhere
    frontier = [(plan.root, 0)]
    while frontier:
        menu_id, depth = frontier.pop()
        for option in plan.menus[menu_id].options.values():
            match option.target:
                case ToMenu(menu=child):
                    frontier.append((child, depth + 1))
                case ToSpecialty(specialty=spec):
                    depths[spec] = min(depths.get(spec, depth + 1), depth + 1)
    return depths


def _example_warnings(plan: IvrPlan, desks: Mapping[str, DeskExamples]) -> list[str]:
    warnings: list[str] = []
    for desk in plan.specialties:
        examples = desks.get(desk)
        for lang in plan.language_codes():
            have = examples.count(lang) if examples else 0
            want = MIN_EXAMPLES.get(lang, 5)
            if have < want:
                warnings.append(
                    f"specialty {desk!r} has {have} {lang} examples "
                    f"(fewer than {want}): callers' words will often miss it"
                )
    return warnings


def _warnings(plan: IvrPlan) -> list[str]:
    depths = key_depths(plan)
    warnings = [
        f"specialty {spec!r} cannot be reached by keys (only by speech or overflow)"
        for spec in plan.specialties
        if spec not in depths
    ]
    warnings += [
        f"specialty {spec!r} needs {depth} key presses (more than {MAX_DEPTH_WARNING})"
        for spec, depth in sorted(depths.items())
        if depth > MAX_DEPTH_WARNING
    ]
    return warnings
