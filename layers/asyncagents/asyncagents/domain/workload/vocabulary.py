"""The words the workload reader knows: what a counted noun costs, and which verbs and phrases mean work.

Nouns are kept in singular form; ``noun_class`` also reads their plurals. The classes say what one unit of
the noun costs (see ``factors.UNIT_SECONDS``):

- ``source``: a source to research (a competitor, a paper, a country): the seed's research factor.
- ``document``: a long input read and worked on one by one (a contract, a transcript, a PDF).
- ``item``: a short input handled one by one (an email, a ticket, a receipt, a customer).
- ``light``: a tiny input handled one by one (a tweet, a photo, a URL).
- ``listed``: entries read off a listing (headlines, search results): a page of them per tool run.
- ``page`` / ``word`` / ``slide`` / ``line``: sizes of what is read or written.
- ``row``: data rows, handled by a query, not one by one.
- ``chart``: a generated file per unit.
"""

from __future__ import annotations

import re

NOUN_CLASSES: dict[str, tuple[str, ...]] = {
    "source": (
        "source", "competitor", "company", "vendor", "startup", "provider", "paper", "study", "journal",
        "blog", "brand", "framework", "library", "database", "platform", "tool", "product", "market",
        "country", "city", "neighbourhood", "neighborhood", "region", "university", "website", "outlet",
        "publication", "drug", "airline", "hotel", "bank", "school", "restaurant", "supplier", "app",
        "service", "model", "language", "option", "alternative", "article", "agency", "firm", "retailer",
        "manufacturer", "investor", "fund", "exchange", "regulator", "state", "newspaper",
        "magazine", "conference", "charity", "nonprofit", "insurer",
        "carrier", "marketplace", "law", "regulation", "standard", "patent",
        "trial", "textbook", "reference", "citation", "benchmark", "plan", "package", "sdk", "crate",
        "extension", "plugin", "hospital", "clinic", "supermarket", "brokerage",
    ),
    "document": (
        "document", "doc", "pdf", "contract", "nda", "agreement", "report", "transcript", "recording",
        "interview", "video", "podcast", "statement", "spreadsheet", "repository", "repo", "version",
        "policy", "proposal", "book", "filing", "chapter", "manual", "thesis", "dataset", "deposition",
        "lease", "brief", "memo", "presentation", "deck", "notebook", "audit", "prospectus",
        "webinar", "lecture", "sop", "handbook",
        "specification", "spec", "rfp", "questionnaire", "assignment", "essay", "dissertation",
        "microservice", "module", "scan",
    ),
    "item": (
        "email", "message", "ticket", "issue", "receipt", "invoice", "review", "application", "resume",
        "cv", "deal", "customer", "user", "account", "payment", "refund", "order", "sku", "pr",
        "file", "table", "column", "question", "lead", "candidate", "hire", "location",
        "store", "transaction", "subscription", "comment", "post", "note", "task", "bug", "submission",
        "response", "form", "folder", "endpoint", "job", "prospect", "client",
        "patient", "student", "member", "subscriber", "shipment",
        "parcel", "claim", "quote", "bill", "po", "booking", "reservation", "appointment",
        "profile", "case", "incident", "alert",
        "recipe", "mr", "commit", "branch",
        "container", "server", "instance", "host", "cluster", "pipeline", "workflow", "migration", "query",
        "script", "survey", "feedback", "testimonial", "complaint", "chat", "conversation",
        "thread", "call", "voicemail", "meeting", "invite", "campaign", "ad", "creative",
        "item", "sheet", "tab",
    ),
    "light": (
        "tweet", "title", "expense", "url", "link", "image", "photo", "picture", "screenshot", "keyword",
        "phrase", "sentence", "caption", "label", "domain", "mention", "contact", "icon",
        "thumbnail", "logo", "banner", "address", "tag", "hashtag", "emoji", "string",
        "filename", "name", "slogan", "translation", "term",
    ),
    "listed": ("headline", "listing", "posting", "result", "entry", "price", "score"),
    "page": ("page",),
    "word": ("word",),
    "slide": ("slide",),
    "line": ("line",),
    "row": ("row", "record", "event", "log"),
    "chart": ("chart", "graph", "plot", "diagram", "visualization", "visualisation", "infographic"),
}  # fmt: skip

