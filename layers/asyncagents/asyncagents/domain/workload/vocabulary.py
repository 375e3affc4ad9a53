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
        "publication", "drug", "airline", "hotel", "bank", "school", "restaurant", "supplier", "app", "site",
        "service", "model", "language", "article", "agency", "firm", "retailer",
        "manufacturer", "investor", "fund", "exchange", "regulator", "state", "newspaper",
        "magazine", "conference", "charity", "nonprofit", "insurer",
        "carrier", "marketplace", "law", "regulation", "standard", "patent",
        "trial", "textbook", "reference", "citation", "benchmark", "plan", "package", "sdk", "crate",
        "extension", "plugin", "hospital", "clinic", "supermarket", "brokerage", "county", "province",
        "municipality", "district", "shop", "airport", "court", "museum", "venue", "pharmacy", "dealership",
        "gym", "station", "embassy", "consulate", "park",
    ),
    "document": (
        "document", "doc", "pdf", "contract", "nda", "agreement", "report", "transcript", "recording",
        "interview", "video", "podcast", "statement", "spreadsheet", "repository", "repo", "version",
        "policy", "proposal", "book", "filing", "chapter", "manual", "thesis", "dataset", "deposition",
        "lease", "brief", "memo", "presentation", "deck", "notebook", "audit", "prospectus",
        "webinar", "lecture", "sop", "handbook",
        "specification", "spec", "rfp", "questionnaire", "assignment", "essay", "dissertation",
        "microservice", "module", "project", "template", "episode", "scan",
    ),
    "item": (
        "email", "message", "ticket", "issue", "receipt", "invoice", "review", "application", "resume",
        "cv", "deal", "customer", "user", "account", "payment", "refund", "order", "sku", "pr",
        "file", "table", "column", "question", "lead", "candidate", "hire", "location",
        "store", "subscription", "post", "task", "bug", "submission",
        "response", "form", "folder", "endpoint", "job", "prospect", "client", "person", "employee", "payout",
        "transfer", "charge", "deposit", "withdrawal",
        "staff", "developer", "engineer", "guest", "attendee", "participant", "speaker", "channel", "log",
        "voicemail", "sequence",
        "patient", "student", "member", "subscriber", "shipment",
        "parcel", "claim", "quote", "bill", "po", "booking", "reservation", "appointment",
        "profile", "incident", "alert",
        "recipe", "mr", "commit", "branch",
        "container", "server", "instance", "host", "cluster", "pipeline", "workflow", "migration", "query",
        "script", "survey", "feedback", "testimonial", "complaint", "chat", "conversation",
        "thread", "call", "meeting", "invite", "campaign", "ad", "creative",
        "sheet", "tab",
    ),
    "light": (
        "tweet", "title", "expense", "url", "link", "image", "photo", "picture", "screenshot", "keyword",
        "phrase", "sentence", "caption", "label", "domain", "mention", "contact", "icon",
        "thumbnail", "logo", "banner", "address", "tag", "hashtag", "emoji", "string",
        "item", "transaction", "comment", "note",
        "filename", "name", "slogan", "translation", "term",
    ),
    "listed": ("headline", "listing", "posting", "result", "entry", "price", "score"),
    "page": ("page",),
    "word": ("word",),
    "slide": ("slide",),
    "line": ("line",),
    "row": ("row", "record", "event"),
    "chart": ("chart", "graph", "plot", "diagram", "visualization", "visualisation", "infographic"),
}  # fmt: skip

