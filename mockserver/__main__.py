"""Serve the mock (every protocol, see mockserver/app.py):
``python -m mockserver --host 127.0.0.1 --port 8001 [--api-key K]``."""

from __future__ import annotations

import argparse
import importlib.util
import logging

import uvicorn

from mockserver.app import create_app


class _QuietCuts(logging.Filter):
    # The ``cut_after`` directive drops connections on purpose; uvicorn reports
    # each one as an error, which would drown real problems in test output.
    def filter(self, record: logging.LogRecord) -> bool:
        return not record.getMessage().startswith(
            "ASGI callable returned without completing response"
        )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m mockserver",
        description="Mock upstream: OpenAI, Anthropic, Gemini / Vertex AI and Fal APIs.",
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8001)
    parser.add_argument(
        "--api-key",
        default=None,
        help="the one key every protocol requires, each in its own header "
        "(Bearer, x-api-key, x-goog-api-key or ?key=, 'Key <k>'); default: any key",
    )
    args = parser.parse_args(argv)

    logging.getLogger("uvicorn.error").addFilter(_QuietCuts())
    uvicorn.run(
        create_app(args.api_key or None),
        host=args.host,
        port=args.port,
        # The fast implementations when present: this server is a benchmark upstream.
        loop="uvloop" if importlib.util.find_spec("uvloop") else "asyncio",
        http="httptools" if importlib.util.find_spec("httptools") else "h11",
        access_log=False,
        log_level="warning",
        lifespan="on",
    )


if __name__ == "__main__":
    main()
