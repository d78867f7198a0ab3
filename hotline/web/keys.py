"""Typed application keys: everything a handler needs, set up in one place (app.py)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

import aiohttp
from aiohttp import web
from aiohttp.typedefs import Middleware

from hotline.auth.accounts import Account
from hotline.auth.passwords import Passwords
from hotline.callbacks.dispatcher import Dispatcher
from hotline.config.live import LiveConfig
from hotline.observability.metrics import Metrics
from hotline.settings import Settings
from hotline.store.agents import AgentStore
from hotline.store.casework import CaseStore
from hotline.store.durable import TicketWrites
from hotline.store.jobs import JobStore
from hotline.store.shared import SharedState
from hotline.store.tickets import TicketStore
from hotline.store.users import UserStore
from hotline.twilio.rest import Dialer, QueueMembers
from hotline.twilio.signature import SignatureCheck
from hotline.twilio.twiml import TwimlDocuments
from hotline.twilio.webhooks import Webhook
from hotline.understanding.understander import ClassifierCache, Understander
from hotline.understanding.voicemail import VoicemailReader
from hotline.web.live_reads import SharedReads

Clock = Callable[[], datetime]

SETTINGS = web.AppKey("settings", Settings)
CONFIG = web.AppKey("config", LiveConfig)
STORE = web.AppKey("store", TicketStore)
# The webhooks' ticket writes: the store, or the local spool while the database is away.
TICKETS = web.AppKey("tickets", TicketWrites)
CLOCK: web.AppKey[Clock] = web.AppKey("clock")
SIGNATURES = web.AppKey("signatures", SignatureCheck)
UNDERSTANDER = web.AppKey("understander", Understander)
CLASSIFIERS = web.AppKey("classifiers", ClassifierCache)
AGENTS = web.AppKey("agents", AgentStore)
CASEWORK = web.AppKey("casework", CaseStore)
JOBS = web.AppKey("jobs", JobStore)
DIALER: web.AppKey[Dialer] = web.AppKey("dialer")
# Takes the caller an agent gets out of its queue (set when the REST API can be used).
MEMBERS: web.AppKey[QueueMembers] = web.AppKey("members")
DISPATCHER = web.AppKey("dispatcher", Dispatcher)  # set when calls may be placed
METRICS = web.AppKey("metrics", Metrics)
# Outbound HTTP of this process (recordings fetched from Twilio).
HTTP = web.AppKey("http", aiohttp.ClientSession)
TWIML_DOCUMENTS = web.AppKey("twiml_documents", TwimlDocuments)
VOICEMAILS = web.AppKey("voicemails", VoicemailReader)
# Rate-limit counters and the live view's change notices: Redis, or this process alone.
SHARED: web.AppKey[SharedState] = web.AppKey("shared")
# The live streams' reads of the line, shared by the streams a change wakes together.
LIVE_READS = web.AppKey("live_reads", SharedReads)
# Set by a webhook that changed nothing the live view shows (a move between menus, a
# hold-music loop): no announcement to the live streams then.
UNCHANGED = web.RequestKey("unchanged", bool)
# The webhook of a /twilio request, signed and parsed (hotline.web.voice.app.guard).
WEBHOOK = web.RequestKey("webhook", Webhook)

# People's accounts and their logins (the agents' desk, the departments', the centre's pages).
USERS = web.AppKey("users", UserStore)
PASSWORDS = web.AppKey("passwords", Passwords)
# Where people's sessions are kept (Redis, or this process), and aiohttp-session's
# middleware over it, which the people's pages run through (hotline.web.people.pages).
SESSION_LAYER: web.AppKey[Middleware] = web.AppKey("session_layer")
# The person logged in, on the requests of the pages that ask for one
# (hotline.web.people.guard.requires).
ACCOUNT = web.RequestKey("account", Account)
