"""``python -m asyncagents.local``: run the whole application on moto at http://127.0.0.1:8001."""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import threading
from pathlib import Path

from asyncagents.domain.errors import ConfigError


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="asyncagents-local", description=__doc__)
    parser.add_argument("--host", default=os.environ.get("ASYNCAGENTS_HOST", "127.0.0.1"))
    parser.add_argument("--port", type=int, default=int(os.environ.get("ASYNCAGENTS_PORT", "8001")))
    parser.add_argument(
        "--formation",
        default=os.environ.get("ASYNCAGENTS_FORMATION", "formation.yaml"),
        help="formation YAML file",
    )
    parser.add_argument("--root", default=os.environ.get("ASYNCAGENTS_ROOT", "."), help="folder with template.yaml")
    parser.add_argument("--log-level", default=os.environ.get("ASYNCAGENTS_LOG_LEVEL", "WARNING"))
    args = parser.parse_args(argv)
    logging.basicConfig(level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    os.environ.setdefault("POWERTOOLS_LOG_LEVEL", args.log_level.upper())
    if args.log_level.upper() != "DEBUG":
        # moto logs every failed execution at ERROR with its whole state tree; the request record says it all.
        logging.getLogger("moto").setLevel(logging.CRITICAL)

    from asyncagents.local.stack import LocalStack, keys_from_environment

    keys, generated = keys_from_environment()
    try:
        stack = LocalStack(
            root=Path(args.root).resolve(),
            formation_path=Path(args.formation).resolve(),
            keys=keys,
            host=args.host,
            port=args.port,
        )
        stack.start()
    except (ConfigError, OSError) as error:
        print(f"asyncagents local: {error}", file=sys.stderr)
        return 2
    stopping = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stopping.set())
    print(f"asyncagents local stack listening on {stack.url}/v1", flush=True)
    print(f"  the operator console: {stack.url}/console (sign in with the keys below)", flush=True)
    if stack.jwt_url:
        print(f"  and on {stack.jwt_url}/v1 for end users with a JWT (auth.jwt: its JwtApiUrl)", flush=True)
    if generated:
        print("Keys (set ASYNCAGENTS_CLIENT_KEY, ASYNCAGENTS_ADMIN_KEY, ASYNCAGENTS_WEBHOOK_SECRET to fix them):")
    print(f"  ASYNCAGENTS_CLIENT_KEY={keys.client_key}")
    print(f"  ASYNCAGENTS_ADMIN_KEY={keys.admin_key}")
    print(f"  ASYNCAGENTS_WEBHOOK_SECRET={keys.webhook_secret}", flush=True)
    if stack.trigger_secrets:
        print("Trigger signing secrets (set the variables to fix them):")
        for name, (variable, secret, generated) in sorted(stack.trigger_secrets.items()):
            note = "  (generated)" if generated else ""
            print(f"  {variable}={secret}    # {stack.url}/v1/triggers/{name}{note}", flush=True)
    stopping.wait()
    print("asyncagents local stack stopping", flush=True)
    stack.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
