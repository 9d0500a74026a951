"""The providers' template model: a template approved in the provider's console (a
template id) and the values of its variables.

Chinese SMS and voice providers only send text from approved templates. The
platform's templates have four variables, in this order (Tencent numbers them
{1}..{4}; Aliyun names them ${name}, ${kind}, ${time}, ${action}):

    SMS:   【签名】${name}${kind}（${time}）。${action}
    voice: 您好，这里是养老安全平台。${name}${time}发生${kind}。${action}
"""

from __future__ import annotations

import json
from dataclasses import astuple, dataclass

# Aliyun refuses a variable longer than 35 characters; Tencent's limit is similar.
MAX_VARIABLE_LEN = 35


def _fit(value: str) -> str:
    value = " ".join(value.split())
    return value if len(value) <= MAX_VARIABLE_LEN else value[: MAX_VARIABLE_LEN - 1] + "…"


@dataclass(frozen=True, slots=True)
class TemplateParams:
    name: str  # the resident (or the home, for a site-level alert)
    kind: str  # what happened, in zh-CN: 跌倒, 一键呼叫, ...
    time: str  # local time of the event: "02:41"
    action: str  # what to do: "请致电本人 138xxxx"

    def as_names(self) -> dict[str, str]:
        """Aliyun's TemplateParam / TtsParam: variables by name."""
        return {
            k: _fit(v)
            for k, v in zip(("name", "kind", "time", "action"), astuple(self), strict=True)
        }

    def as_list(self) -> list[str]:
        """Tencent's TemplateParamSet: variables by position."""
        return [_fit(v) for v in astuple(self)]

    def to_json(self) -> str:
        return json.dumps(self.as_names(), ensure_ascii=False)

    @classmethod
    def from_json(cls, text: str) -> TemplateParams:
        doc = json.loads(text)
        return cls(str(doc["name"]), str(doc["kind"]), str(doc["time"]), str(doc["action"]))

    @classmethod
    def of_text(cls, title: str, body: str) -> TemplateParams:
        """For a message without its own variables (a follow-up, a digest): the title
        as what happened and the start of the body as what to do."""
        return cls(name="", kind=title, time="", action=body)
