"""Reading a request into the factors of its duration: what it asks, what it counts, what it leaves out."""

from __future__ import annotations

import pytest

from asyncagents.domain.workload import UNIT_SECONDS, analyse
from asyncagents.domain.workload.reading import ask_of, governing_verbs, normalise, quantities


def factors(message: str) -> dict[str, int]:
    return {f.name: f.count for f in analyse(message)}


def seconds(message: str) -> float:
    return sum(f.seconds for f in analyse(message))


@pytest.mark.parametrize(
    ("message", "expected"),
    [
        # sizes glued to numbers, numbers with thousands separators and in words
        ("Read the 300-page prospectus", {"reading": 300}),
        ("OCR these 1,000 scanned invoices", {"batch": 1000, "tool": 1}),
        ("Transcribe the forty customer interview recordings", {"batch": 40, "tool": 1}),
        ("Summarise the board minutes from the last three years (36 PDFs)", {"batch": 36}),
        # a bracketed count counts the noun before it
        ("Label all open GitHub issues in the repo (~150)", {"batch": 150, "tool": 1, "external_api": 1}),
        # the head of the phrase is the last noun: contracts, not vendors
        ("Check 12 vendor contracts", {"batch": 12, "tool": 1}),
        # "every" with no count: a typical collection, or a known one
        ("Tag every ticket in the queue", {"batch": 20, "tool": 1}),
        ("Find every country's minimum wage", {"research": 50}),
        # writing: words said, pieces by their usual length, pages written, slides
        ("Write a 500-word blog post", {"writing": 5}),
        ("Write 12 blog posts", {"writing": 96}),
        ("Make a picture book: 16 pages of text", {"writing": 40, "coordination": 1}),
        ("Create a 10-slide deck", {"writing": 10, "file": 1}),
        # a ranked list and a listing are read, not handled one by one
        ("Fetch the top 30 Hacker News headlines", {"tool": 2}),
        # engineering: a project is several changes with their test runs
        ("Port the payments service to Python 3", {"code": 5}),
        ("Reproduce the bug, fix it and add a unit test", {"code": 3, "coordination": 1}),
        ("Profile the slow endpoint, find the bottleneck and make it faster", {"code": 3, "coordination": 1}),
        # lists of names compared are sources; a list of steps is not
        ("Compare the warranty terms of Dyson, Shark and Miele", {"research": 3, "analysis": 1, "coordination": 1}),
        (
            "Segment them, find the drivers, build a chart and give me a summary",
            {"analysis": 1, "file": 1, "coordination": 1},
        ),
        # number words with hyphens, and accents
        ("Summarise each PR merged this sprint (twenty-two of them)", {"batch": 22}),
        ("Pull the last employer out of these 50 résumés", {"batch": 50}),
        # renaming and labelling read nothing through: light per item
        ("Rename the 30 invoice PDFs by date", {"batch": 30, "tool": 1}),
        ("Replace Redux across the dashboard (forty-odd components)", {"batch": 40, "code": 5}),
        # moving data between systems is a project even with no code words; so is a crawl of a whole site
        ("migrate our trello boards to jira", {"code": 5, "external_api": 2}),
        ("crawl our docs", {"tool": 21}),
        # a bracketed count goes to the noun after "every"; "which" takes a known collection whole
        ("Scrape every listing on the site (there are about 3,000)", {"tool": 120}),
        ("Which US states have passed privacy laws?", {"research": 50}),
        # rows worked on one by one: a light item per hundred
        ("Standardise the 120,000 address records", {"batch": 1200}),
        # a list of parts after a colon is a change per part
        (
            "Add search to our API: indexing job, query endpoint, relevance tuning and tests",
            {"tool": 2, "external_api": 1, "code": 4, "coordination": 1},
        ),
        ("Tag our 200 SKUs by category", {"batch": 200, "tool": 1}),
        # slides read are half a page each; slides written are words
        ("Summarise this 40-slide deck", {"reading": 20}),
    ],
)
def test_what_a_request_counts(message, expected):
    assert factors(message) == expected


@pytest.mark.parametrize(
    "message",
    [
        "Find a 30-minute slot next week for the $50k deal review",  # durations and prices are not items
        "What changed in Python 3.12 since 2023? See PR #482",  # versions, years, issue numbers
        "Write a Python script that renames all 500 photos in a folder",  # what a script will do, not work
        "Summarise our 2024 sales reports",  # a year is no count
        "How do I list every branch in all our repositories?",  # a knowledge question about big things
        "What's the best way to break a 500k-line Perl monolith into microservices?",
        "Scrape the 20 most recent posts on our LinkedIn page",  # fetched, not handled one by one
        "Put a CONFIDENTIAL watermark on every page of this PDF",  # stamped, not read
        "Suggest 5 names for a puppy",
        "Write a Dockerfile for a Node 20 app listening on port 3000",  # a version, not 20 apps
        "Fix the broken formulas in this workbook",  # no code, so no engineering change
        "Deploy the Node 20 app to staging",
        "Create a Google Calendar event for the vendor review on the 14th",  # an event, not a content calendar
        "I finally have a website (it cost me €1,200 and 3 weeks). Write a tagline for it",  # money
        "Write a short personalised welcome for each of the 20 new club members",  # a few lines each
        "Write a Python script that reads a CSV, drops duplicate rows and writes it back",
        "Send each a welcome email",  # one email each, not "each" of 20 emails
    ],
)
def test_numbers_that_are_not_work_keep_a_request_quick(message):
    assert seconds(message) < 30, analyse(message)


