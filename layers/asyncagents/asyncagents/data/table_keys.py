"""Key formats of the requests table, known to the data package alone (the domain speaks of request keys,
key ids and formation ids; never of ``pk``/``sk``).

- request record: ``pk=REQ#<request key>``, ``sk=REQUEST``; ``listed_for`` + ``created_at`` feed the
  ``RequestKeysByOwner`` index (``listed_for=OWNER#<hash of key id and user id>``), keys only: no write after the
  record's creation changes what it holds, so none writes to it (the list filters the records it reads). Records
  written before 0.3 carry ``requester`` instead, and are in the ``RequestsByOwner`` index (keys, ``status`` and
  ``expires_at``), listed after the newer ones until a later release removes it;
- webhook bookkeeping of a request: ``pk=REQ#<request key>``, ``sk=REQUEST#WEBHOOK`` (the delivery's status, attempts,
  last error; ``of_created_at`` names the record it belongs to): its own small item, so recording a delivery neither
  rewrites the record (billed by its whole size) nor shows up in the record's stream;
- a request's plan over 512 bytes: ``pk=REQ#<request key>``, ``sk=REQUEST#PLAN#<token of the planner's write>``
  (``data.request_plans``; the record then has ``plan_apart``), forgotten with the step checkpoints by its TTL;
- remembered request id: ``pk=IDEM#<request key>``, ``sk=IDEM`` (written with a request named by its client, kept
  for the idempotency window by its own TTL, so the name stays taken after the record expired);
- step checkpoint: ``pk=REQ#<request key>``, ``sk=STEP#<lineage>#0003`` (the output of one finished step);
- unfinished requests: ``open_shard=OPEN#<first hex digit of the request key>`` + ``created_at`` feed the sparse
  ``Unfinished`` index (keys only): the attribute exists while the request is not terminal;
- duration history: ``pk=HIST#<formation>[@<analysis>]``, ``sk=KIND#<kind>`` (0.1: ``pk=HIST#<formation>#<kind>``);
- API key: ``pk=KEY#<sha256 of the secret>``, ``sk=KEY``, and ``pk=KEYID#<key id>``, ``sk=KEY`` pointing back (with
  ``owner=KEYS`` + ``created_at``, so the ``ByOwner`` index lists the keys);
- audit record: ``pk=AUDIT#<entry id>``, ``sk=AUDIT``, ``owner=AUDIT`` + ``created_at`` (listed newest first through
  ``ByOwner``), forgotten by TTL;
- rate window: ``pk=RATE#<key id>``, ``sk=<epoch second>`` (a counter, forgotten by TTL a minute later);
- slot pool: ``pk=SLOTS#<pool>``, ``sk=SLOTS`` (a string set of the members that hold a slot);
- the model provider's circuit breaker: ``pk=BREAKER#<provider>#<model>``, ``sk=BREAKER`` (``data.model_breaker``);
- spend counter: ``pk=SPEND#<UTC day or month>``, ``sk=FORMATION`` or ``sk=KEY#<key id>``, forgotten by TTL weeks
  after its period (``data.spend_counters``);
- a completion notice sent: ``pk=NOTICE#<delivery id>``, ``sk=NOTICE``, forgotten by TTL (``data.sent_notices``);
- scheduled job: ``pk=JOBS``, ``sk=JOB#<job id>`` (one partition: jobs are few, listed together); a run of a
  job: ``pk=JOBS``, ``sk=RUN#<job id>#<scheduled time>`` (the slot: written once).
"""

from __future__ import annotations

import hashlib
import json
import re
from typing import Any

REQUEST_SK = "REQUEST"
WEBHOOK_STATE_SK = "REQUEST#WEBHOOK"
OWNER_INDEX = "ByOwner"
LIST_INDEX = "RequestKeysByOwner"
LISTED_FOR = "listed_for"  # the request records' partition attribute in LIST_INDEX
# Records written before 0.3 are listed through this index (it copied their status, so every status change wrote it).
REQUESTER_INDEX = "RequestsByOwner"
REQUESTER = "requester"  # the partition attribute of REQUESTER_INDEX
UNFINISHED_INDEX = "Unfinished"
# Sixteen partitions of the unfinished index, so that no one partition takes every new request's write.
OPEN_SHARDS = tuple(f"OPEN#{digit}" for digit in "0123456789abcdef")
_REQUEST_PREFIX = "REQ#"
REQUEST_PK_PATTERN = re.compile(r"REQ#[0-9a-f]{32}")


