"""The signature check on its own: Twilio's documented scheme, computed here by hand
(HMAC over the URL followed by each parameter's name and value, sorted by name)."""

from __future__ import annotations

import base64
import hashlib
import hmac

from hotline.twilio.signature import SignatureCheck

TOKEN = "auth-token-for-these-tests"
FORM = {"CallSid": "CA" + "1" * 32, "From": "+8613800000000", "Digits": "2"}
SETTINGS = "X-Twilio-Webhooks-Signature-Settings"


def signed(secret: str, url: str, form: dict[str, str], digest: str = "sha1") -> str:
    text = url + "".join(name + form[name] for name in sorted(form))
    mac = hmac.new(secret.encode(), text.encode(), getattr(hashlib, digest))
    return base64.b64encode(mac.digest()).decode()


def headers(signature: str, **more: str) -> dict[str, str]:
    return {"X-Twilio-Signature": signature, **more}


def test_the_url_as_sent_validates() -> None:
    url = "https://hotline.example.gov/twilio/menu?lang=zh&node=main"
    check = SignatureCheck(TOKEN)
    assert check.valid(url, FORM, headers(signed(TOKEN, url, FORM)))


def test_a_signature_over_the_url_with_or_without_its_port_validates() -> None:
    """Twilio signs some requests with the default port in the URL and some without."""
    check = SignatureCheck(TOKEN)
    bare = "https://hotline.example.gov/twilio/menu?node=main"
    with_port = "https://hotline.example.gov:443/twilio/menu?node=main"
    assert check.valid(bare, FORM, headers(signed(TOKEN, with_port, FORM)))
    assert check.valid(with_port, FORM, headers(signed(TOKEN, bare, FORM)))


def test_wrong_token_changed_field_or_other_url_is_refused() -> None:
    url = "https://hotline.example.gov/twilio/menu?node=main"
    check = SignatureCheck(TOKEN)
    assert not check.valid(url, FORM, headers(signed("another-token", url, FORM)))
    assert not check.valid(url, {**FORM, "Digits": "3"}, headers(signed(TOKEN, url, FORM)))
    assert not check.valid(url + "x", FORM, headers(signed(TOKEN, url, FORM)))
    assert not check.valid(url, FORM, {})


def test_shared_key_signatures_need_the_key_and_a_known_algorithm() -> None:
    url = "https://hotline.example.gov/twilio/voice"
    rule = {SETTINGS: "key=webhooks_sharedkey_1,algorithm=HMAC_SHA256"}
    signature = signed("shared-secret", url, FORM, "sha256")
    with_key = SignatureCheck(TOKEN, "shared-secret")
    assert with_key.valid(url, FORM, headers(signature, **rule))
    assert not SignatureCheck(TOKEN).valid(url, FORM, headers(signature, **rule))
    unknown = {SETTINGS: "key=webhooks_sharedkey_1,algorithm=HMAC_MD5"}
    assert not with_key.valid(url, FORM, headers(signature, **unknown))


def test_a_signature_that_is_not_ascii_is_refused_not_an_error() -> None:
    url = "https://hotline.example.gov/twilio/voice"
    assert not SignatureCheck(TOKEN).valid(url, FORM, headers("签名\udcff"))
