"""The wire protocols providers speak, one module each, behind one contract
(providers.protocols.base.WireProtocol). Adding a protocol is a module and a line here
(and its name among `Provider.Protocol`'s choices, which the database keeps)."""

from __future__ import annotations

from providers.deployments import Deployment
from providers.protocols import anthropic, fal, gemini, openai
from providers.protocols.base import WireProtocol

PROTOCOLS: dict[str, WireProtocol] = {
    p.name: p for p in (openai.PROTOCOL, anthropic.PROTOCOL, gemini.PROTOCOL, fal.PROTOCOL)
}


def wire(deployment: Deployment) -> WireProtocol:
    """The protocol `deployment` speaks."""
    return PROTOCOLS[deployment.protocol]
