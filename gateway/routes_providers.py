"""Status callbacks from SMS and voice providers (they post to us; they cannot sign
in): Tencent's voice status (语音通知状态通知), so a call nobody answered moves
escalation on to the next contact at once.

The URL given to the provider carries the shared secret of the settings'
`provider_callback_token` (`?token=...`, masked in logs like any token); without a
configured token the route does not exist (404)."""

from __future__ import annotations

import hmac
from typing import Any

from fastapi import APIRouter, HTTPException, Query, Request, status

from alerts.channels.tencent import voice_callback_outcome
from gateway.context import Ctx

router = APIRouter(tags=["providers"])


def _check_token(ctx: Ctx, token: str) -> None:
    expected = ctx.settings.provider_callback_token
    if not expected:
        raise HTTPException(status.HTTP_404_NOT_FOUND, "not found")
    if not hmac.compare_digest(token.encode(), expected.encode()):
        raise HTTPException(status.HTTP_403_FORBIDDEN, "bad token")


@router.post(
    "/api/providers/tencent/voice-status",
    summary="Tencent voice message status callback",
    response_model=dict[str, Any],
)
async def tencent_voice_status(
    request: Request, ctx: Ctx, token: str = Query("", max_length=200)
) -> dict[str, Any]:
    """Answers Tencent's documented `{"result": 0, "errmsg": "OK"}`; a body that is not
    a voice status callback is refused with result 1 (Tencent retries nothing then)."""
    _check_token(ctx, token)
    try:
        doc = await request.json()
    except ValueError:
        return {"result": 1, "errmsg": "not JSON"}
    outcome = voice_callback_outcome(doc) if isinstance(doc, dict) else None
    if outcome is None:
        return {"result": 1, "errmsg": "not a voice status callback"}
    await ctx.alert_service.record_call_outcomes([outcome])
    ctx.hub.poke()
    return {"result": 0, "errmsg": "OK"}
