"""The Aliyun and Tencent SMS and voice plugins, through the real SDKs, against the
local stand-in of each provider (signatures checked with the test keys)."""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path

import pytest

from alerts.channels.templates import TemplateParams
from alerts.channels.tencent import voice_callback_outcome
from alerts.outcomes import Receipt
from alerts.sender import AppriseSender, DeliveryError
from eldercare.logs import _Formatter, redact_secrets
from tests.helpers.china_providers import (
    ALIYUN_KEY_ID,
    ALIYUN_SECRET,
    TENCENT_SECRET_ID,
    TENCENT_SECRET_KEY,
    FakeChinaProviders,
)

pytestmark = pytest.mark.asyncio(loop_scope="session")

PARAMS = TemplateParams("张秀英", "跌倒", "02:41", "请致电本人 13900000001")


def aliyun_sms(p: FakeChinaProviders, phone: str = "13800000001", template: str = "SMS_1") -> str:
    return (
        f"aliyunsms://{ALIYUN_KEY_ID}:{ALIYUN_SECRET}@{template}/{phone}"
        f"?sign=%E5%85%BB%E8%80%81%E5%B9%B3%E5%8F%B0&{p.url_args()}"
    )


def aliyun_voice(p: FakeChinaProviders, phone: str = "13800000001", tts: str = "TTS_1") -> str:
    return f"aliyunvoice://{ALIYUN_KEY_ID}:{ALIYUN_SECRET}@{tts}/{phone}?show=05431234567&{p.url_args()}"


def tencent_sms(p: FakeChinaProviders, phone: str = "13800000001", template: str = "100") -> str:
    return (
        f"tencentsms://{TENCENT_SECRET_ID}:{TENCENT_SECRET_KEY}@1400000001/{phone}"
        f"?sign=%E5%85%BB%E8%80%81&template={template}&{p.url_args()}"
    )


def tencent_voice(p: FakeChinaProviders, phone: str = "13800000001", template: str = "200") -> str:
    return (
        f"tencentvoice://{TENCENT_SECRET_ID}:{TENCENT_SECRET_KEY}@1400000002/{phone}"
        f"?template={template}&{p.url_args()}"
    )


async def send(url: str, params: TemplateParams | None = PARAMS) -> Receipt | None:
    sender = AppriseSender(max_threads=2)
    try:
        return await sender.send(url, "【紧急】跌倒：张秀英", "正文", 20.0, "failure", params)
    finally:
        sender.close()


async def query(url: str, ref: str) -> Receipt | None:
    sender = AppriseSender(max_threads=2)
    try:
        return await sender.query(url, ref, time.time(), 20.0)
    finally:
        sender.close()


async def test_aliyun_sms_sends_the_template_and_reads_its_receipt(
    providers: FakeChinaProviders,
) -> None:
    url = aliyun_sms(providers)
    receipt = await send(url)
    assert receipt is not None and receipt.outcome == "sent" and receipt.ref
    [call] = providers.of("SendSms")
    assert call.params["PhoneNumbers"] == "13800000001"
    assert call.params["SignName"] == "养老平台"
    assert call.params["TemplateCode"] == "SMS_1"
    assert json.loads(call.params["TemplateParam"]) == {
        "name": "张秀英",
        "kind": "跌倒",
        "time": "02:41",
        "action": "请致电本人 13900000001",
    }
    assert providers.bad_signatures == 0
    assert await query(url, receipt.ref) == Receipt("delivered", receipt.ref)
    providers.sms_failed_numbers.add("13800000001")
    assert await query(url, receipt.ref) == Receipt("failed", receipt.ref)


async def test_a_wrong_secret_is_refused_by_the_signature_check(
    providers: FakeChinaProviders,
) -> None:
    url = aliyun_sms(providers).replace(ALIYUN_SECRET, "not-the-secret")
    with pytest.raises(DeliveryError, match="SignatureDoesNotMatch"):
        await send(url)
    url = tencent_sms(providers).replace(TENCENT_SECRET_KEY, "not-the-key")
    with pytest.raises(DeliveryError, match=r"AuthFailure\.SignatureFailure"):
        await send(url)
    assert providers.bad_signatures == 2
    assert providers.of("SendSms") == []