def test_prices_percentages_and_issue_numbers_count_nothing():
    assert quantities(["refund $300 to 15% of the customers in #482 and ~2 others"]) == []


@pytest.mark.parametrize(
    ("message", "absent"),
    [
        ("Find the top 20 customers by lifetime value", "batch"),  # one ranked query, not 20 customers
        ("Create a pitch deck for a meal-kit startup", "research"),  # "a startup" is no source to research
        ("Fix the broken formulas in this workbook", "code"),  # not about code
        ("Compare plans, build a chart and give me a summary", "research"),  # a list of steps, not of names
        ("Write a caption for our €20 tote bags", "batch"),  # money, not twenty bags
        ("Write a Python script that renames files", "writing"),  # code, not a podcast script
    ],
)
def test_what_is_not_work_of_its_kind(message, absent):
    assert absent not in factors(message)


@pytest.mark.parametrize(
    "message",
    [
        "analyse our churn",  # an open question about the business's own data
        "Put together a briefing on where right-to-repair legislation stands in the US and the EU",
        "Replace our homegrown logging with structlog everywhere in the codebase",
        "Move our infrastructure from hand-clicked AWS console setup to Terraform",
    ],
)
def test_medium_work_without_counts_is_not_a_quick_answer(message):
    assert seconds(message) >= 30, analyse(message)


def test_renaming_reads_nothing_through():
    assert seconds("Rename the 30 invoice PDFs by date") < 60  # 30 documents read would be 300 s


def test_every_page_is_counted_beside_an_unknown_count():
    # "3 breakpoints" is no known thing handled one by one, so it does not hide "every page"
    assert factors("Screenshot every page of the staging site at 3 breakpoints")["batch"] >= 20


def test_thousands_of_things_nothing_is_done_to_one_by_one_are_data():
    assert "batch" not in factors("Run a Monte Carlo simulation (10,000 runs) of the schedule")
    assert "batch" not in factors("Build a price chart from the 1,200 survey responses")
    assert factors("Summarise each of the 1,200 survey responses")["batch"] == 1200


def test_a_noun_counted_twice_counts_once():
    assert factors("There are 12 contracts in the folder. Check each of the 12 contracts.")["batch"] == 12
    assert factors("Review the 40 contracts, starting with these 3 contracts")["batch"] == 40


def test_a_preamble_is_context_and_the_closing_question_is_the_ask():
    # Given a long preamble that mentions three hundred people, ending in a question that stands alone
    message = (
        "I'm writing the memo that goes out to all three hundred employees on Monday. "
        "What is the current IRS standard mileage rate?"
    )
    # Then only the question is read
    assert ask_of(normalise(message)) == "what is the current irs standard mileage rate?"
    assert seconds(message) < 10
    # But a question that points back at the context reads all of it
    pointing_back = "There are 12 vendor contracts in the folder. Which of them expire this year?"
    assert ask_of(normalise(pointing_back)) == normalise(pointing_back)
    assert factors(pointing_back)["batch"] == 12


def test_a_closing_request_after_context_is_the_ask():
    message = (
        "I've uploaded our 210-page franchise manual because my manager wants something checked. "
        "All I need is the page that says how often the grease traps are cleaned."
    )
    assert ask_of(normalise(message)).startswith("all i need")
    assert seconds(message) < 10


def test_a_clause_without_a_verb_belongs_to_the_step_before_it():
    clauses = ["make a picture book", "16 pages of text", "then render the images"]
    assert governing_verbs(clauses) == {
        "make a picture book": "make",
        "16 pages of text": "make",
        "then render the images": "render",
    }


def test_assumed_counts_give_way_to_a_stated_one():
    # "each" would assume 20 emails; the 12 hires are what is counted
    found = quantities(["we have 12 new hires", "send each a welcome email"])
    assert [(q.count, q.noun) for q in found if not q.weak] == [(12, "hires")]
    assert all(q.counted for q in found)
    # with no number at all, the assumption stands
    found = quantities(["match each of yesterday's refunds to its ticket"])
    assert {(q.count, q.noun, q.counted) for q in found} == {(20, "refunds", False)}


def test_each_factor_is_priced_by_its_unit_and_the_estimate_adds_them():
    for factor in analyse("Research 5 vendors, compare them in a 2,000-word write-up and export a PDF"):
        low, typical, high = UNIT_SECONDS[factor.name]
        units = factor.seconds / typical
        assert factor.low == pytest.approx(low * units) and factor.high == pytest.approx(high * units)
    assert factors("Research 5 vendors, compare them in a 2,000-word write-up and export a PDF") == {
        "research": 5,
        "analysis": 1,
        "writing": 20,
        "tool": 1,
        "file": 1,
        "coordination": 1,
    }
