"""FLAN 2021 summarization cluster: AESLC, AG News, CNN/DailyMail, Gigaword, Multi-News, Newsroom,
Opinion Abstracts (idebate, Rotten Tomatoes), SAMSum, WikiLingua (English), XSum.

Each dataset maps a long text to a short one; the answer field is named for what the target is
(`summary`, or `subject` for AESLC). AG News is topic classification and the one dataset here
with options. Worked example (xsum):

    raw    {"document": "The council voted to close the bridge for repairs ...",
            "summary": "A bridge will shut for a month of repairs."}
    fields {"document": "The council voted to close the bridge for repairs ...",
            "summary": "A bridge will shut for a month of repairs."}

Dataset notes: Multi-News joins its source articles with "|||||" (shown as blank-line-separated
articles) and starts each summary with "– " (stripped). Opinion Abstracts stores reviews and
argument sentences as key/value lists; the values are joined in the stored order. Newsroom,
SAMSum and XSum need a manual download into the TFDS manual dir (`tfds build` explains where).
Rows whose text or target is empty are dropped.
"""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from flan_jax.data.templates.flan2021.common import pick_label
from flan_jax.data.templates.spec import DatasetSpec, FieldMapping, Fields, Template, TfdsSource

T = Template
CLUSTER = "summarization"
_TRAIN_VAL_TEST = {"train": "train", "validation": "validation", "test": "test"}
# Opinion Abstracts has only a train split: hold out the last 10% for validation.
_TRAIN_ONLY = {"train": "train[:90%]", "validation": "train[90%:]"}


def _nonempty(**fields: str) -> Fields | None:
    """The stripped fields, or None if any is empty."""
    out = {k: v.strip() for k, v in fields.items()}
    return out if all(out.values()) else None


# ---------------------------------------------------------------------------------------------
# AESLC: write the subject line of an email.
def aeslc_fields(ex: Mapping[str, Any]) -> Fields | None:
    return _nonempty(email=ex["email_body"], subject=ex["subject_line"])


AESLC_TEMPLATES = (
    T("{email}\n\nWrite a subject line for this email.", "{subject}"),
    T("What would be a good subject for the following email?\n\n{email}", "{subject}"),
    T("Email:\n{email}\n\nSubject:", "{subject}"),
    T("I'm about to send this message. Suggest a short subject line.\n\n{email}", "{subject}"),
    T("Summarize this email in a few words, as its subject would.\n{email}", "{subject}"),
    T("{email}\n\nGive this email a title.", "{subject}"),
    T("Body: {email}\n\nA fitting subject line is", "{subject}"),
    T("Here is the text of a work email:\n{email}\n\nWhat was it probably titled?", "{subject}"),
    T("Generate the subject field for an email that says:\n{email}", "{subject}"),
    T("Write a short email with the subject \"{subject}\".", "{email}", inverted=True),
)


# ---------------------------------------------------------------------------------------------
# AG News: topic of a news story (label order World, Sports, Business, Sci/Tech).
AG_NEWS_OPTIONS = ("World", "Sports", "Business", "Science/Tech")


def ag_news_fields(ex: Mapping[str, Any]) -> Fields | None:
    answer = pick_label(AG_NEWS_OPTIONS, ex["label"])
    if answer is None:
        return None
    return {"title": ex["title"], "text": ex["description"], "answer": answer}


AG_NEWS_TEMPLATES = (
    T("{title}\n\n{text}\n\nWhat is this news story about?{options_}", "{answer}"),
    T("Which section of a newspaper would run this article?\n\n{text}{options_}", "{answer}"),
    T("Headline: {title}\nStory: {text}\nTopic:{options_}", "{answer}"),
    T("Classify the topic of the following news.\n{title}. {text}{options_}", "{answer}"),
    T("{text}\n\nIs this about world events, sports, business, or science and technology?"
      "{options_}", "{answer}"),
    T("A news feed shows: \"{title}\". Which category does it belong to?{options_}", "{answer}"),
    T("Read the article and pick its subject area.\n\n{title} -- {text}{options_}", "{answer}"),
    T("{title}: {text}\nCategory?{options_}", "{answer}"),
    T("What kind of news is this? {text}{options_}", "{answer}"),
    T("{text}\n\nWrite a headline for this news article.", "{title}", inverted=True),
)