@pytest.mark.parametrize(
    ("setup", "aliyun_code", "tencent_code"),
    [
        ("template", "isv.SMS_TEMPLATE_ILLEGAL", "FailedOperation.TemplateIncorrectOrUnapproved"),
        ("rate", "isv.BUSINESS_LIMIT_CONTROL", "LimitExceeded.PhoneNumberThirtySecondLimit"),
        ("balance", "isv.AMOUNT_NOT_ENOUGH", "FailedOperation.InsufficientBalanceInSmsPackage"),
    ],
)
async def test_provider_errors_fail_the_send_with_the_providers_code(
    providers: FakeChinaProviders, setup: str, aliyun_code: str, tencent_code: str
) -> None:
    if setup == "template":
        providers.invalid_templates |= {"SMS_1", "100"}
    elif setup == "rate":
        providers.rate_limited_numbers.add("13800000001")
    else:
        providers.insufficient_balance = True
    with pytest.raises(DeliveryError, match=aliyun_code):
        await send(aliyun_sms(providers))
    with pytest.raises(DeliveryError, match=tencent_code):
        await send(tencent_sms(providers))


async def test_aliyun_voice_is_calling_until_the_query_says_answered_or_not(
    providers: FakeChinaProviders,
) -> None:
    providers.call_states["13800000002"] = "200005"  # no answer
    answered_url = aliyun_voice(providers)
    unanswered_url = aliyun_voice(providers, phone="13800000002")
    first = await send(answered_url)
    second = await send(unanswered_url)
    assert first is not None and first.outcome == "calling" and first.ref
    assert second is not None and second.outcome == "calling" and second.ref
    calls = providers.of("SingleCallByTts")
    assert [c.params["CalledNumber"] for c in calls] == ["13800000001", "13800000002"]
    assert calls[0].params["TtsCode"] == "TTS_1"
    assert calls[0].params["CalledShowNumber"] == "05431234567"
    assert json.loads(calls[0].params["TtsParam"])["kind"] == "跌倒"
    assert await query(answered_url, first.ref) == Receipt("answered", first.ref)
    assert await query(unanswered_url, second.ref) == Receipt("not_answered", second.ref)


async def test_tencent_sms_and_voice(providers: FakeChinaProviders) -> None:
    sms = await send(tencent_sms(providers))
    assert sms is not None and sms.outcome == "sent"
    [call] = providers.of("SendSms")
    assert call.params["PhoneNumberSet"] == ["+8613800000001"]
    assert call.params["SmsSdkAppId"] == "1400000001"
    assert call.params["TemplateParamSet"] == ["张秀英", "跌倒", "02:41", "请致电本人 13900000001"]
    assert sms.ref is not None
    assert await query(tencent_sms(providers), sms.ref) == Receipt("delivered", sms.ref)

    providers.call_states["13800000003"] = "200005"
    voice = await send(tencent_voice(providers, phone="13800000003"))
    assert voice is not None and voice.outcome == "calling" and voice.ref
    [tts] = providers.of("SendTtsVoice")
    assert tts.params["CalledNumber"] == "+8613800000003"
    assert tts.params["VoiceSdkAppid"] == "1400000002"
    # Tencent tells the outcome only by callback.
    assert await query(tencent_voice(providers), voice.ref) is None
    callback = providers.tencent_voice_callback(voice.ref)
    assert voice_callback_outcome(callback) == (voice.ref, "not_answered")
    assert voice_callback_outcome({"voiceprompt_callback": {"callid": "x", "result": "0"}}) == (
        "x",
        "answered",
    )
    assert voice_callback_outcome({"something": "else"}) is None
    assert providers.bad_signatures == 0


async def test_secrets_in_the_new_urls_never_reach_a_log(
    providers: FakeChinaProviders, tmp_path: Path
) -> None:
    secret_file = tmp_path / "aliyun.secret"
    secret_file.write_text(ALIYUN_SECRET + "\n")
    from_file = (
        f"aliyunsms://{ALIYUN_KEY_ID}@SMS_1/13800000001?sign=x&secret_file={secret_file}"
        f"&{providers.url_args()}"
    )
    receipt = await send(from_file)  # the secret read from the file signs correctly
    assert receipt is not None and receipt.outcome == "sent"
    urls = [
        aliyun_sms(providers),
        aliyun_voice(providers),
        tencent_sms(providers),
        tencent_voice(providers),
    ]
    for url in urls:
        line = redact_secrets(f"sending to {url} failed")
        for secret in (ALIYUN_KEY_ID, ALIYUN_SECRET, TENCENT_SECRET_ID, TENCENT_SECRET_KEY):
            assert secret not in line
    # The providers' status callback URL carries its token as a query argument.
    callback = "POST /api/providers/tencent/voice-status?token=cb-secret-0123 HTTP/1.1"
    assert "cb-secret-0123" not in redact_secrets(callback)
    # And through the log formatter, as any logger (ours or Apprise's) would write it.
    record = logging.LogRecord("apprise", logging.WARNING, __file__, 1, "url=%s", (urls[3],), None)
    for as_json in (False, True):
        text = _Formatter(as_json=as_json).format(record)
        assert TENCENT_SECRET_KEY not in text and TENCENT_SECRET_ID not in text
