"""``asyncagents`` command line: requests for people (``asyncagents.terminal``), template parameters from the
formation, and administration.

    asyncagents chat "Research AI trends" --wait      # a live progress bar, then the result
    asyncagents watch|status|cancel REQUEST_ID        # and: list, answer REQUEST_ID "text"
    asyncagents params formation.yaml                 # Key=Value pairs for sam deploy --parameter-overrides
    asyncagents keys create --table T [--kind admin] [--user U]  # prints the key once; only its hash is stored
    asyncagents keys revoke KEY_ID --table T
    asyncagents keys list --table T                      # every key, newest first: kind, user, last use, revoked
    asyncagents webhook-secret rotate --secret-id ARN [--grace-seconds 86400]
    asyncagents dead-letters list|redrive --api URL   # with ASYNCAGENTS_ADMIN_KEY; works on the local stack too
    asyncagents redrive REQUEST_ID --key-id K [--user-id U] --api URL   # resume a failed request
    asyncagents estimator show|reset --api URL        # what auto mode learned, or forget it
    asyncagents local [--port 8001]                   # the local stack (same as python -m asyncagents.local)

``keys`` talks to the deployed DynamoDB table with your AWS credentials (``--table`` is the stack's
``RequestsTableName`` output).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from asyncagents import terminal
from asyncagents.domain.errors import AsyncAgentsError

if TYPE_CHECKING:
    from asyncagents.domain.auth import KeyService


def _params(args: argparse.Namespace) -> int:
    from asyncagents.config import load_formation

    parameters = load_formation(args.formation).template_parameters()
    # Every parameter, empty ones too (as ""): `sam deploy` keeps a parameter's previous value when it is not
    # passed, so a secret removed from the formation would otherwise stay readable.
    print(" ".join(f"{name}={value}" if value != "" else f'{name}=""' for name, value in parameters.items()))
    return 0


def _key_service(args: argparse.Namespace) -> KeyService:
    import boto3

    from asyncagents.data.api_keys import ApiKeys
    from asyncagents.domain.auth import KeyService

    client = boto3.client("dynamodb", region_name=args.region) if args.region else boto3.client("dynamodb")
    return KeyService(ApiKeys(client, args.table))


def _keys_create(args: argparse.Namespace) -> int:
    from datetime import timedelta

    from asyncagents.domain.times import utc_now

    expires_at = utc_now() + timedelta(days=args.expires_in_days) if args.expires_in_days else None
    from asyncagents.domain.auth import KeyLimits

    own = KeyLimits(requests_per_second=args.requests_per_second, max_active_requests=args.max_active_requests)
    created = _key_service(args).create(
        args.kind,
        label=args.label,
        user_id=args.user,
        expires_at=expires_at,
        webhook_secret=args.webhook_secret,
        limits=own,
    )
    print(f"key_id={created.key_id}")
    print(f"kind={created.kind}")
    if created.user_id:
        print(f"user_id={created.user_id}")
    if created.expires_at:
        print(f"expires_at={created.expires_at.isoformat()}")
    print(f"key={created.secret}")
    if created.webhook_secret:
        print(f"webhook_secret={created.webhook_secret}")
    print("Store the key now: it is not shown again (only its SHA-256 digest is kept).", file=sys.stderr)
    return 0


def _keys_revoke(args: argparse.Namespace) -> int:
    _key_service(args).revoke(args.key_id)
    print(f"revoked {args.key_id}")
    return 0


def _keys_list(args: argparse.Namespace) -> int:
    service, cursor = _key_service(args), None
    print("key_id\tkind\tuser_id\tcreated_at\tlast_used_at\texpires_at\trevoked_at\tlabel")
    while True:
        keys, cursor = service.list(limit=100, cursor=cursor)
        for key in keys:
            fields = (key.created_at, key.last_used_at, key.expires_at, key.revoked_at)
            print("\t".join([key.key_id, key.kind, key.user_id or "-", *(value or "-" for value in fields), key.label]))
        if cursor is None:
            return 0


def _rotate_secret(args: argparse.Namespace) -> int:
    import boto3

    from asyncagents.data.signing_secrets import SigningSecrets

    client = boto3.client("secretsmanager", region_name=args.region) if args.region else boto3.client("secretsmanager")
    SigningSecrets(client, args.secret_id).rotate(grace_seconds=args.grace_seconds)
    print(f"rotated; the previous secret stays valid for {args.grace_seconds}s (webhooks carry both signatures)")
    print("read the new secret with: aws secretsmanager get-secret-value --secret-id <arn>", file=sys.stderr)
    return 0


def _admin_call(args: argparse.Namespace, method: str, path: str, body: dict[str, str] | None = None) -> int:
    """Call an admin route with ``--admin-key`` (or ASYNCAGENTS_ADMIN_KEY) and print its JSON answer."""
    import json
    import os

    import httpx

    key = args.admin_key or os.environ.get("ASYNCAGENTS_ADMIN_KEY")
    if not key:
        print("asyncagents: an admin key is needed (--admin-key or ASYNCAGENTS_ADMIN_KEY)", file=sys.stderr)
        return 2
    url = _api_root(args.api) + path
    response = httpx.request(method, url, headers={"X-Muxi-Admin-Key": key}, json=body, timeout=60)
    print(json.dumps(response.json(), indent=2))
    return 0 if response.is_success else 1


def _dead_letters(args: argparse.Namespace) -> int:
    path = "/v1/admin/webhooks/dead-letters" + ("/redrive" if args.action == "redrive" else "")
    return _admin_call(args, "POST" if args.action == "redrive" else "GET", path)


def _estimator(args: argparse.Namespace) -> int:
    if args.action == "reset":
        return _admin_call(args, "DELETE", "/v1/admin/estimator/history")
    return _admin_call(args, "GET", "/v1/admin/estimator")


def _redrive(args: argparse.Namespace) -> int:
    body = {"key_id": args.key_id, "user_id": args.user_id, "request_id": args.request_id}
    return _admin_call(args, "POST", "/v1/admin/requests/redrive", body)


def _with_client(args: argparse.Namespace, call: Callable[[Any], dict[str, Any]]) -> dict[str, Any] | None:
    """An admin call through the SDK (``--api``, ``--admin-key``); ``None`` once its error is printed."""
    from asyncagents.client import AsyncAgentsError, Client

    try:
        with Client(api_url=args.api, admin_key=args.admin_key) as client:
            return call(client)
    except AsyncAgentsError as error:
        print(f"asyncagents: {error}", file=sys.stderr)
        return None


def _spend(args: argparse.Namespace) -> int:
    import json

    report = _with_client(args, lambda client: client.spend(args.key_id))
    if report is None:
        return 1
    if args.json or not report["capped"]:
        print(json.dumps(report, indent=2) if args.json else "no spend caps in this formation (spend section)")
        return 0
    print(f"{'scope':<22} {'period':<11} {'measure':<12} {'spent':>14} {'cap':>14} {'left':>14}  resets at")
    for counter in report["counters"]:
        for measure, cap in counter["caps"].items():
            spent, left = counter["spent"][measure], counter["remaining"][measure]
            shown = [f"${v:,.2f}" if measure == "usd" else f"{v:,.0f}" for v in (spent, cap, left)]
            print(
                f"{counter['scope']:<22} {counter['period_id']:<11} {measure:<12} "
                f"{shown[0]:>14} {shown[1]:>14} {shown[2]:>14}  {counter['resets_at']}"
            )
    return 0


def _metrics(args: argparse.Namespace) -> int:
    import json

    figures = _with_client(args, lambda client: client.metrics(args.window))
    if figures is None:
        return 1
    if args.json:
        print(json.dumps(figures, indent=2))
        return 0
    depth, requests, hooks = figures["queue_depth"], figures["requests"], figures["webhooks"]
    lines = [
        f"Window                     {figures['window']} ({figures['start']} to {figures['end']})",
        f"Average duration           {_figure(figures['average_duration_seconds'], ' s')}",
        f"Success rate               {_percent(figures['success_rate'])}"
        f"  ({requests['completed']} completed, {requests['failed']} failed, {requests['timed_out']} timed out;"
        f" {requests['cancelled']} cancelled)",
        f"Webhook delivery success   {_percent(figures['webhook_delivery_success_rate'])}"
        f"  ({hooks['delivered']} delivered, {hooks['dead']} dead-lettered; {hooks['retried']} retries)",
        f"Queue depth                {depth['unfinished_requests']} requests unfinished,"
        f" {depth['webhook_backlog']} webhooks waiting, {depth['webhook_dead_letters']} dead-lettered",
    ]
    print("\n".join(lines))
    return 0


def _figure(value: float | None, unit: str) -> str:
    return "-" if value is None else f"{value:.1f}{unit}"


def _percent(value: float | None) -> str:
    return "-" if value is None else f"{value * 100:.1f} %"


def _api_root(api: str | None) -> str:
    from asyncagents.client import base_url, resolve

    return base_url(api or resolve().api_url)


def _one_line(error: Exception) -> str | None:
    """What a failure of AWS or of the API's address says, in one line; ``None`` for anything else."""
    from asyncagents.client import AsyncAgentsError

    if isinstance(error, AsyncAgentsError):
        return str(error)
    if type(error).__module__.startswith(("botocore", "boto3")):
        return f"AWS: {error} (check your AWS credentials, region and the --table/--secret-id you gave)"
    return None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="asyncagents", description="asyncagents tools")
    commands = parser.add_subparsers(dest="command", required=True)
    terminal.add_commands(commands)

    params = commands.add_parser("params", help="template parameters taken from a formation file")
    params.add_argument("formation", nargs="?", default="formation.yaml")
    params.set_defaults(run=_params)

    keys = commands.add_parser("keys", help="create, revoke or list API keys")
    key_commands = keys.add_subparsers(dest="keys_command", required=True)
    create = key_commands.add_parser("create", help="create a key and print it once")
    create.add_argument("--kind", choices=["client", "admin"], default="client")
    create.add_argument("--label", default="")
    create.add_argument("--user", default=None, help="bind a client key to one end user (it acts for them only)")
    create.add_argument("--expires-in-days", type=float, default=None, help="refuse the key after this many days")
    create.add_argument(
        "--webhook-secret", action="store_true", help="sign this key's requests' webhooks with a secret of its own"
    )
    create.add_argument("--requests-per-second", type=int, default=None, help="this key's own rate limit")
    create.add_argument("--max-active-requests", type=int, default=None, help="this key's own active requests limit")
    revoke = key_commands.add_parser("revoke", help="revoke a key by its id")
    revoke.add_argument("key_id")
    listing = key_commands.add_parser("list", help="list the keys (never their secrets)")
    for sub in (create, revoke, listing):
        sub.add_argument("--table", required=True, help="the stack's RequestsTableName output")
        sub.add_argument("--region", default=None)
    create.set_defaults(run=_keys_create)
    revoke.set_defaults(run=_keys_revoke)
    listing.set_defaults(run=_keys_list)

    secret = commands.add_parser("webhook-secret", help="rotate the webhook signing secret")
    secret.add_argument("action", choices=["rotate"])
    secret.add_argument("--secret-id", required=True, help="the stack's WebhookSecretArn output")
    secret.add_argument("--grace-seconds", type=int, default=86_400)
    secret.add_argument("--region", default=None)
    secret.set_defaults(run=_rotate_secret)

    letters = commands.add_parser("dead-letters", help="list or redrive dead-lettered webhooks")
    letters.add_argument("action", choices=["list", "redrive"])
    letters.add_argument("--api", help="the API's URL, with or without /v1 (default: ASYNCAGENTS_API_URL)")
    letters.add_argument("--admin-key", default=None)
    letters.set_defaults(run=_dead_letters)

    learned = commands.add_parser("estimator", help="what auto mode learned (show), or forget it (reset)")
    learned.add_argument("action", choices=["show", "reset"])
    learned.add_argument("--api", help="the API's URL, with or without /v1 (default: ASYNCAGENTS_API_URL)")
    learned.add_argument("--admin-key", default=None)
    learned.set_defaults(run=_estimator)

    redrive = commands.add_parser("redrive", help="resume a failed request from its checkpoints")
    redrive.add_argument("request_id")
    redrive.add_argument("--key-id", required=True, help="the key_id shown in the request's status")
    redrive.add_argument("--user-id", default="default")
    redrive.add_argument("--api", help="the API's URL, with or without /v1 (default: ASYNCAGENTS_API_URL)")
    redrive.add_argument("--admin-key", default=None)
    redrive.set_defaults(run=_redrive)

    figures = commands.add_parser("metrics", help="the seed's monitoring figures for a window (admin)")
    figures.add_argument("--window", default="1h", help="how far back: 15m, 1h, 24h, 7d (1m to 14d)")
    figures.add_argument("--json", action="store_true", help="print the API's answer as it is")
    figures.add_argument("--api", help="the API's URL, with or without /v1 (default: ASYNCAGENTS_API_URL)")
    figures.add_argument("--admin-key", default=None, help="default: ASYNCAGENTS_ADMIN_KEY")
    figures.set_defaults(run=_metrics)

    caps = commands.add_parser("spend", help="spending against the daily and monthly spend caps (admin)")
    caps.add_argument("--key-id", default=None, help="one key's counters only")
    caps.add_argument("--json", action="store_true", help="print the API's answer as it is")
    caps.add_argument("--api", help="the API's URL, with or without /v1 (default: ASYNCAGENTS_API_URL)")
    caps.add_argument("--admin-key", default=None, help="default: ASYNCAGENTS_ADMIN_KEY")
    caps.set_defaults(run=_spend)

    local = commands.add_parser("local", help="run the local stack", add_help=False)
    local.set_defaults(run=None)

    args, rest = parser.parse_known_args(argv)
    if args.command == "local":
        from asyncagents.local.__main__ import main as local_main

        return local_main(rest)
    if rest:
        parser.error(f"unrecognized arguments: {' '.join(rest)}")
    if getattr(args.run, "__module__", "") == terminal.__name__:
        return terminal.run(args)
    try:
        return int(args.run(args))
    except AsyncAgentsError as error:
        print(f"asyncagents: {error.message}", file=sys.stderr)
        return 2
    except Exception as error:
        message = _one_line(error)
        if message is None:
            raise
        print(f"asyncagents: {message}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