# Written pieces and how many words one usually has, when the request does not say.
WRITTEN_WORDS: dict[str, int] = {
    "blog post": 800, "article": 1200, "story": 1000, "short story": 1000, "essay": 1000, "speech": 400,
    "chapter": 3000, "newsletter": 600, "press release": 500, "cover letter": 300,
    "landing page": 600, "copy": 400, "description": 100, "bio": 150, "script": 500, "outline": 300,
    "proposal": 1500, "whitepaper": 3000, "white paper": 3000, "release notes": 300, "faq": 400,
    "post": 300, "guide": 1500, "tutorial": 1500, "case study": 1200, "summary": 300, "write-up": 500,
    "writeup": 500, "write up": 500, "cover": 300, "review": 500, "memo": 400, "email": 150, "message": 80,
    "letter": 300,
}  # fmt: skip
# Longest first, so "blog post" is read before "post".
WRITTEN_PIECES = re.compile(
    r"\b(" + "|".join(re.escape(piece) for piece in sorted(WRITTEN_WORDS, key=len, reverse=True)) + r")s?\b"
)

_IRREGULAR_PLURALS = {
    "companies": "company", "studies": "study", "libraries": "library", "countries": "country",
    "cities": "city", "universities": "university", "policies": "policy", "stories": "story",
    "entries": "entry", "queries": "query", "minutes": "minute", "analyses": "analysis",
    "theses": "thesis", "indices": "index", "children": "child", "people": "person",
}  # fmt: skip

_CLASS_OF: dict[str, str] = {noun: name for name, nouns in NOUN_CLASSES.items() for noun in nouns}


def singular(word: str) -> str:
    """``companies`` → ``company``, ``PDFs`` → ``pdf``; a word already singular is returned as it is."""
    if word in _IRREGULAR_PLURALS:
        return _IRREGULAR_PLURALS[word]
    for ending in ("sses", "ches", "shes", "xes"):
        if word.endswith(ending):
            return word[:-2]
    if word.endswith("s") and not word.endswith(("ss", "us", "is")) and len(word) > 2:
        return word[:-1]
    return word


def noun_class(word: str) -> str | None:
    """The class of a noun (singular or plural), or None for a word the reader does not count."""
    found = _CLASS_OF.get(word) or _CLASS_OF.get(singular(word))
    return found or (_CLASS_OF.get(word[:-1]) if word.endswith("s") else None)  # "skus"


NUMBER_WORDS: dict[str, int] = {
    "one": 1, "a": 1, "an": 1, "single": 1, "two": 2, "couple": 2, "pair": 2, "both": 2, "three": 3,
    "four": 4, "five": 5, "six": 6, "seven": 7, "eight": 8, "nine": 9, "ten": 10, "eleven": 11,
    "twelve": 12, "dozen": 12, "fifteen": 15, "twenty": 20, "thirty": 30, "forty": 40, "fifty": 50,
    "sixty": 60, "seventy": 70, "eighty": 80, "ninety": 90, "hundred": 100, "few": 3, "several": 4,
    "dozens": 30, "hundreds": 300, "thousands": 3000, "thirteen": 13, "fourteen": 14, "sixteen": 16,
    "seventeen": 17, "eighteen": 18, "nineteen": 19,
}  # fmt: skip
# "a" and "an" count one only for sources and written pieces ("find an article", "write a blog post").
WEAK_NUMBERS = frozenset({"a", "an", "single", "both", "pair", "couple"})
SCALES = {"hundred": 100, "thousand": 1000, "million": 1_000_000}

