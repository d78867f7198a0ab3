"""The flow's verbs as TwiML, built only with twilio's VoiceResponse."""

from __future__ import annotations

import re
from collections import OrderedDict
from collections.abc import Mapping, Sequence

from aiohttp import web
from twilio.twiml.voice_response import Dial as TwimlDial
from twilio.twiml.voice_response import Gather as TwimlGather
from twilio.twiml.voice_response import VoiceResponse

from hotline.twilio.urls import url_for
from ivr.actions import (
    Dial,
    Enqueue,
    Gather,
    Hangup,
    Leave,
    Pause,
    Play,
    Prompt,
    Record,
    Redirect,
    Say,
    Verb,
)
from ivr.model import Language

_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
CONTENT_TYPE = "text/xml"


def clean(text: str) -> str:
    """The builder writes control characters as they are, which is not valid XML."""
    return _CONTROL.sub(" ", text)


def twiml(document: str) -> web.Response:
    return web.Response(text=document, content_type=CONTENT_TYPE)


def empty_twiml() -> web.Response:
    """The answer to a callback that needs no TwiML (a status callback, say)."""
    return twiml('<?xml version="1.0" encoding="UTF-8"?><Response />')


class TwimlDocuments:
    """The documents that steps of the flow render to, kept (least recently used out).

    The same step renders the same document for every caller in it (the verbs carry the
    call's state, not the caller), and building one with the twilio library's ElementTree
    cost more CPU than all the rest of a menu webhook.
    """

    def __init__(self, size: int = 4096) -> None:
        self._size = size
        self._documents: OrderedDict[tuple[object, ...], str] = OrderedDict()

    def __len__(self) -> int:
        return len(self._documents)

    def render(self, languages: tuple[Language, ...], verbs: Sequence[Verb]) -> str:
        key = (languages, *verbs)
        found = self._documents.get(key)
        if found is not None:
            self._documents.move_to_end(key)
            return found
        document = TwimlRenderer({lang.code: lang for lang in languages}).render(verbs)
        self._documents[key] = document
        if len(self._documents) > self._size:
            self._documents.popitem(last=False)
        return document


class TwimlRenderer:
    def __init__(self, languages: Mapping[str, Language]) -> None:
        self._languages = languages

    def render(self, verbs: Sequence[Verb]) -> str:
        response = VoiceResponse()
        for verb in verbs:
            self._add(response, verb)
        return str(response.to_xml(xml_declaration=True))

    def _add(self, response: VoiceResponse, verb: Verb) -> None:
        match verb:
            case Say() | Play() | Pause():
                self._prompt(response, verb)
            case Gather(
                prompt=prompt, target=target, timeout_s=timeout, num_digits=n, finish_on_key=key
            ):
                gather = TwimlGather(
                    input="dtmf",
                    num_digits=n,
                    timeout=timeout,
                    action=url_for(target),
                    method="POST",
                    finish_on_key=key,
                )
                for item in prompt:
                    self._prompt(gather, item)
                response.append(gather)
            case Record(target=target, max_length_s=max_len, timeout_s=timeout, finish_on_key=key):
                response.record(
                    action=url_for(target),
                    method="POST",
                    max_length=max_len,
                    timeout=timeout,
                    finish_on_key=key,
                    play_beep=True,
                )
            case Enqueue(queue=queue, done=done, wait=wait):
                response.enqueue(
                    queue,
                    action=url_for(done),
                    method="POST",
                    wait_url=url_for(wait),
                    wait_url_method="POST",
                )
            case Redirect(target=target):
                response.redirect(url_for(target), method="POST")
            case Leave():
                response.leave()
            case Dial(queue=queue, done=done, greet=greet, timeout_s=timeout):
                dial = TwimlDial(action=url_for(done), method="POST", timeout=timeout)
                dial.queue(queue, url=url_for(greet), method="POST")
                response.append(dial)
            case Hangup():
                response.hangup()

    def _prompt(self, parent: VoiceResponse | TwimlGather, prompt: Prompt) -> None:
        match prompt:
            case Say(text=text, lang=lang):
                language = self._languages.get(lang)
                attrs: dict[str, str] = {}
                if language is not None:
                    attrs["language"] = language.say_language
                    if language.voice:
                        attrs["voice"] = language.voice
                parent.say(clean(text), **attrs)
            case Play(url=url):
                parent.play(clean(url))
            case Pause(seconds=seconds):
                parent.pause(length=seconds)
