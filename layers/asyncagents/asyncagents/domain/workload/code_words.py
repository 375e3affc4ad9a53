"""The words of engineering work: code to be written, code changes and projects, and what says a request is
about code at all."""

from __future__ import annotations

import re

# Code to be written, whose description is not work to do ("a one-liner that counts lines in all files").
CODE_SPEC = re.compile(
    r"\b(?:write|give me|show me|what'?s|what is|build|create|make)\b(?:\W+[\w'-]+){0,3}?\W+"
    r"(?:one-liner|function|regex|"
    r"regular expression|query|command|snippet|formula|macro|class|method|script|program|sql|resolver|"
    r"dockerfile|component|handler|hook|cli|lambda|middleware|decorator|validator|parser|template|config|"
    r"module|cron(?:job)?|makefile|workflow file|unit test|test|extension|plugin|bot|userscript|bookmarklet)\b"
    r"(?P<spec>[^,;]*?)(?=,|;|\bthen\b|$)"
)
# Engineering that needs edit-build-test loops: one change each, or a project of several changes.
CODE_PROJECTS = re.compile(
    r"\b(port (?:the|our|this|it|my|a|an)\b|migrate|upgrade|refactor|modernise|modernize|split|"
    r"monolith|rewrite (?:the|our)|backfill|memory leak|race condition|deadlock|containeri[sz]e|"
    r"implement (?:[\w-]+ ){0,3}(?:login|auth\w*|oauth\w*|sso|payments?|search|client|integration|sdk|api)|"
    r"internationali[sz]e|i18n|build a (?:complete|full|whole) |"
    r"(?:throughout|everywhere in|across) the (?:codebase|repo|app|project)|"
    r"(?:every|all(?: the)?(?: public)?) (?:functions|classes|modules|components|endpoints|methods)|"
    r"move (?:the|our|this) (?:\w+ )?(?:app|service|database|site|codebase|backend|frontend) (?:from|to)|"
    r"(?:increase|raise|improve) (?:the )?(?:test )?coverage|bump (?:all|every\w*)|"
    r"convert the (?:\w+ ){0,2}(?:frontend|backend|codebase|app|service|project|module|site)|"
    r"build an? (?:[\w-]+ ){0,3}(?:api|app|application|service|backend|website|web app|cli|bot|pipeline|game)|"
    r"type hints to every|across the (?:whole |entire )?(?:\w+ )?(?:repo|repository|codebase|project|monorepo|app|"
    r"frontend|backend|site|service|dashboard)|"
    r"(?:whole|entire|full) (?:codebase|repo|repository|test suite))\b"
)
CODE_CHANGES = re.compile(
    r"\b(fix (?:it|them|the|this|that|these|those|whatever|all|any|our|my|a|an|bugs?)|reproduce|debug|"
    r"write (?:\w+ )?tests|add (?:a |an )?(?:\w+ )?tests?|set up|run (?:the |all )?(?:\w+ )?tests|test suite|"
    r"make (?:\w+ )?pass|tests? green|ci green|lints? and tests?|breaking changes|code review|implement|"
    r"find the bottleneck|make it faster|speed (?:it |this |that )?up|update the (?:\w+ )?(?:spec|tests|schema|docs))\b"
)
# Projects that are engineering whatever the request's words: moving data between systems.
DATA_PROJECTS = re.compile(r"\b(migrate|backfill|move (?:all|every|our|the) \w+ (?:from|to))\b")
# Words that say the work is on code: only then is "fix" or "add" an engineering change.
CODE_CONTEXT = re.compile(
    r"\b(code|codebase|repo|repository|api|endpoint|tests?|ci|bug|build|deploy|django|flask|fastapi|react|"
    r"node|npm|python|javascript|typescript|java|golang|rust|ruby|rails|php|package\.json|requirements\.txt|"
    r"dockerfile|docker|kubernetes|terraform|schema|function|module|class|server|frontend|"
    r"backend|lint|linter|pre-commit|coverage|pagination|oauth|login|sdk|library|compile|mypy|eslint|"
    r"websocket|script|scripts|pipeline|workflow|github actions|pull request|pr|merge request|branch|component|"
    r"components|redux|vue|angular|svelte|next\.js|kotlin|swift|c#|java|php|laravel|unity|terraform|redis|"
    r"postgres|mysql|infrastructure)s?\b"
)
# A step of engineering work starts with one of these, when the request is about code.
CODE_VERBS = frozenset(
    {"add", "update", "change", "fix", "implement", "refactor", "remove", "profile", "optimise", "optimize",
     "bump", "upgrade", "migrate", "port", "debug", "reproduce", "rewrite", "split"}
)  # fmt: skip
