"""Tencent Cloud (腾讯云) SMS and voice messages through the official SDKs
(`tencentcloud-sdk-python-sms`: SendSms, PullSmsSendStatus;
`tencentcloud-sdk-python-vms`: SendTtsVoice).

Tencent reports a voice call's outcome only by callback (语音通知状态通知, a POST of
`{"voiceprompt_callback": {"result": "0"|"1"|"2", "callid": ...}}` to the URL set
in its console); `voice_callback_outcome` reads one, and the gateway hands it to
the alert store. SMS receipts are pulled (PullSmsSendStatus returns each status
once, for the whole application, so statuses of other messages are kept here).
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from typing import Any

from tencentcloud.common import credential
from tencentcloud.common.exception.tencent_cloud_sdk_exception import (
    TencentCloudSDKException,
)
from tencentcloud.common.profile.client_profile import ClientProfile
from tencentcloud.common.profile.http_profile import HttpProfile
from tencentcloud.sms.v20210111 import models as sms_models
from tencentcloud.sms.v20210111.sms_client import SmsClient
from tencentcloud.vms.v20200902 import models as vms_models
from tencentcloud.vms.v20200902.vms_client import VmsClient

from alerts.channels.base import ProviderError, ProviderPlugin
from alerts.channels.templates import TemplateParams
from alerts.outcomes import Outcome, Receipt

DEFAULT_REGION = "ap-guangzhou"
# PullSmsSendStatus hands each status out once: serial no → receipt, process-wide
# (bounded: statuses nobody asks about are forgotten oldest first).
_SMS_STATUSES: dict[str, Outcome] = {}
_SMS_STATUSES_MAX = 10_000
_SMS_STATUSES_LOCK = threading.Lock()
# voiceprompt_callback.result: 0 answered, 1 not answered, 2 call failed.
_CALL_RESULTS: dict[str, Outcome] = {"0": "answered", "1": "not_answered", "2": "failed"}


def _e164(phone: str) -> str:
    """Tencent wants +86 numbers; a bare mainland number gets the prefix."""
    phone = phone.strip()
    return phone if phone.startswith("+") else f"+86{phone}"


def _profile(plugin: ProviderPlugin, default_endpoint: str) -> ClientProfile:
    http = HttpProfile(
        protocol=plugin.protocol_name,
        endpoint=plugin.endpoint or default_endpoint,
        reqTimeout=10,
    )
    return ClientProfile(httpProfile=http)


def _sdk_call(fn: Any, request: Any) -> Any:
    try:
        return fn(request)
    except TencentCloudSDKException as exc:
        raise ProviderError(str(exc.get_code()), str(exc.get_message())) from exc


class _TencentPlugin(ProviderPlugin):
    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.template_id = self.options.get("template", "")
        if not self.template_id:
            from apprise.exception import AppriseImproperlyConfigured

            raise AppriseImproperlyConfigured(f"{self.secure_protocol}:// needs template=")
        self.region = self.options.get("region") or DEFAULT_REGION
        self.credential = credential.Credential(self.key_id, self.secret)


class NotifyTencentSms(_TencentPlugin):
    service_name = "Tencent Cloud SMS"
    service_url = "https://cloud.tencent.com/product/sms"
    secure_protocol = "tencentsms"
    extra_args = ("sign", "template", "region")
    templates = ("{schema}://{secret_id}:{secret_key}@{sdk_app_id}/{targets}",)

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.sign = self.options.get("sign", "")
        self.client = SmsClient(
            self.credential, self.region, _profile(self, "sms.tencentcloudapi.com")
        )

    def deliver(self, phone: str, params: TemplateParams) -> Receipt:
        request = sms_models.SendSmsRequest()
        request.PhoneNumberSet = [_e164(phone)]
        request.SmsSdkAppId = self.app
        request.SignName = self.sign
        request.TemplateId = self.template_id
        request.TemplateParamSet = params.as_list()
        response = _sdk_call(self.client.SendSms, request)
        status = (response.SendStatusSet or [None])[0]
        if status is None:
            raise ProviderError("EmptyResponse", "no send status in the answer")
        if status.Code != "Ok":  # per-number errors come inside a successful answer
            raise ProviderError(str(status.Code), str(status.Message))
        return Receipt("sent", str(status.SerialNo))

    def query(self, ref: str, sent_at: float) -> Receipt | None:
        request = sms_models.PullSmsSendStatusRequest()
        request.Limit = 100
        request.SmsSdkAppId = self.app
        response = _sdk_call(self.client.PullSmsSendStatus, request)
        with _SMS_STATUSES_LOCK:
            for row in response.PullSmsSendStatusSet or []:
                _SMS_STATUSES[str(row.SerialNo)] = (
                    "delivered" if row.ReportStatus == "SUCCESS" else "failed"
                )
            while len(_SMS_STATUSES) > _SMS_STATUSES_MAX:
                del _SMS_STATUSES[next(iter(_SMS_STATUSES))]
            outcome = _SMS_STATUSES.pop(ref, None)
        return Receipt(outcome, ref) if outcome is not None else None

    @staticmethod
    def parse_url(url: str) -> dict[str, Any] | None:
        return NotifyTencentSms.parse_provider_url(url)


class NotifyTencentVoice(_TencentPlugin):
    service_name = "Tencent Cloud voice message"
    service_url = "https://cloud.tencent.com/product/vms"
    secure_protocol = "tencentvoice"
    extra_args = ("template", "region", "play")
    templates = ("{schema}://{secret_id}:{secret_key}@{voice_sdk_app_id}/{targets}",)

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.play_times = int(self.options.get("play") or 2)
        self.client = VmsClient(
            self.credential, self.region, _profile(self, "vms.tencentcloudapi.com")
        )

    def deliver(self, phone: str, params: TemplateParams) -> Receipt:
        request = vms_models.SendTtsVoiceRequest()
        request.TemplateId = self.template_id
        request.CalledNumber = _e164(phone)
        request.VoiceSdkAppid = self.app
        request.TemplateParamSet = params.as_list()
        request.PlayTimes = self.play_times
        response = _sdk_call(self.client.SendTtsVoice, request)
        return Receipt("calling", str(response.SendStatus.CallId))

    @staticmethod
    def parse_url(url: str) -> dict[str, Any] | None:
        return NotifyTencentVoice.parse_provider_url(url)


def voice_callback_outcome(doc: Mapping[str, Any]) -> tuple[str, Outcome] | None:
    """(call id, outcome) of a Tencent voice status callback, or None if it is not one."""
    body = doc.get("voiceprompt_callback")
    if not isinstance(body, Mapping):
        failure = doc.get("voice_failure_callback")
        if isinstance(failure, Mapping) and failure.get("callid"):
            return str(failure["callid"]), "failed"
        return None
    call_id, result = body.get("callid"), str(body.get("result", ""))
    if not call_id or result not in _CALL_RESULTS:
        return None
    return str(call_id), _CALL_RESULTS[result]
