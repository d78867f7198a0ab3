"""Rate limits of one process without Redis (the in-process counters): a caller number
calling too often is refused politely, an API token asking too often gets 429."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET

from hotline.carrier.callers import ScriptedCaller
from hotline.config import LoadedConfig
from tests.support.line import ADMIN_TOKEN, running_line

NUMBER = "+8613700005555"


async def test_a_number_calling_too_often_is_refused_politely(
    db_url: str, shipped: LoadedConfig
) -> None:
    sorry = shipped.plan.prompts.rate_limited
    async with running_line(db_url, calls_per_caller_per_min=1) as line:
        first = await line.call(ScriptedCaller(keys=["0"]), from_number=NUMBER)
        assert first.queue_results  # reached the general desk's queue
        params = {
            "CallSid": "CA" + "7" * 32,
            "From": NUMBER,
            "To": "+8610123450000",
            "AccountSid": "AC" + "0" * 32,
            "CallStatus": "ringing",
        }
        response = await line.carrier.post("/twilio/voice", params)
        assert response.status == 200 and response.content_type == "text/xml"
        verbs = list(ET.fromstring(response.content))
        assert [v.tag for v in verbs] == ["Say", "Say", "Hangup"]
        assert [(v.get("language"), v.text) for v in verbs[:2]] == [
            ("zh-CN", sorry["zh"]),
            ("en-US", sorry["en"]),
        ]
        log = line.log.getvalue()
        assert '"event":"caller_rate_limited"' in log and '"+86137****5555"' in log
        assert NUMBER not in log
        ticket = await line.ticket(params["CallSid"])  # refused, but not lost
        assert ticket["status"] == "new" and ticket["menu_path"] == []
        refused = [e for e in map(json.loads, log.splitlines()) if e.get("route") == "voice"]
        assert refused[-1]["outcome"] == "refused:rate-limited"
        assert refused[-1]["ticket"] == ticket["number"]

        line.clock.now = line.clock.now.replace(minute=1)  # the next minute
        again = await line.call(ScriptedCaller(keys=["0"]), from_number=NUMBER)
        assert again.queue_results


async def test_an_api_token_asking_too_often_gets_429(db_url: str) -> None:
    async with running_line(db_url, api_requests_per_token_per_min=2) as line:
        for _ in range(3):  # refused requests count for nobody
            assert (await line.api("/api/tickets", token="wrong"))[0] == 401
        assert (await line.api("/api/tickets"))[0] == 200
        assert (await line.api("/api/live"))[0] == 200
        line.clock.now = line.clock.now.replace(second=45)
        headers = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
        async with line.session.get(line.base_url + "/api/tickets", headers=headers) as response:
            body = await response.json()
            assert response.status == 429 and response.headers["Retry-After"] == "15"
            assert body["error"] == "rate-limited" and body["message"]
        status, health = await line.api("/healthz", token=None)  # not an /api/ route
        assert status == 200 and health["redis"] == "off" and health["status"] == "ok"
        assert '"event":"api_rate_limited"' in line.log.getvalue()