def request_item_key(request_key: str) -> dict[str, Any]:
    return {"pk": {"S": request_pk(request_key)}, "sk": {"S": REQUEST_SK}}


def webhook_state_key(request_key: str) -> dict[str, Any]:
    return {"pk": {"S": request_pk(request_key)}, "sk": {"S": WEBHOOK_STATE_SK}}


def request_pk(request_key: str) -> str:
    return _REQUEST_PREFIX + request_key


def request_key_of(pk: str) -> str:
    return pk.removeprefix(_REQUEST_PREFIX)


def owner_of(key_id: str, user_id: str) -> str:
    """Requests are scoped by API key and end user; the pair becomes one opaque partition value."""
    return "OWNER#" + hashlib.sha256(json.dumps([key_id, user_id]).encode()).hexdigest()[:32]


def open_shard(request_key: str) -> str:
    return f"OPEN#{request_key[0]}"


def step_sk(lineage: str, index: int) -> str:
    """Step checkpoints belong to one lineage of a request (its first execution and its redrives), so a
    request id reused after its retention never sees the old request's steps."""
    return f"{step_prefix(lineage)}{index:04d}"


def step_prefix(lineage: str) -> str:
    return f"STEP#{lineage}#"


HISTORY_KIND_PREFIX = "KIND#"


def history_partition(formation_id: str) -> dict[str, Any]:
    """A formation's learned durations share one partition (one query lists them, one sweep forgets them)."""
    return {"S": f"HIST#{formation_id}"}


def history_key(formation_id: str, kind: str) -> dict[str, Any]:
    # Release 0.1 kept each kind in a partition of its own (HIST#<formation>#<kind>): those items are left
    # behind, and the estimator learns again (its prior keeps estimates sane meanwhile).
    return {"pk": history_partition(formation_id), "sk": {"S": HISTORY_KIND_PREFIX + kind}}


def api_key_key(secret_hash: str) -> dict[str, Any]:
    return {"pk": {"S": f"KEY#{secret_hash}"}, "sk": {"S": "KEY"}}


def api_key_id_key(key_id: str) -> dict[str, Any]:
    return {"pk": {"S": f"KEYID#{key_id}"}, "sk": {"S": "KEY"}}


JOBS_PK = "JOBS"


def job_key(job_id: str) -> dict[str, Any]:
    return {"pk": {"S": JOBS_PK}, "sk": {"S": f"JOB#{job_id}"}}


JOB_SK_PREFIX = "JOB#"


def run_key(job_id: str, scheduled_time: str) -> dict[str, Any]:
    return {"pk": {"S": JOBS_PK}, "sk": {"S": f"{run_prefix(job_id)}{scheduled_time}"}}


def run_prefix(job_id: str) -> str:
    return f"RUN#{job_id}#"


def rate_window_key(key_id: str, window: int) -> dict[str, Any]:
    return {"pk": {"S": f"RATE#{key_id}"}, "sk": {"S": str(window)}}


def slot_pool_key(pool: str) -> dict[str, Any]:
    return {"pk": {"S": f"SLOTS#{pool}"}, "sk": {"S": "SLOTS"}}


KEYS_OWNER = "KEYS"
KEY_SK = "KEY"
KEY_ID_PK_PATTERN = re.compile(r"KEYID#key_[0-9a-f]{16}")
AUDIT_OWNER = "AUDIT"
AUDIT_SK = "AUDIT"
AUDIT_PK_PATTERN = re.compile(r"AUDIT#[0-9a-f]{32}")


def audit_key(entry_id: str) -> dict[str, Any]:
    return {"pk": {"S": f"AUDIT#{entry_id}"}, "sk": {"S": AUDIT_SK}}


def remembered_key(request_key: str) -> dict[str, Any]:
    return {"pk": {"S": f"IDEM#{request_key}"}, "sk": {"S": "IDEM"}}