# ---------------------------------------------------------------------------------------------
# CNN / DailyMail: bullet-point highlights of a news article.
def cnn_dailymail_fields(ex: Mapping[str, Any]) -> Fields | None:
    return _nonempty(article=ex["article"], summary=ex["highlights"])


CNN_DAILYMAIL_TEMPLATES = (
    T("{article}\n\nWrite the highlights of this article.", "{summary}"),
    T("Summarize this news story in a few sentences:\n\n{article}", "{summary}"),
    T("Article: {article}\n\nKey points:", "{summary}"),
    T("What are the main things a reader should take away from the following?\n{article}",
      "{summary}"),
    T("{article}\n\nGive me the short version.", "{summary}"),
    T("Here is a news report. List its most important facts briefly.\n\n{article}", "{summary}"),
    T("News: {article}\nSummary:", "{summary}"),
    T("I don't have time to read all of this. What happened?\n\n{article}", "{summary}"),
    T("Condense the article below into its highlights.\n{article}", "{summary}"),
    T("Write a news article based on these highlights:\n{summary}", "{article}", inverted=True),
)


# ---------------------------------------------------------------------------------------------
# Gigaword: a headline for the first sentence of a news article.
def gigaword_fields(ex: Mapping[str, Any]) -> Fields | None:
    return _nonempty(document=ex["document"], summary=ex["summary"])


GIGAWORD_TEMPLATES = (
    T("Write a headline for this sentence: {document}", "{summary}"),
    T("{document}\n\nShorten this into a brief headline.", "{summary}"),
    T("Sentence: {document}\nHeadline:", "{summary}"),
    T("What is a very short summary of the following text?\n{document}", "{summary}"),
    T("{document}\n\nSum this up in a few words.", "{summary}"),
    T("Turn the opening line of a news story into a title.\n\n{document}", "{summary}"),
    T("Newswire: {document}\n\nIf this were a headline, it would read:", "{summary}"),
    T("Compress this sentence as much as you can while keeping its meaning: {document}",
      "{summary}"),
    T("Give a headline-style summary. {document}", "{summary}"),
    T("Write the first sentence of a news story with the headline \"{summary}\".", "{document}",
      inverted=True),
)


# ---------------------------------------------------------------------------------------------
# Multi-News: one summary of several articles on the same event.
def multi_news_fields(ex: Mapping[str, Any]) -> Fields | None:
    articles = [a.strip() for a in ex["document"].split("|||||") if a.strip()]
    return _nonempty(document="\n\n".join(articles), summary=ex["summary"].lstrip("– "))


MULTI_NEWS_TEMPLATES = (
    T("{document}\n\nThese articles cover the same story. Write one summary of them.", "{summary}"),
    T("Summarize the following news reports together:\n\n{document}", "{summary}"),
    T("Sources:\n{document}\n\nCombined summary:", "{summary}"),
    T("Read all the articles below and explain what happened in one short piece.\n\n{document}",
      "{summary}"),
    T("{document}\n\nWrite a news brief that draws on every article above.", "{summary}"),
    T("Several outlets reported on this event:\n{document}\n\nWhat is the overall story?",
      "{summary}"),
    T("Merge these news articles into a single summary.\n{document}", "{summary}"),
    T("{document}\n\nTL;DR of all of the above:", "{summary}"),
    T("Produce a multi-document summary.\n\nDocuments: {document}", "{summary}"),
    T("Here is a summary of a news event:\n{summary}\n\nWrite a news article it could summarize.",
      "{document}", inverted=True),
)