# Written pieces and how many words one usually has, when the request does not say.
WRITTEN_WORDS: dict[str, int] = {
    "blog post": 800, "article": 1200, "story": 1000, "short story": 1000, "essay": 1000, "speech": 400,
    "chapter": 3000, "newsletter": 600, "press release": 500, "cover letter": 300,
    "landing page": 600, "copy": 400, "description": 100, "bio": 150, "script": 500, "outline": 300,
    "proposal": 1500, "whitepaper": 3000, "white paper": 3000, "release notes": 300, "faq": 400,
    "post": 300, "guidelines": 1200, "briefing": 800, "explainer": 600, "overview": 800, "playbook": 2000,
    "handbook": 5000, "sequence": 750, "content calendar": 600, "social calendar": 600,
    "editorial calendar": 600, "content": 1200, "presentation": 1000, "deck": 1000,
    "guide": 1500, "tutorial": 1500, "case study": 1200, "summary": 300, "write-up": 500,
    "writeup": 500, "write up": 500, "cover": 300, "review": 500, "memo": 400, "email": 150, "message": 25,
    "screenplay": 20000, "novel": 60000,
    "novella": 25000, "ebook": 15000, "song": 150, "lyrics": 200, "poem": 100, "notification": 20,
    "tagline": 10, "tweet": 40, "thread": 300, "caption": 30, "question": 30, "episode": 1000,
    "template": 150, "welcome": 40, "card": 40, "note": 60,
    "quiz": 400,
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
_PLURAL_ONLY = frozenset({"people", "staff", "data", "media", "feedback", "personnel", "folks"})

_CLASS_OF: dict[str, str] = {noun: name for name, nouns in NOUN_CLASSES.items() for noun in nouns}


def singular(word: str) -> str:
    """``companies`` → ``company``, ``PDFs`` → ``pdf``; a word already singular is returned as it is."""
    if word in _IRREGULAR_PLURALS:
        return _IRREGULAR_PLURALS[word]
    if word.endswith("s") and word[:-1] in _CLASS_OF:  # "skus", "bus" aside
        return word[:-1]
    if word.endswith("ies") and len(word) > 4:  # "families"
        return word[:-3] + "y"
    for ending in ("sses", "ches", "shes", "xes"):
        if word.endswith(ending):
            return word[:-2]
    if word.endswith("s") and not word.endswith(("ss", "us", "is")) and len(word) > 2:
        return word[:-1]
    return word


def is_plural(word: str) -> bool:
    """``contracts``, ``companies``, ``people``: more than one (what a count above one goes with)."""
    return word in _PLURAL_ONLY or singular(word) != word


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
        "grams", "kilograms", "ounces", "inches", "feet", "meters", "metres", "times",
        "variants", "steps", "points", "bullets",
        "levels", "stars", "votes", "likes", "followers", "views", "calories", "liters", "litres", "sprints",
        "rounds", "sides", "ways", "bits", "bytes", "characters", "chars", "digits", "fields", "nights",
        "adults", "kids", "children", "seats", "units", "shares", "tokens",
        "gigabytes", "megabytes", "terabytes", "gbs", "mbs", "tbs", "cores", "others",
        "dimensions", "bedrooms", "rooms", "floors", "sentences", "paragraphs", "bullet",
    }
)  # fmt: skip
SCOPE_WORDS = frozenset({"all", "every", "each", "entire", "whole", "full"})
CURRENCY_SIGNS = frozenset({"$", "€", "£", "¥", "₹"})
# What "every/all X" means when nobody says how many: a typical collection, and a few named ones.
UNCOUNTED_COLLECTION = 20
KNOWN_COLLECTIONS = {"country": 195, "state": 50, "continent": 7, "month": 12}
# People a message is written to: writing to each is a short piece, not an item read through.
PEOPLE = frozenset(
    {"member", "customer", "family", "guest", "hire", "employee", "person", "attendee", "tutor", "volunteer",
     "client", "user", "subscriber", "donor", "patient", "student", "candidate", "lead", "prospect", "tenant"}
)  # fmt: skip

