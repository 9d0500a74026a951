"""Aliyun (阿里云) SMS and voice notifications through the official SDKs
(`alibabacloud-dysmsapi20170525`: SendSms, QuerySendDetails;
`alibabacloud-dyvmsapi20170525`: SingleCallByTts, QueryCallDetailByCallId).

A voice call's outcome is known only after it ends: `deliver` returns `calling`
with the call id, and `query` asks QueryCallDetailByCallId until the call has a
final state. Only state 200000 (the callee picked up and heard the message) counts
as answered; every other final state (no answer, busy, off, unreachable) does not.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING, Any

from alerts.channels.base import ProviderError, ProviderPlugin
from alerts.channels.templates import TemplateParams
from alerts.outcomes import Receipt

if TYPE_CHECKING:
    from alibabacloud_tea_openapi.utils_models import Config

# The SDKs (with aiohttp and urllib3 under them) are imported where a channel is made or
# used: importing them took about a second of every `eldercare` process, configured for
# Aliyun or not.

SMS_ENDPOINT = "dysmsapi.aliyuncs.com"
VMS_ENDPOINT = "dyvmsapi.aliyuncs.com"
VOICE_NOTIFICATION_PROD_ID = 11000000300006  # QueryCallDetailByCallId: voice notifications
ANSWERED_STATE = "200000"
_CHINA = timezone(timedelta(hours=8))  # Aliyun's SendDate is a Beijing date


def _config(plugin: ProviderPlugin, default_endpoint: str) -> Config:
    from alibabacloud_tea_openapi.utils_models import Config

    return Config(
        access_key_id=plugin.key_id,
        access_key_secret=plugin.secret,
        endpoint=plugin.endpoint or default_endpoint,
        protocol=plugin.protocol_name,
        connect_timeout=5000,
        read_timeout=10000,
    )


def _check(body: Any) -> None:
    """Aliyun answers HTTP 200 with `Code` other than OK for business errors."""
    code = getattr(body, "code", None)
    if code != "OK":
        raise ProviderError(str(code), str(getattr(body, "message", "")))


def _sdk_call(fn: Any, request: Any) -> Any:
    """The SDK raises its own exceptions for HTTP errors; keep their code."""
    try:
        return fn(request).body
    except ProviderError:
        raise
    except Exception as exc:
        code = getattr(exc, "code", None)
        if code:
            raise ProviderError(str(code), str(getattr(exc, "message", "") or "")) from exc
        raise


class NotifyAliyunSms(ProviderPlugin):
    service_name = "Aliyun SMS"
    service_url = "https://www.aliyun.com/product/sms"
    secure_protocol = "aliyunsms"
    extra_args = ("sign",)
    templates = ("{schema}://{key_id}:{secret}@{template}/{targets}",)

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.sign = self.options.get("sign", "")
        if not self.sign:
            from apprise.exception import AppriseImproperlyConfigured

            raise AppriseImproperlyConfigured("aliyunsms:// needs sign= (the SMS signature)")
        from alibabacloud_dysmsapi20170525.client import Client as SmsClient

        self.client = SmsClient(_config(self, SMS_ENDPOINT))

    def deliver(self, phone: str, params: TemplateParams) -> Receipt:
        from alibabacloud_dysmsapi20170525 import models as sms_models

        request = sms_models.SendSmsRequest(
            phone_numbers=phone,
            sign_name=self.sign,
            template_code=self.app,
            template_param=params.to_json(),
        )
        body = _sdk_call(self.client.send_sms, request)
        _check(body)
        return Receipt("sent", f"{phone}|{body.biz_id}")

    def query(self, ref: str, sent_at: float) -> Receipt | None:
        """QuerySendDetails: SendStatus 3 delivered, 2 failed, 1 still waiting."""
        from alibabacloud_dysmsapi20170525 import models as sms_models

        phone, _, biz_id = ref.partition("|")
        request = sms_models.QuerySendDetailsRequest(
            phone_number=phone,
            biz_id=biz_id,
            send_date=datetime.fromtimestamp(sent_at, _CHINA).strftime("%Y%m%d"),
            page_size=10,
            current_page=1,
        )
        body = _sdk_call(self.client.query_send_details, request)
        _check(body)
        details = body.sms_send_detail_dtos
        rows = details.sms_send_detail_dto if details is not None else None
        for row in rows or []:
            if row.send_status == 3:
                return Receipt("delivered", ref)
            if row.send_status == 2:
                return Receipt("failed", ref)
        return None

    @staticmethod
    def parse_url(url: str) -> dict[str, Any] | None:
        return NotifyAliyunSms.parse_provider_url(url)


class NotifyAliyunVoice(ProviderPlugin):
    service_name = "Aliyun voice notification"
    service_url = "https://www.aliyun.com/product/vms"
    secure_protocol = "aliyunvoice"
    extra_args = ("show", "play")
    templates = ("{schema}://{key_id}:{secret}@{tts_code}/{targets}",)

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.show = self.options.get("show") or None  # the number the callee sees
        self.play_times = int(self.options.get("play") or 2)
        from alibabacloud_dyvmsapi20170525.client import Client as VmsClient

        self.client = VmsClient(_config(self, VMS_ENDPOINT))

    def deliver(self, phone: str, params: TemplateParams) -> Receipt:
        from alibabacloud_dyvmsapi20170525 import models as vms_models

        request = vms_models.SingleCallByTtsRequest(
            called_number=phone,
            called_show_number=self.show,
            tts_code=self.app,
            tts_param=params.to_json(),
            play_times=self.play_times,
        )
        body = _sdk_call(self.client.single_call_by_tts, request)
        _check(body)
        return Receipt("calling", str(body.call_id))

    def query(self, ref: str, sent_at: float) -> Receipt | None:
        from alibabacloud_dyvmsapi20170525 import models as vms_models

        request = vms_models.QueryCallDetailByCallIdRequest(
            call_id=ref,
            prod_id=VOICE_NOTIFICATION_PROD_ID,
            query_date=int(sent_at * 1000),
        )
        body = _sdk_call(self.client.query_call_detail_by_call_id, request)
        _check(body)
        if not body.data:
            return None  # the call has not ended yet
        state = str(json.loads(body.data).get("state") or "")
        if not state:
            return None
        if state == ANSWERED_STATE:
            return Receipt("answered", ref)
        return Receipt("not_answered", ref)

    @staticmethod
    def parse_url(url: str) -> dict[str, Any] | None:
        return NotifyAliyunVoice.parse_provider_url(url)