# ---------------------------------------------------------------------------------------------
# Newsroom: a summary of an article from one of 38 publications (title given too).
def newsroom_fields(ex: Mapping[str, Any]) -> Fields | None:
    return _nonempty(title=ex["title"], text=ex["text"], summary=ex["summary"])


NEWSROOM_TEMPLATES = (
    T("{title}\n\n{text}\n\nSummarize the article above.", "{summary}"),
    T("Write a short summary for this story titled \"{title}\":\n\n{text}", "{summary}"),
    T("Title: {title}\nArticle: {text}\nSummary:", "{summary}"),
    T("{text}\n\nWhat is this article about, in a sentence or two?", "{summary}"),
    T("Here is an article from a news website.\n\n{title}\n{text}\n\nWrite the blurb that would "
      "appear under its link.", "{summary}"),
    T("Give a brief description of this piece: {text}", "{summary}"),
    T("Summarize: {title}. {text}", "{summary}"),
    T("Read this and tell me the gist.\n\n{text}", "{summary}"),
    T("Article headline: {title}\n\n{text}\n\nOne-paragraph summary:", "{summary}"),
    T("{text}\n\nWhat is a good title for this article?", "{title}", inverted=True),
)


# ---------------------------------------------------------------------------------------------
# Opinion Abstracts / idebate: the claim an argument makes.
def idebate_fields(ex: Mapping[str, Any]) -> Fields | None:
    argument = " ".join(s.strip() for s in ex["_argument_sentences"]["value"])
    return _nonempty(debate=ex["_debate_name"], argument=argument, summary=ex["_claim"])


IDEBATE_TEMPLATES = (
    T("{argument}\n\nWhat claim is this argument making?", "{summary}"),
    T("Debate: {debate}\nArgument: {argument}\n\nState the argument's main point in one sentence.",
      "{summary}"),
    T("Summarize the following argument as a short claim.\n\n{argument}", "{summary}"),
    T("In a debate on \"{debate}\", someone said:\n{argument}\n\nWhat is their claim?",
      "{summary}"),
    T("Argument: {argument}\nClaim:", "{summary}"),
    T("Boil this argument down to the point it is trying to prove: {argument}", "{summary}"),
    T("{argument}\n\nWrite a one-line heading for this argument.", "{summary}"),
    T("Here is a paragraph from a debate about {debate}. What is it arguing for?\n\n{argument}",
      "{summary}"),
    T("What position does the speaker take?\n{argument}", "{summary}"),
    T("Debate topic: {debate}\n\nWrite an argument supporting the claim \"{summary}\".",
      "{argument}", inverted=True),
)


# ---------------------------------------------------------------------------------------------
# Opinion Abstracts / Rotten Tomatoes: the critics' consensus from a movie's reviews.
def rotten_tomatoes_fields(ex: Mapping[str, Any]) -> Fields | None:
    reviews = "\n".join(f"- {r.strip()}" for r in ex["_critics"]["value"] if r.strip())
    return _nonempty(movie=ex["_movie_name"], reviews=reviews, summary=ex["_critic_consensus"])


ROTTEN_TOMATOES_TEMPLATES = (
    T("Reviews of {movie}:\n{reviews}\n\nWrite a critics' consensus for the movie.", "{summary}"),
    T("{reviews}\n\nSum up what these critics think of the film.", "{summary}"),
    T("Here is what critics wrote about {movie}.\n\n{reviews}\n\nWhat is the overall verdict?",
      "{summary}"),
    T("Movie: {movie}\nCritic reviews:\n{reviews}\nConsensus:", "{summary}"),
    T("Read these movie reviews and write a short summary of the critics' opinion.\n\n{reviews}",
      "{summary}"),
    T("Is {movie} worth watching? Summarize the reviews below in a sentence or two.\n\n{reviews}",
      "{summary}"),
    T("{reviews}\n\nThese are reviews of {movie}. What do they agree on?", "{summary}"),
    T("Combine the following critic quotes into one consensus statement.\n{reviews}", "{summary}"),
    T("Critics on \"{movie}\":\n{reviews}\n\nIn short:", "{summary}"),
    T("The critics' consensus on {movie} was: \"{summary}\"\n\nWrite a few short reviews that "
      "match it.", "{reviews}", inverted=True),
)


