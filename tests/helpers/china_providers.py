"""Local stand-ins for the Chinese providers' APIs, for tests that pay nobody.

One threaded HTTP server on 127.0.0.1 speaks, by the documented request and answer
shapes:

- Aliyun RPC APIs (SendSms, QuerySendDetails, SingleCallByTts,
  QueryCallDetailByCallId), signed ACS3-HMAC-SHA256 as the SDK signs them; business
  errors come as HTTP 200 with a `Code` other than "OK", as Aliyun's do;
- Tencent Cloud API 3.0 (SendSms, PullSmsSendStatus, SendTtsVoice), signed
  TC3-HMAC-SHA256; errors as `{"Response": {"Error": {...}}}`;
- a WeCom group bot webhook (`POST /cgi-bin/webhook/send?key=K`, `{"msgtype":"text",
  "text":{"content":...}}`), which answers errcode 45009 past 20 messages a minute.

Every request's signature is checked against the known test keys; a bad one is
refused the way the provider refuses it (and counted in `bad_signatures`).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, quote, urlsplit

ALIYUN_KEY_ID = "LTAI-test-key-id"
ALIYUN_SECRET = "aliyun-test-secret-0123456789"
TENCENT_SECRET_ID = "AKID-test-secret-id"
TENCENT_SECRET_KEY = "tencent-test-secret-key-0123456789"


@dataclass
class Call:
    provider: str  # "aliyun" | "tencent" | "wecom"
    action: str
    params: dict[str, Any]
    at: float = field(default_factory=time.time)


class FakeChinaProviders:
    """Threaded HTTP server; set the behaviours below before sending."""

    def __init__(self) -> None:
        self.calls: list[Call] = []
        self.bad_signatures = 0
        self.lock = threading.Lock()
        # Behaviours, by template / number.
        self.invalid_templates: set[str] = set()
        self.rate_limited_numbers: set[str] = set()
        self.insufficient_balance = False
        self.call_states: dict[str, str] = {}  # number → Aliyun final state code
        self.sms_failed_numbers: set[str] = set()
        self.wecom_limit_per_minute = 20
        self.wecom_messages: list[tuple[float, str, str]] = []  # (at, key, content)
        self.wecom_refused = 0
        self._call_numbers: dict[str, str] = {}  # call id → number
        self._tencent_sms: list[dict[str, Any]] = []
        providers = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:
                raw = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                status, doc = providers.handle(self, raw)
                out = json.dumps(doc, ensure_ascii=False).encode("utf-8")
                self.send_response(status)
                # Tencent's SDK reads errors only from a body of exactly application/json.
                tencent = bool(self.headers.get("X-TC-Action"))
                kind = "application/json" if tencent else "application/json;charset=utf-8"
                self.send_header("Content-Type", kind)
                self.send_header("Content-Length", str(len(out)))
                self.end_headers()
                self.wfile.write(out)

            do_GET = do_POST

            def log_message(self, *args: object) -> None:
                return None

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = int(self.server.server_address[1])
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def endpoint(self) -> str:
        return f"127.0.0.1:{self.port}"

    def url_args(self) -> str:
        return f"endpoint={self.endpoint}&protocol=http"

    def __enter__(self) -> FakeChinaProviders:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()

    def of(self, action: str) -> list[Call]:
        with self.lock:
            return [c for c in self.calls if c.action == action]

    # ---- dispatch ----------------------------------------------------------------------

    def handle(self, req: BaseHTTPRequestHandler, raw: bytes) -> tuple[int, dict[str, Any]]:
        if req.path.startswith("/cgi-bin/webhook/send"):
            return self._wecom(req, raw)
        if req.headers.get("x-acs-action"):
            return self._aliyun(req, raw)
        if req.headers.get("X-TC-Action"):
            return self._tencent(req, raw)
        return 404, {"error": "unknown API"}

    def _record(self, provider: str, action: str, params: dict[str, Any]) -> None:
        with self.lock:
            self.calls.append(Call(provider, action, params))

    # ---- Aliyun ------------------------------------------------------------------------

    def _aliyun_signature_ok(self, req: BaseHTTPRequestHandler, raw: bytes) -> bool:
        auth = req.headers.get("Authorization", "")
        algorithm, _, rest = auth.partition(" ")
        parts = dict(p.split("=", 1) for p in rest.split(",") if "=" in p)
        if algorithm != "ACS3-HMAC-SHA256" or parts.get("Credential") != ALIYUN_KEY_ID:
            return False
        payload_hash = hashlib.sha256(raw).hexdigest()
        if req.headers.get("x-acs-content-sha256") != payload_hash:
            return False
        split = urlsplit(req.path)
        query = sorted(parse_qsl(split.query, keep_blank_values=True))
        canonical_query = "&".join(f"{k}={quote(v, safe='~')}" for k, v in query)
        signed = parts.get("SignedHeaders", "").split(";")
        headers = "".join(f"{h}:{(req.headers.get(h) or '').strip()}\n" for h in signed)
        canonical = "\n".join(
            [req.command, split.path or "/", canonical_query, headers, ";".join(signed)]
        )
        canonical += "\n" + payload_hash
        to_sign = "ACS3-HMAC-SHA256\n" + hashlib.sha256(canonical.encode()).hexdigest()
        expected = hmac.new(ALIYUN_SECRET.encode(), to_sign.encode(), hashlib.sha256).hexdigest()
        return hmac.compare_digest(expected, parts.get("Signature", ""))

    def _aliyun(self, req: BaseHTTPRequestHandler, raw: bytes) -> tuple[int, dict[str, Any]]:
        request_id = str(uuid.uuid4())
        if not self._aliyun_signature_ok(req, raw):
            with self.lock:
                self.bad_signatures += 1
            return 400, {
                "RequestId": request_id,
                "Code": "SignatureDoesNotMatch",
                "Message": "Specified signature is not matched with our calculation.",
            }
        params = dict(parse_qsl(urlsplit(req.path).query))
        params.update(dict(parse_qsl(raw.decode("utf-8"))))
        action = req.headers["x-acs-action"]
        self._record("aliyun", action, params)

        def error(code: str, message: str) -> tuple[int, dict[str, Any]]:
            return 200, {"RequestId": request_id, "Code": code, "Message": message}

        if action in ("SendSms", "SingleCallByTts"):
            number = params.get("PhoneNumbers") or params.get("CalledNumber") or ""
            template = params.get("TemplateCode") or params.get("TtsCode", "")
            if template in self.invalid_templates:
                return error("isv.SMS_TEMPLATE_ILLEGAL", "模板不合法(不存在或被拉黑)")
            if number in self.rate_limited_numbers:
                return error("isv.BUSINESS_LIMIT_CONTROL", "业务限流")
            if self.insufficient_balance:
                return error("isv.AMOUNT_NOT_ENOUGH", "账户余额不足")
            json.loads(params.get("TemplateParam") or params.get("TtsParam") or "{}")
            if action == "SendSms":
                return 200, {
                    "RequestId": request_id,
                    "Code": "OK",
                    "Message": "OK",
                    "BizId": f"{len(self.calls)}^0",
                }
            call_id = f"1160{len(self.calls)}^10281{len(self.calls)}"
            with self.lock:
                self._call_numbers[call_id] = number
            return 200, {"RequestId": request_id, "Code": "OK", "Message": "OK", "CallId": call_id}
        if action == "QueryCallDetailByCallId":
            called = self._call_numbers.get(params.get("CallId", ""))
            if called is None:
                return error("isv.INVALID_PARAMETERS", "unknown CallId")
            state = self.call_states.get(called, "200000")
            data = {"callee": called, "state": state, "duration": 20 if state == "200000" else 0}
            return 200, {
                "RequestId": request_id,
                "Code": "OK",
                "Message": "OK",
                "Data": json.dumps(data),
            }
        if action == "QuerySendDetails":
            number = params.get("PhoneNumber", "")
            status = 2 if number in self.sms_failed_numbers else 3
            return 200, {
                "RequestId": request_id,
                "Code": "OK",
                "Message": "OK",
                "TotalCount": 1,
                "SmsSendDetailDTOs": {
                    "SmsSendDetailDTO": [{"PhoneNum": number, "SendStatus": status}]
                },
            }
        return error("InvalidAction.NotFound", action)

    # ---- Tencent -----------------------------------------------------------------------

    def _tencent_signature_ok(self, req: BaseHTTPRequestHandler, raw: bytes) -> bool:
        auth = req.headers.get("Authorization", "")
        algorithm, _, rest = auth.partition(" ")
        parts = dict(p.strip().split("=", 1) for p in rest.split(",") if "=" in p)
        credential = parts.get("Credential", "").split("/")
        if algorithm != "TC3-HMAC-SHA256" or len(credential) != 4:
            return False
        secret_id, date, service, _ = credential
        if secret_id != TENCENT_SECRET_ID:
            return False
        timestamp = int(req.headers.get("X-TC-Timestamp", "0"))
        if datetime.fromtimestamp(timestamp, UTC).strftime("%Y-%m-%d") != date:
            return False
        canonical = "\n".join(
            [
                req.command,
                "/",
                "",
                f"content-type:{req.headers.get('Content-Type')}\nhost:{req.headers.get('Host')}\n",
                "content-type;host",
                hashlib.sha256(raw).hexdigest(),
            ]
        )
        scope = f"{date}/{service}/tc3_request"
        to_sign = "\n".join(
            [
                "TC3-HMAC-SHA256",
                str(timestamp),
                scope,
                hashlib.sha256(canonical.encode()).hexdigest(),
            ]
        )

        def mac(key: bytes, msg: str) -> bytes:
            return hmac.new(key, msg.encode(), hashlib.sha256).digest()

        key = mac(mac(mac(("TC3" + TENCENT_SECRET_KEY).encode(), date), service), "tc3_request")
        expected = hmac.new(key, to_sign.encode(), hashlib.sha256).hexdigest()
        return hmac.compare_digest(expected, parts.get("Signature", ""))

    def _tencent(self, req: BaseHTTPRequestHandler, raw: bytes) -> tuple[int, dict[str, Any]]:
        request_id = str(uuid.uuid4())

        def error(code: str, message: str) -> tuple[int, dict[str, Any]]:
            return 200, {
                "Response": {"Error": {"Code": code, "Message": message}, "RequestId": request_id}
            }

        if not self._tencent_signature_ok(req, raw):
            with self.lock:
                self.bad_signatures += 1
            return error(
                "AuthFailure.SignatureFailure", "The provided credentials could not be validated."
            )
        params = json.loads(raw.decode("utf-8") or "{}")
        action = req.headers["X-TC-Action"]
        self._record("tencent", action, params)
        if action == "SendSms":
            number = params["PhoneNumberSet"][0]
            if self.insufficient_balance:
                code, message = "FailedOperation.InsufficientBalanceInSmsPackage", "套餐包余量不足"
            elif str(params.get("TemplateId")) in self.invalid_templates:
                code, message = (
                    "FailedOperation.TemplateIncorrectOrUnapproved",
                    "模板未审批或不存在",
                )
            elif number.removeprefix("+86") in self.rate_limited_numbers:
                code, message = (
                    "LimitExceeded.PhoneNumberThirtySecondLimit",
                    "单个手机号30秒内下发短信条数超过设定的上限",
                )
            else:
                code, message = "Ok", "send success"
            serial = f"2640:{len(self.calls)}"
            if code == "Ok":
                with self.lock:
                    self._tencent_sms.append({"SerialNo": serial, "number": number})
            status = {
                "SerialNo": serial,
                "PhoneNumber": number,
                "Fee": 1 if code == "Ok" else 0,
                "SessionContext": "",
                "Code": code,
                "Message": message,
                "IsoCode": "CN",
            }
            return 200, {"Response": {"SendStatusSet": [status], "RequestId": request_id}}
        if action == "PullSmsSendStatus":
            with self.lock:
                pulled, self._tencent_sms = self._tencent_sms, []
            rows = [
                {
                    "SerialNo": s["SerialNo"],
                    "PhoneNumber": s["number"],
                    "CountryCode": "86",
                    "SubscriberNumber": s["number"].removeprefix("+86"),
                    "UserReceiveTime": "2026-12-07 02:41:09",
                    "ReportStatus": "FAIL"
                    if s["number"].removeprefix("+86") in self.sms_failed_numbers
                    else "SUCCESS",
                    "Description": "DELIVRD",
                }
                for s in pulled
            ]
            return 200, {"Response": {"PullSmsSendStatusSet": rows, "RequestId": request_id}}
        if action == "SendTtsVoice":
            number = str(params.get("CalledNumber", "")).removeprefix("+86")
            if self.insufficient_balance:
                return error("FailedOperation.InsufficientBalance", "余额不足")
            if str(params.get("TemplateId")) in self.invalid_templates:
                return error("FailedOperation.TemplateIncorrectOrUnapproved", "模板未审批或不存在")
            if number in self.rate_limited_numbers:
                return error("LimitExceeded.DeliveryFrequencyLimit", "下发频率超过限制")
            call_id = f"tc-{uuid.uuid4().hex[:12]}"
            with self.lock:
                self._call_numbers[call_id] = number
            return 200, {
                "Response": {
                    "SendStatus": {"CallId": call_id, "SessionContext": ""},
                    "RequestId": request_id,
                }
            }
        return error("InvalidAction", action)

    def tencent_voice_callback(self, call_id: str) -> dict[str, Any]:
        """The status callback Tencent would POST for this call (by the number's state:
        "200000" answered → result 0, anything else → 1, not answered)."""
        number = self._call_numbers[call_id]
        answered = self.call_states.get(number, "200000") == "200000"
        return {
            "voiceprompt_callback": {
                "result": "0" if answered else "1",
                "accept_time": "1470197211" if answered else "",
                "call_from": "",
                "callid": call_id,
                "end_calltime": "1470197221",
                "fee": "1" if answered else "0",
                "mobile": number,
                "nationcode": "86",
                "start_calltime": "1470197196",
            }
        }

    # ---- WeCom group bot ---------------------------------------------------------------

    def _wecom(self, req: BaseHTTPRequestHandler, raw: bytes) -> tuple[int, dict[str, Any]]:
        key = dict(parse_qsl(urlsplit(req.path).query)).get("key", "")
        doc = json.loads(raw.decode("utf-8"))
        now = time.time()
        with self.lock:
            recent = [m for m in self.wecom_messages if m[1] == key and now - m[0] < 60]
            if len(recent) >= self.wecom_limit_per_minute:
                self.wecom_refused += 1
                return 200, {"errcode": 45009, "errmsg": "api freq out of limit"}
            self.wecom_messages.append((now, key, str(doc["text"]["content"])))
        self._record("wecom", "send", doc)
        return 200, {"errcode": 0, "errmsg": "ok"}
