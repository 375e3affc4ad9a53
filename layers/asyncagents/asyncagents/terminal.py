"""The commands for people: ``chat``, ``watch``, ``status``, ``list``, ``cancel``, ``answer``.

They talk to the API through the SDK (``asyncagents.client``). The API's URL and key come from ``--api`` and
``--key``, else ``ASYNCAGENTS_API_URL`` / ``ASYNCAGENTS_CLIENT_KEY``, else the config file. Human output goes
through rich: a live progress bar on stderr, results on stdout. ``--json`` prints JSON for scripts instead.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from rich.console import Console

    from asyncagents.client import Client, ProgressEvent, Request

EXIT_FAILED = 1  # the request failed or was cancelled, or the API refused the call
EXIT_USAGE = 2  # missing configuration, bad arguments


def add_commands(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the commands for people to the ``asyncagents`` parser."""
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--api", help="the API's URL, with or without /v1 (default: ASYNCAGENTS_API_URL)")
    common.add_argument("--key", help="a client key (default: ASYNCAGENTS_CLIENT_KEY)")
    common.add_argument("--user", help="the end user to act for (default: ASYNCAGENTS_USER_ID, else 'default')")
    common.add_argument("--json", action="store_true", help="print JSON (one object, or one event per line)")

    chat = commands.add_parser("chat", parents=[common], help="submit a request (--wait: follow it to its end)")
    chat.add_argument("message")
    mode = chat.add_mutually_exclusive_group()
    mode.add_argument("--async", dest="async_", action="store_true", help="run in the background; print its id")
    mode.add_argument("--wait", action="store_true", help="run in the background and follow it with a progress bar")
    chat.add_argument("--session-id")
    chat.add_argument("--request-id")
    chat.add_argument("--webhook-url")
    chat.set_defaults(run=_chat)

    watch = commands.add_parser("watch", parents=[common], help="follow a request to its end with a progress bar")
    watch.add_argument("request_id")
    watch.set_defaults(run=_watch)

    status = commands.add_parser("status", parents=[common], help="a request's status (and result)")
    status.add_argument("request_id")
    status.set_defaults(run=_status)

    listing = commands.add_parser("list", parents=[common], help="your requests, newest first")
    listing.add_argument(
        "--status", choices=["pending", "processing", "awaiting_clarification", "completed", "failed", "cancelled"]
    )
    listing.add_argument("--limit", type=int, default=20)
    listing.set_defaults(run=_list)

    cancel = commands.add_parser("cancel", parents=[common], help="cancel a request")
    cancel.add_argument("request_id")
    cancel.set_defaults(run=_cancel)

    answer = commands.add_parser("answer", parents=[common], help="answer the question a request waits on")
    answer.add_argument("request_id")
    answer.add_argument("answer")
    answer.add_argument("--clarification-id")
    answer.set_defaults(run=_answer)


def run(args: argparse.Namespace) -> int:
    """Run one of these commands: errors become one line on stderr and an exit status, never a traceback."""
    from asyncagents.client import ApiError, AsyncAgentsError, ConfigurationError

    try:
        return int(args.run(args))
    except ConfigurationError as error:
        print(f"asyncagents: {error}", file=sys.stderr)
        return EXIT_USAGE
    except ApiError as error:
        print(f"asyncagents: {error.status} {error.code}: {error.message}", file=sys.stderr)
        return EXIT_FAILED
    except AsyncAgentsError as error:
        print(f"asyncagents: {error}", file=sys.stderr)
        return EXIT_FAILED
    except KeyboardInterrupt:
        print(
            "asyncagents: interrupted (the request goes on; `asyncagents watch ID` follows it again)", file=sys.stderr
        )
        return 130


def _client(args: argparse.Namespace) -> Client:
    from asyncagents.client import Client

    return Client(args.api, client_key=args.key, user_id=args.user, timeout=60)


def _print_json(value: Any) -> None:
    print(json.dumps(value, indent=2, ensure_ascii=False))