# ---------------------------------------------------------------------------------------------
# SAMSum: a third-person summary of a chat conversation.
def samsum_fields(ex: Mapping[str, Any]) -> Fields | None:
    return _nonempty(dialogue=ex["dialogue"], summary=ex["summary"])


SAMSUM_TEMPLATES = (
    T("{dialogue}\n\nSummarize this conversation.", "{summary}"),
    T("Chat log:\n{dialogue}\n\nWhat did they talk about?", "{summary}"),
    T("Write a short summary of the dialogue below.\n\n{dialogue}", "{summary}"),
    T("Conversation:\n{dialogue}\nSummary:", "{summary}"),
    T("I missed this group chat. Can you tell me briefly what was said?\n\n{dialogue}",
      "{summary}"),
    T("{dialogue}\n\nDescribe what happened in this exchange in one or two sentences.",
      "{summary}"),
    T("Briefly report the outcome of this messenger conversation:\n{dialogue}", "{summary}"),
    T("Read the messages and write a third-person summary.\n{dialogue}", "{summary}"),
    T("{dialogue}\n\nTL;DR:", "{summary}"),
    T("Write a chat conversation that could be summarized as: {summary}", "{dialogue}",
      inverted=True),
)


# ---------------------------------------------------------------------------------------------
# WikiLingua (GEM, English): summary of a WikiHow how-to article.
def wiki_lingua_fields(ex: Mapping[str, Any]) -> Fields | None:
    return _nonempty(article=ex["source"], summary=ex["target"])


WIKI_LINGUA_TEMPLATES = (
    T("{article}\n\nSummarize these instructions.", "{summary}"),
    T("Here is a how-to guide:\n\n{article}\n\nWrite a brief summary of the steps.", "{summary}"),
    T("Guide: {article}\nSummary:", "{summary}"),
    T("What are the main steps described in the following text?\n{article}", "{summary}"),
    T("Give the short version of this tutorial.\n\n{article}", "{summary}"),
    T("{article}\n\nCondense the advice above into a few sentences.", "{summary}"),
    T("Someone wrote these instructions on a help site:\n{article}\n\nSum them up.", "{summary}"),
    T("Summarize the how-to article below, keeping the order of the steps.\n{article}",
      "{summary}"),
    T("Instructions: {article}\n\nIn a nutshell:", "{summary}"),
    T("Write detailed step-by-step instructions that expand on this summary:\n{summary}",
      "{article}", inverted=True),
)


# ---------------------------------------------------------------------------------------------
# XSum: a single-sentence summary of a BBC article.
def xsum_fields(ex: Mapping[str, Any]) -> Fields | None:
    return _nonempty(document=ex["document"], summary=ex["summary"])


XSUM_TEMPLATES = (
    T("{document}\n\nSummarize this article in one sentence.", "{summary}"),
    T("What is the article below about? Answer in a single sentence.\n\n{document}", "{summary}"),
    T("Article: {document}\nOne-sentence summary:", "{summary}"),
    T("Write the one-line intro a news site would put above this story.\n{document}",
      "{summary}"),
    T("{document}\n\nIf you had to explain this story in one sentence, what would you say?",
      "{summary}"),
    T("Read this BBC report and give its main point in a sentence:\n\n{document}", "{summary}"),
    T("Summarize in one line: {document}", "{summary}"),
    T("{document}\n\nExtreme summary (one sentence):", "{summary}"),
    T("Here is a news article.\n{document}\nWhat is it mainly reporting?", "{summary}"),
    T("Write a news article that begins by expanding on this sentence: {summary}", "{document}",
      inverted=True),
)


