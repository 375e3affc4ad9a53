"""``asyncagents`` command line: template parameters from the formation, and API key management.

    asyncagents params formation.yaml                 # Key=Value pairs for sam deploy --parameter-overrides
    asyncagents keys create --table T [--kind admin]  # prints the new key once; only its hash is stored
    asyncagents keys revoke KEY_ID --table T
    asyncagents local [--port 8001]                   # the local stack (same as python -m asyncagents.local)

``keys`` talks to the deployed DynamoDB table with your AWS credentials (``--table`` is the stack's
``RequestsTableName`` output).
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from asyncagents.errors import AsyncAgentsError


def _params(args: argparse.Namespace) -> int:
    from asyncagents.config import load_formation

    parameters = load_formation(args.formation).template_parameters()
    print(" ".join(f"{name}={value}" for name, value in parameters.items()))
    return 0


def _key_service(args: argparse.Namespace) -> Any:
    import boto3

    from asyncagents.auth import KeyService
    from asyncagents.data.requests_table import RequestsTable

    client = boto3.client("dynamodb", region_name=args.region) if args.region else boto3.client("dynamodb")
    return KeyService(RequestsTable(client, args.table))


def _keys_create(args: argparse.Namespace) -> int:
    created = _key_service(args).create(args.kind, label=args.label)
    print(f"key_id={created.key_id}")
    print(f"kind={created.kind}")
    print(f"key={created.secret}")
    print("Store the key now: it is not shown again (only its SHA-256 digest is kept).", file=sys.stderr)
    return 0


def _keys_revoke(args: argparse.Namespace) -> int:
    _key_service(args).revoke(args.key_id)
    print(f"revoked {args.key_id}")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="asyncagents", description="asyncagents tools")
    commands = parser.add_subparsers(dest="command", required=True)

    params = commands.add_parser("params", help="template parameters taken from a formation file")
    params.add_argument("formation", nargs="?", default="formation.yaml")
    params.set_defaults(run=_params)

    keys = commands.add_parser("keys", help="create or revoke API keys")
    key_commands = keys.add_subparsers(dest="keys_command", required=True)
    create = key_commands.add_parser("create", help="create a key and print it once")
    create.add_argument("--kind", choices=["client", "admin"], default="client")
    create.add_argument("--label", default="")
    revoke = key_commands.add_parser("revoke", help="revoke a key by its id")
    revoke.add_argument("key_id")
    for sub in (create, revoke):
        sub.add_argument("--table", required=True, help="the stack's RequestsTableName output")
        sub.add_argument("--region", default=None)
    create.set_defaults(run=_keys_create)
    revoke.set_defaults(run=_keys_revoke)

    local = commands.add_parser("local", help="run the local stack", add_help=False)
    local.set_defaults(run=None)

    args, rest = parser.parse_known_args(argv)
    if args.command == "local":
        from asyncagents.local.__main__ import main as local_main

        return local_main(rest)
    if rest:
        parser.error(f"unrecognized arguments: {' '.join(rest)}")
    try:
        return int(args.run(args))
    except AsyncAgentsError as error:
        print(f"asyncagents: {error.message}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
