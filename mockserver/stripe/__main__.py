"""``python -m mockserver.stripe --port 8421 --localstripe http://127.0.0.1:8420``."""

from __future__ import annotations

import argparse

import uvicorn

from mockserver.stripe import create_app


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m mockserver.stripe")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8421)
    parser.add_argument("--localstripe", default="http://127.0.0.1:8420")
    parser.add_argument("--webhook-secret", default="whsec_double", help="signs every event")
    args = parser.parse_args(argv)
    base_url = f"http://{args.host}:{args.port}"
    uvicorn.run(
        create_app(args.localstripe, base_url, args.webhook_secret),
        host=args.host,
        port=args.port,
        access_log=False,
        log_level="warning",
    )


if __name__ == "__main__":
    main()
