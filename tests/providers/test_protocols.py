"""The registry of wire protocols (providers.protocols): every protocol the catalog can name
is one the gateway can speak, and each says what it serves."""

from __future__ import annotations

from providers.models import Provider
from providers.protocols import PROTOCOLS
from providers.protocols.base import WireProtocol


def test_every_protocol_a_provider_can_name_is_registered_and_no_other():
    assert set(PROTOCOLS) == set(Provider.Protocol.values)
    assert all(name == protocol.name for name, protocol in PROTOCOLS.items())


def test_each_protocol_serves_chat_or_images():
    for protocol in PROTOCOLS.values():
        chat = type(protocol).chat_request is not WireProtocol.chat_request
        images = type(protocol).images_request is not WireProtocol.images_request
        assert chat or images, protocol.name
        # What serves chat completions can read its answers and decode its streams.
        if chat:
            assert type(protocol).completion_from is not WireProtocol.completion_from
            assert type(protocol).chat_decoder is not WireProtocol.chat_decoder