def _spec(name: str, builder: str, version: str, splits: Mapping[str, str], to_fields: FieldMapping,
          fields: tuple[str, ...], templates: tuple[Template, ...], description: str,
          answer_field: str = "summary") -> DatasetSpec:
    return DatasetSpec(name=name, cluster=CLUSTER,
                       sources={name: TfdsSource(builder, version, splits)},
                       to_fields=to_fields, fields=fields, templates=templates,
                       answer_field=answer_field, metric="rouge", description=description)


DATASETS: tuple[DatasetSpec, ...] = (
    _spec("aeslc", "aeslc", "1.0.0", _TRAIN_VAL_TEST, aeslc_fields, ("email", "subject"),
          AESLC_TEMPLATES, "Email subject line generation (AESLC).", answer_field="subject"),
    DatasetSpec(
        name="ag_news", cluster=CLUSTER,
        sources={"ag_news": TfdsSource("ag_news_subset", "1.0.0",
                                       {"train": "train", "validation": "test"})},
        to_fields=ag_news_fields, fields=("title", "text", "answer"), templates=AG_NEWS_TEMPLATES,
        options=AG_NEWS_OPTIONS,
        description="News topic classification, 4 classes (AG News subset; test as validation).",
    ),
    _spec("cnn_dailymail", "cnn_dailymail", "3.4.0", _TRAIN_VAL_TEST, cnn_dailymail_fields,
          ("article", "summary"), CNN_DAILYMAIL_TEMPLATES, "News article highlights (CNN/DM)."),
    _spec("gigaword", "gigaword", "1.2.0", _TRAIN_VAL_TEST, gigaword_fields,
          ("document", "summary"), GIGAWORD_TEMPLATES, "Headline from a first sentence."),
    _spec("multi_news", "multi_news", "2.1.0", _TRAIN_VAL_TEST, multi_news_fields,
          ("document", "summary"), MULTI_NEWS_TEMPLATES, "Multi-document news summaries."),
    _spec("newsroom", "newsroom", "1.0.0", _TRAIN_VAL_TEST, newsroom_fields,
          ("title", "text", "summary"), NEWSROOM_TEMPLATES,
          "News summaries from 38 publishers (Newsroom; manual download)."),
    _spec("opinion_abstracts_idebate", "opinion_abstracts/idebate", "1.0.0", _TRAIN_ONLY,
          idebate_fields, ("debate", "argument", "summary"), IDEBATE_TEMPLATES,
          "Debate argument -> claim (Opinion Abstracts, idebate)."),
    _spec("opinion_abstracts_rotten_tomatoes", "opinion_abstracts/rotten_tomatoes", "1.0.0",
          _TRAIN_ONLY, rotten_tomatoes_fields, ("movie", "reviews", "summary"),
          ROTTEN_TOMATOES_TEMPLATES, "Movie reviews -> critics' consensus (Opinion Abstracts)."),
    _spec("samsum", "samsum", "1.0.0", _TRAIN_VAL_TEST, samsum_fields, ("dialogue", "summary"),
          SAMSUM_TEMPLATES, "Chat dialogue summaries (SAMSum; manual download)."),
    _spec("wiki_lingua_en", "gem/wiki_lingua_english_en", "1.1.0", _TRAIN_VAL_TEST,
          wiki_lingua_fields, ("article", "summary"), WIKI_LINGUA_TEMPLATES,
          "WikiHow how-to summaries, English (GEM WikiLingua)."),
    _spec("xsum", "xsum", "1.1.0", _TRAIN_VAL_TEST, xsum_fields, ("document", "summary"),
          XSUM_TEMPLATES, "One-sentence BBC news summaries (XSum; manual download)."),
)