# Words that may stand between a number and its noun ("12 vendor contracts", "25 of our store locations").
FILLER_WORDS = frozenset({"of", "our", "the", "these", "those", "my", "your", "their", "its", "new", "more"})
# Words that end a noun phrase: the noun is the last known noun before one of them.
PHRASE_ENDS = frozenset(
    {
        "and", "or", "of", "to", "from", "in", "into", "on", "for", "with", "by", "that", "which", "who", "whose",
        "than", "then", "per", "against", "through", "across", "at", "about", "each", "so", "as", "using",
        "under", "over", "since", "before", "after", "where", "while", "is", "are", "was", "were", "be",
        "it", "them", "they", "if", "when", "via", "without", "including",
    }
)  # fmt: skip
# Counted words that are measures, not things handled: "3 years of sales", "$50k", "five minutes long".
MEASURES = frozenset(
    {
        "seconds", "minutes", "hours", "days", "weeks", "months", "years", "quarters", "decades", "percent",
        "dollars", "euros", "pounds", "cents", "bucks", "degrees", "miles", "kilometres", "kilometers", "kms",
        "grams", "kilograms", "ounces", "inches", "feet", "meters", "metres", "times", "people", "persons",
        "members", "employees", "staff", "developers", "engineers", "variants", "steps", "points", "bullets",
        "levels", "stars", "votes", "likes", "followers", "views", "calories", "liters", "litres", "sprints",
        "rounds", "sides", "ways", "bits", "bytes", "characters", "chars", "digits", "fields", "nights",
        "guests", "adults", "kids", "children", "hires", "seats", "units", "shares", "tokens",
        "gigabytes", "megabytes", "terabytes", "gbs", "mbs", "tbs", "columns", "cores", "threads", "others",
        "dimensions", "bedrooms", "rooms", "floors", "questions", "sentences", "paragraphs", "bullet",
    }
)  # fmt: skip
SCOPE_WORDS = frozenset({"all", "every", "each", "entire", "whole", "full"})
# What "every/all X" means when nobody says how many: a typical collection, and a few named ones.
UNCOUNTED_COLLECTION = 20
KNOWN_COLLECTIONS = {"country": 195, "state": 50, "continent": 7, "month": 12}

