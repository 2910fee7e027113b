"""A provider's failure as the client hears of it, and as staff do.

The client gets our words: the provider's name, the class of its answer, what to do (and a
request's own fault, scrubbed, since the client needs it to fix the request). The provider's
own text, which names its model ids, our account's limits and organisation, is kept in the
request log's attempts for staff (`UpstreamFailure.detail`).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from core.errors import GatewayError, UpstreamFailure
from providers.catalog import Deployment
from providers.protocols import wire
from providers.protocols.common import error_message

# Failures that say nothing about the request: another deployment may well succeed.
FAILOVER_STATUSES = frozenset({401, 402, 403, 404, 408, 409, 425, 429})
CREDENTIAL_STATUSES = frozenset({401, 402, 403})


# What a provider's 400 about the request may say of us: keys (even quoted in part),
# organisation, project and request ids. Replaced before its message reaches the client.
_SECRETS = re.compile(
    r"(?:sk|pk|rk|gsk|xai|fw)[-_][\w*.-]{4,}|\b(?:org|proj|req|user)[-_][A-Za-z0-9]{6,}"
    r"|AIza[\w-]{10,}|\bBearer\s+\S+",
    re.IGNORECASE,
)


SHORTEST_KEY = 8  # a credential shorter than this could match ordinary words


def _credentials_cut(text: str, deployment: Deployment) -> str:
    """The provider's words, kept for staff, with the credential the request was sent with
    (ours, or the customer's own) cut should the provider quote it back whole. A key it
    quotes masked (`sk-proj-abcd****wxyz`, as OpenAI does) stays: staff can tell which key."""
    if len(deployment.api_key) >= SHORTEST_KEY:
        return text.replace(deployment.api_key, "[redacted]")
    return text


def _scrubbed(text: str, deployment: Deployment, model_id: str) -> str:
    """A provider's message about the request, fit for the client: its model id becomes
    the one the client knows, and anything that identifies our account there is cut."""
    if deployment.upstream_model_id:
        text = text.replace(deployment.upstream_model_id, model_id)
    return _SECRETS.sub("[redacted]", text)[:300]


def upstream_failure(
    status: int, deployment: Deployment, model_id: str, body: bytes, headers: Mapping[str, str]
) -> UpstreamFailure:
    provider, detail = deployment.provider, _credentials_cut(error_message(body), deployment)
    if status in CREDENTIAL_STATUSES or (wire(deployment).refuses_account(status, body)):
        # About the account there, not the request (Gemini answers a bad key or an unserved
        # region with 400, not 401/403).
        if deployment.byok:  # the customer's own key: theirs to fix, and to read about
            return UpstreamFailure(
                402 if status == 402 else 403,
                f"{provider} refused your own {provider} key ({status}): "
                f"{_scrubbed(detail, deployment, model_id)}",
                type="permission_error",
                code="byok_key_refused",
                detail=detail,
            )
        return UpstreamFailure(
            502,
            f"{provider} could not serve this request (it answered {status // 100}xx).",
            type="server_error",
            code="upstream_error",
            detail=detail,
        )
    if status == 429:
        retry_after = headers.get("retry-after")
        extra = [(b"retry-after", retry_after.encode())] if retry_after else []
        whose = f"your own {provider} key" if deployment.byok else "this model"
        return UpstreamFailure(
            429,
            f"{provider} is rate limiting {whose}; retry "
            + (f"after {retry_after} s." if retry_after else "shortly."),
            type="rate_limit_error",
            code="upstream_rate_limited",
            headers=extra,
            detail=detail,
        )
    if status in FAILOVER_STATUSES or status >= 500:
        return UpstreamFailure(
            502,
            f"{provider} failed on this request (it answered {status // 100}xx).",
            type="server_error",
            code="upstream_error",
            detail=detail,
        )
    # The provider's 4xx about the request itself: the client needs its reason to fix it.
    return UpstreamFailure(
        status,
        f"{provider} refused the request ({status}): {_scrubbed(detail, deployment, model_id)}",
        type="invalid_request_error",
        code="upstream_rejected",
        detail=detail,
    )


def detail_keep(attempts: list[dict[str, Any]], error: GatewayError) -> None:
    """Keeps a failure the provider reported within its answer (a 200 with an error body,
    an error event mid-stream) on the attempt that answered, for staff."""
    if isinstance(error, UpstreamFailure) and attempts:
        attempts[-1]["detail"] = error.detail[:1000]


def failure_told(error: GatewayError, request_id: str) -> None:
    """A provider's failure, as the client is told of it: with the request id that finds
    the provider's own words (its attempt's `detail`) for staff."""
    if isinstance(error, UpstreamFailure):
        error.message = f"{error.message} Request id: {request_id}."