def _chat(args: argparse.Namespace) -> int:
    with _client(args) as client:
        answer = client.chat(
            args.message,
            async_=True if (args.async_ or args.wait) else None,
            session_id=args.session_id,
            request_id=args.request_id,
            webhook_url=args.webhook_url,
        )
        if args.wait:
            return _follow(client, answer.request_id, args)
        if args.json:
            _print_json(answer.model_dump(mode="json"))
        elif answer.finished:
            return _show_outcome(_stdout(), client.get_request(answer.request_id))
        else:
            print(answer.request_id)
            print(f"follow it with: asyncagents watch {answer.request_id}", file=sys.stderr)
        return 0


def _watch(args: argparse.Namespace) -> int:
    with _client(args) as client:
        return _follow(client, args.request_id, args)


def _follow(client: Client, request_id: str, args: argparse.Namespace) -> int:
    """Follow the request's events to its end: a live bar for people, one JSON event per line for scripts."""
    if args.json:
        for event in client.events(request_id):
            print(json.dumps(event.model_dump(mode="json", exclude_none=True), ensure_ascii=False), flush=True)
        return 0 if client.get_request(request_id).status == "completed" else EXIT_FAILED
    from rich.console import Console
    from rich.progress import BarColumn, Progress, SpinnerColumn, TaskProgressColumn, TextColumn, TimeElapsedColumn

    columns = (
        SpinnerColumn(),
        TextColumn("[bold]{task.fields[steps]}"),
        BarColumn(),
        TaskProgressColumn(),
        TimeElapsedColumn(),
        TextColumn("{task.description}"),
    )
    with Progress(*columns, console=Console(stderr=True), transient=False) as progress:
        task = progress.add_task("Accepted", total=100, steps="")
        for event in client.events(request_id):
            progress.update(task, completed=event.progress, description=_describe(event), steps=_steps(event))
    return _show_outcome(_stdout(), client.get_request(request_id))


def _steps(event: ProgressEvent) -> str:
    return f"{event.completed_steps}/{event.total_steps} steps" if event.total_steps else "planning"


def _describe(event: ProgressEvent) -> str:
    if event.type == "step_started" and event.current_step:
        return f"{event.current_step}"
    return event.message


def _stdout() -> Console:
    from rich.console import Console

    return Console(highlight=False, soft_wrap=True)


def _show_outcome(console: Console, request: Request) -> int:
    if request.status == "completed" and request.result is not None:
        console.print(request.result.text, markup=False)
        return 0
    reason = request.error.message if request.error else request.message
    print(f"asyncagents: request {request.request_id} {request.status}: {reason}", file=sys.stderr)
    return EXIT_FAILED


def _status(args: argparse.Namespace) -> int:
    with _client(args) as client:
        request = client.get_request(args.request_id)
    if args.json:
        _print_json(request.model_dump(mode="json", exclude_none=True))
        return 0
    console = _stdout()
    steps = f"{request.completed_steps}/{request.total_steps} steps" if request.total_steps else "no plan yet"
    console.print(f"[bold]{request.request_id}[/]  {request.status}  {request.progress}%  {steps}")
    console.print(request.message, markup=False)
    if request.status == "awaiting_clarification" and request.clarification:
        console.print(f"question: {request.clarification.get('question')}", markup=False)
        console.print(f'answer it with: asyncagents answer {request.request_id} "..."', markup=False)
    if request.finished:
        return _show_outcome(console, request)
    return 0


def _list(args: argparse.Namespace) -> int:
    with _client(args) as client:
        page = client.list_requests(limit=args.limit, status=args.status)
    if args.json:
        _print_json(page.model_dump(mode="json", exclude_none=True))
        return 0
    from rich.table import Table

    table = Table("request id", "status", "progress", "created", "message")
    for request in page.requests:
        table.add_row(request.request_id, request.status, f"{request.progress}%", request.created_at, request.message)
    _stdout().print(table)
    return 0


def _cancel(args: argparse.Namespace) -> int:
    with _client(args) as client:
        answer = client.cancel(args.request_id)
    if args.json:
        _print_json(answer)
    else:
        print(answer.get("message", "cancelled"))
    return 0


def _answer(args: argparse.Namespace) -> int:
    with _client(args) as client:
        request = client.answer(args.request_id, args.answer, clarification_id=args.clarification_id)
    if args.json:
        _print_json(request.model_dump(mode="json", exclude_none=True))
    else:
        print(f"{request.request_id} {request.status}: {request.message}")
    return 0