RESEARCH_VERBS = re.compile(
    r"\b(research|investigate|survey|literature review|find out|look into|dig up|dig into|deep dive|"
    r"gather|compile|cite|citing|sources|with references|market sizing|market research|who are the top|"
    r"compare what|fact-check|look up how|find (?:me )?(?:papers|studies|articles|sources|reports|every|all))\b"
)
RESEARCH_CONTEXT = re.compile(r"\b(find|search|look up|collect|top|best|leading|compare|rank|list)\b")
ANALYSIS_WORDS = re.compile(
    r"\b(analy[sz]e|analysis|compare|comparison|differ|differences?|evaluate|evaluation|assess|assessment|"
    r"rank|recommend|recommendations?|trends|insights|pros and cons|for and against|identify (?:risks|gaps)|"
    r"what changed|mismatches|prioriti[sz]e|themes|complaints|group (?:them|by))\b"
)
# Analyses the seed would put at the top of its 10-30 s range: models, statistics, audits.
DEEP_ANALYSIS_WORDS = re.compile(
    r"\b(regression|forecast|build a model|predictive|segment|cluster|cohort|significance|statistical|"
    r"drivers of|root cause|audit|security|vulnerabilit(?:y|ies)|due diligence|market sizing|strategy|"
    r"reconcile|anomal(?:y|ies)|correlation|review (?:this|the|our) (?:pull request|pr|diff|code))\b"
)
TOOL_WORDS = re.compile(
    r"\b(search|calculate|compute|run|execute|convert|extract|parse|fetch|scrape|crawl|screenshot|"
    r"screenshots|ocr|transcribe|resize|watermark|render|query|look up|ping|check|download|upload|"
    r"deduplicat\w*|join|plot|sync|import|export|tag|label|classify|categori[sz]e|rename|translate)\b"
)
EXTERNAL_SYSTEMS = re.compile(
    r"\b(api|apis|weather|stock|github|gitlab|slack|jira|emails?|e-mail|gmail|outlook|calendar|crm|"
    r"salesforce|hubspot|webhook|notion|google drive|drive|sharepoint|twitter|linkedin|zendesk|stripe|"
    r"quickbooks|pipedrive|mailchimp|mixpanel|linear|asana|trello|shopify|twilio|discord|microsoft teams|reddit|"
    r"google workspace|intercom|airtable|confluence|dropbox|figma|datadog|sentry|pagerduty|s3|bigquery|"
    r"snowflake|warehouse|prod replica|database)\b"
)
FILE_NOUNS = (
    r"(report|pdf|spreadsheet|excel|csv|slides?|presentation|deck|docx|dashboard|whitepaper|newsletter|"
    r"summary table|table|sheet|zip|archive|json file)s?"
)
# A file is generated when a making verb governs a file noun within a few words ("create a PDF report"),
# or when work is put "into" one ("into a CSV").
FILE_OUTPUTS = re.compile(
    r"\b(?:create|write|generate|produce|build|draft|prepare|make|export|compile|put together|deliver|"
    rf"with a|into(?: an?)?|as an?|to an?)\b(?:\W+[\w'-]+){{0,4}}?\W+{FILE_NOUNS}\b"
)
# Verbs that start a step; a clause without one ("16 pages of text") belongs to the step before it.
STEP_VERBS = frozenset(
    {
        "write", "rewrite", "draft", "compose", "translate", "author", "create", "generate", "produce", "make",
        "find", "list", "check", "run", "render", "get", "pull", "send", "post", "compare", "analyse", "analyze",
        "summarise", "summarize", "extract", "read", "review", "build", "add", "fix", "keep", "start", "go",
        "scrape", "crawl", "fetch", "look", "search", "research", "calculate", "plot", "chart", "email", "tag",
        "label", "sync", "match", "assign", "score", "rank", "classify", "categorise", "categorize", "reply",
        "give", "tell", "explain", "recommend", "collect", "compile", "put", "export", "import", "upload",
        "download", "identify", "flag", "sort", "group", "clean", "convert", "split", "port", "migrate",
        "upgrade", "set", "deploy", "test", "take", "transcribe", "resize", "ocr", "join", "forecast",
        "segment", "profile", "reconcile", "triage", "trace", "dig", "suggest", "use",
    }
)  # fmt: skip
WRITING_VERBS = frozenset(
    {"write", "rewrite", "draft", "compose", "translate", "author", "create", "generate", "produce", "make"}
)
# Code to be written, whose description is not work to do ("a one-liner that counts lines in all files").
CODE_SPEC = re.compile(
    r"\b(?:write|give me|show me|what'?s|what is)\b(?:\W+[\w'-]+){0,3}?\W+(?:one-liner|function|regex|"
    r"regular expression|query|command|snippet|formula|macro|class|method|script|program|sql)\b"
    r"(?P<spec>[^,;]*?)(?=,|;|\bthen\b|$)"
)
# Engineering that needs edit-build-test loops: one change each, or a project of several changes.
CODE_PROJECTS = re.compile(
    r"\b(port (?:the|our|this|it|my|a|an)\b|migrate|migration|upgrade|refactor|modernise|modernize|split|"
    r"monolith|rewrite the|"
    r"convert the (?:\w+ ){0,2}(?:frontend|backend|codebase|app|service|project|module|site)|"
    r"build an? (?:\w+ ){0,3}(?:api|app|application|service|backend|website|web app|cli|bot|pipeline)|"
    r"type hints to every|across the (?:whole|entire) (?:repo|repository|codebase|project)|"
    r"(?:whole|entire|full) (?:codebase|repo|repository|test suite))\b"
)
CODE_CHANGES = re.compile(
    r"\b(fix(?:es)?|reproduce|debug|write (?:\w+ )?tests|add (?:a |an )?(?:\w+ )?tests?|set up|"
    r"run (?:the |all )?(?:\w+ )?tests|test suite|make (?:\w+ )?pass|tests? green|implement|deploy|"
    r"lints? and tests?|breaking changes|code review|point out bugs)\b"
)
KNOWLEDGE_QUESTION = re.compile(r"^\W*(how do i|how can i|how to|how would i|how should i|what'?s the command)\b")
WEB_HINTS = re.compile(
    r"\b(site|website|url|urls|http|https|www|crawl|scrape|search results|web|homepage|pricing|online)\b"
)
RETRIEVAL_VERBS = frozenset({"fetch", "get", "pull", "list", "show", "scrape", "download", "collect", "give"})
PER_ITEM_VERBS = re.compile(
    r"\b(each|every one|summari[sz]e|categori[sz]e|classify|label|tag|translate|reply|score|triage|rank|"
    r"draft|rewrite|review|check|flag|resize|ocr|transcribe|moderat\w*|sync|match|assign)\b"
)
BACK_REFERENCES = re.compile(r"\b(them|they|those|these|each|their|it|above|below|following|attached)\b")