RESEARCH_VERBS = re.compile(
    r"\b(research|investigate|survey (?:how|what|which|the literature|the market|the field)|literature review|"
    r"find out|look into|dig up|dig into|deep dive|track down|"
    r"landscape|main players|key facts|briefing on|benchmarks|criticisms|what people are saying|citations|"
    r"shortlist|short-list|background check|due diligence on|prior art|landscape of|background file|map the|"
    r"map out|compile a timeline|timeline of|"
    r"gather (?:information|data|sources|facts)|compile (?:a|the) (?:list|overview|summary|table)|cite|citing|"
    r"sources|with references|market sizing|market research|who are the top|"
    r"compare what|fact-check|look up how|find (?:me )?(?:papers|studies|articles|sources|reports|every|all))\b"
)
# A list of names is sources to research when they are compared or asked about side by side.
COMPARING = re.compile(
    r"\b(compare|comparison|contrast|benchmark|versus|vs|differ|difference|which of|status of|across|between|"
    r"side by side)\b"
)
RESEARCH_CONTEXT = re.compile(r"\b(find|search|look up|collect|top|best|leading|compare|rank|list)\b")
ANALYSIS_WORDS = re.compile(
    r"\b(analy[sz]e|analysis|compare|comparison|differ|differences?|evaluate|evaluation|assess|assessment|"
    r"rank|recommend|recommendations?|trends|insights|pros and cons|for and against|identify (?:risks|gaps)|"
    r"what changed|mismatches|prioriti[sz]e|themes|complaints|group (?:them|by)|inconsisten(?:t|cy|cies)|"
    r"discrepanc(?:y|ies)|gaps|versus|vs)\b"
)
# Analyses the seed would put at the top of its 10-30 s range: models, statistics, audits.
DEEP_ANALYSIS_WORDS = re.compile(
    r"\b(regression|regress|forecast|build an? (?:\w+ ){0,2}model|train (?:an?|the) (?:\w+ )?model|exploratory|"
    r"predictive|segment|"
    r"cluster|cohort|significance|statistical|"
    r"drivers of|root causes?|audit|security (?:audit|review|holes|issues|scan)|vulnerabilit(?:y|ies)|"
    r"due diligence|market sizing|strategy|reconcile|anomal(?:y|ies)|fit an? (?:\w+ )?model|arima|"
    r"train an? (?:\w+ )?model|machine learning|feature engineering|cross-validation|\d+-fold|shap|"
    r"churn model|survival analysis|kaplan-meier|cox model|monte carlo|simulation|predict\w*|outliers|"
    r"fraud patterns|elasticity|funnel|churn|patterns|likely to|"
    r"review (?:this|the|our) (?:pull request|pr|diff|code))\b"
)
TOOL_WORDS = re.compile(
    r"\b(search|calculate|compute|run|execute|convert|extract|parse|fetch|scrape|crawl|screenshot|"
    r"screenshots|ocr|transcribe|resize|watermark|render|query|look up|ping|check|download|upload|"
    r"deduplicat\w*|join|plot|sync|import|export|tag|label|classify|categori[sz]e|rename|translate)\b"
)
EXTERNAL_SYSTEMS = re.compile(
    r"\b(api|apis|weather|stock|github|gitlab|slack|jira|emails?|e-mail|gmail|outlook|calendar|crm|"
    r"salesforce|hubspot|webhook|notion|google drive|drive|sharepoint|twitter|linkedin|zendesk|stripe|"
    r"quickbooks|pipedrive|mailchimp|mixpanel|linear|asana|trello|shopify|twilio|discord|microsoft teams|"
    r"reddit|"
    r"google workspace|intercom|airtable|confluence|dropbox|figma|datadog|sentry|pagerduty|s3|bigquery|"
    r"snowflake|warehouse|prod replica|database|clearbit|calendly|okta|1password|aws|iam|zapier|"
    r"google sheets|google docs|trustpilot|g2|capterra|glassdoor|zillow|yelp|google reviews|youtube|"
    r"instagram|facebook|tiktok|whatsapp|telegram|zoom|docusign|xero|netsuite|workday|bamboohr|greenhouse|"
    r"lever|freshdesk|servicenow|monday|clickup|basecamp|miro|vercel|netlify|heroku|cloudflare)\b"
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
    {
        "write",
        "rewrite",
        "draft",
        "compose",
        "translate",
        "author",
        "create",
        "generate",
        "produce",
        "make",
        "prepare",
        "design",
    }
)
KNOWLEDGE_QUESTION = re.compile(
    r"^\W*(how do i|how can i|how to|how would i|how should (?:i|we|a|an|our|my)|how do we|how can we|"
    r"what'?s the command|what'?s the best way|what is the best way|what are the pros|should (?:i|we))\b"
)
WEB_HINTS = re.compile(
    r"\b(site|sites|website|url|urls|http|https|www|crawl|scrape|search results|web|homepage|pricing|online|"
    r"landing|sitemap)\b"
)
RETRIEVAL_VERBS = frozenset({"fetch", "get", "pull", "list", "show", "scrape", "download", "collect", "give"})
PER_ITEM_VERBS = re.compile(
    r"\b(each|every one|summari[sz]e|categori[sz]e|classify|label|tag|translate|reply|score|triage|rank|"
    r"draft|rewrite|review|check|flag|resize|ocr|transcribe|moderat\w*|sync|match|assign|extract|out of|"
    r"geocode|standardi[sz]e|normali[sz]e|clean|dedupe|deduplicate|validate|enrich|anonymi[sz]e|fix)\b"
)
# Handling that needs no reading of each item (a file operation), or only a label: tiny per item.
MECHANICAL_VERBS = re.compile(
    r"\b(merge|rename|convert|resize|compress|zip|unzip|geotag|watermark|crop|rotate|classify|tag|label|"
    r"categori[sz]e|sort|mark)\b"
)
READING_VERBS = re.compile(
    r"\b(summari[sz]e|summary|read|review|reply|draft|write|rewrite|translate|extract|pull|score|triage|"
    r"answer|analy[sz]e|proofread|transcribe|ocr|check|flag|assess|evaluate|compare|describe|redact|"
    r"anonymi[sz]e|respond|caption|watch|listen|annotate|grade|moderate|proofread)\b"
)
BACK_REFERENCES = re.compile(r"\b(them|those|these|each|their|it|above|below|following|attached)\b")
# A closing sentence that asks on its own, after sentences of context.
ASKING = re.compile(
    r"^\W*(all i need|i just need|i only need|just tell me|tell me|i need to know|what i need|can you|"
    r"could you|would you|please|help me)\b"
)
