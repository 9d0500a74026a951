"""What the four provider plugins share: the URL form, secrets from files, the
template variables handed in by the sender, and the receipt read back after a send.

URL: `scheme://KEY_ID:SECRET@APP/PHONE[/PHONE...]?arg=...`. The key id and secret
may come from files instead (`key_file=`, `secret_file=`), so that the registry
need not hold them. Sending raises nothing: a provider's refusal is logged by its
code and message only (never the URL or a key) and the send reports False.
"""

from __future__ import annotations

from abc import abstractmethod
from pathlib import Path
from typing import Any, ClassVar

from apprise import NotifyType
from apprise.exception import AppriseImproperlyConfigured
from apprise.plugins.base import NotifyBase
from apprise.url import PrivacyMode

from alerts.channels.templates import TemplateParams
from alerts.outcomes import Receipt
from eldercare.errors import EldercareError


class ProviderError(EldercareError, RuntimeError):
    """A provider refused a request; `code` is its error code (kept in the log)."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code


def _secret(value: str | None, file: str | None, what: str) -> str:
    if file:
        try:
            return Path(file).read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise AppriseImproperlyConfigured(f"cannot read the {what} file") from exc
    if not value:
        raise AppriseImproperlyConfigured(f"no {what} (in the URL or a *_file argument)")
    return value


class ProviderPlugin(NotifyBase):
    """Base of the provider plugins; subclasses set the scheme and `deliver`."""

    # The SDK keeps its own connection; Apprise's throttle would only add latency.
    request_rate_per_sec = 0
    title_maxlen = 0
    body_maxlen = 500
    # Our own arguments (besides Apprise's): read from the URL's query string.
    extra_args: ClassVar[tuple[str, ...]] = ()

    def __init__(
        self,
        key_id: str | None = None,
        secret: str | None = None,
        app: str | None = None,
        targets: list[str] | None = None,
        options: dict[str, str] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        options = options or {}
        self.key_id = _secret(key_id, options.get("key_file"), "key id")
        self.secret = _secret(secret, options.get("secret_file"), "secret")
        if not app:
            raise AppriseImproperlyConfigured("no template or application id in the URL")
        self.app = app
        self.targets = [t for t in (targets or []) if t.strip()]
        if not self.targets:
            raise AppriseImproperlyConfigured("no phone number in the URL")
        self.options = options
        self.endpoint = options.get("endpoint") or None
        self.protocol_name = (options.get("protocol") or "https").lower()
        # Set by the sender before `notify`; read back by it afterwards.
        self.template_params: TemplateParams | None = None
        self.receipts: list[Receipt] = []

    @property
    def url_identifier(self) -> tuple[Any, ...]:
        return (self.secure_protocol, self.key_id, self.app)

    def url(self, privacy: bool = False, *args: Any, **kwargs: Any) -> str:
        params = {k: v for k, v in self.options.items() if v}
        params.update(self.url_parameters(*args, privacy=privacy, **kwargs))
        return "{schema}://{key}:{secret}@{app}/{targets}?{params}".format(
            schema=self.secure_protocol,
            key=self.pprint(self.key_id, privacy, safe=""),
            secret=self.pprint(self.secret, privacy, mode=PrivacyMode.Secret, safe=""),
            app=self.quote(self.app, safe=""),
            targets="/".join(self.quote(t, safe="+") for t in self.targets),
            params=self.urlencode(params),
        )

    def __len__(self) -> int:
        return len(self.targets)

    def send(
        self, body: str, title: str = "", notify_type: NotifyType = NotifyType.INFO, **kwargs: Any
    ) -> bool:
        params = self.template_params or TemplateParams.of_text(title, body)
        ok = True
        for phone in self.targets:
            try:
                self.receipts.append(self.deliver(phone, params))
            except ProviderError as exc:
                # The code and message only: the request carried the keys.
                self.logger.warning("%s refused a message: %s", self.service_name, exc)
                self.last_error = str(exc)
                ok = False
            except Exception as exc:  # the SDK's own (network) errors
                self.logger.warning(
                    "%s could not be reached: %s", self.service_name, type(exc).__name__
                )
                self.last_error = f"{type(exc).__name__}: {exc}"
                ok = False
        return ok

    @abstractmethod
    def deliver(self, phone: str, params: TemplateParams) -> Receipt:
        """Send to one number; raise `ProviderError` when the provider refuses."""

    def query(self, ref: str, sent_at: float) -> Receipt | None:
        """The final outcome of an earlier send, or None while unknown (default: the
        provider has no query; receipts come by callback)."""
        return None

    @classmethod
    def parse_provider_url(cls, url: str) -> dict[str, Any] | None:
        results: dict[str, Any] | None = NotifyBase.parse_url(url, verify_host=False)
        if not results:
            return results
        qsd: dict[str, str] = results["qsd"]
        results["key_id"] = cls.unquote(results.get("user") or "") or None
        results["secret"] = cls.unquote(results.get("password") or "") or None
        results["app"] = cls.unquote(results.get("host") or "")
        results["targets"] = cls.split_path(results.get("fullpath"))
        names = ("key_file", "secret_file", "endpoint", "protocol", *cls.extra_args)
        results["options"] = {n: cls.unquote(qsd[n]) for n in names if qsd.get(n)}
        return results
