"""FLAN 2021 sentiment cluster: IMDB, Sentiment140, SST-2, Yelp (binary polarity).

All four map to (text, answer) with answer "negative" or "positive".

Worked example (imdb_reviews, label names neg / pos):

    raw    {"text": "A dull, overlong film.", "label": 0}
    fields {"text": "A dull, overlong film.", "answer": "negative"}

Sentiment140's `polarity` is 0 (negative), 2 (neutral, test split only) or 4 (positive); neutral
and any other value is dropped. Unlabeled rows (label -1, e.g. GLUE test) are dropped.
"""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from flan_jax.data.templates.flan2021.common import pick_label
from flan_jax.data.templates.spec import DatasetSpec, Fields, Template, TfdsSource

T = Template
POLARITY = ("negative", "positive")
_FIELDS = ("text", "answer")


def _labelled(text: str, label: Any) -> Fields | None:
    answer = pick_label(POLARITY, label)
    return None if answer is None else {"text": text, "answer": answer}


# ---------------------------------------------------------------------------------------------
# IMDB movie reviews (label 0 = neg, 1 = pos; the "unsupervised" split is not used).
def imdb_fields(ex: Mapping[str, Any]) -> Fields | None:
    return _labelled(ex["text"], ex["label"])


IMDB = DatasetSpec(
    name="imdb",
    cluster="sentiment",
    sources={"imdb": TfdsSource("imdb_reviews/plain_text", "1.0.0",
                                {"train": "train", "validation": "test"})},
    to_fields=imdb_fields,
    fields=_FIELDS,
    templates=(
        T("{text}\n\nDid the reviewer like this movie?{options_}", "{answer}"),
        T("Movie review: {text}\nDoes it lean positive or negative?{options_}",
          "{answer}"),
        T("What is the tone of the following film review?\n\n{text}{options_}", "{answer}"),
        T("Classify the review.{options_}\n\nReview: {text}", "{answer}"),
        T("I found this review online: \"{text}\" Would you say the writer enjoyed the film?"
          "{options_}", "{answer}"),
        T("{text}\nSentiment:{options_}", "{answer}"),
        T("Read this opinion about a movie and tell me how the author feels about it.\n{text}"
          "{options_}", "{answer}"),
        T("Here is what a viewer wrote after watching a film:\n\n{text}\n\nOverall, is that "
          "opinion favorable?{options_}", "{answer}"),
        T("Review text: {text}\nPolarity?{options_}", "{answer}"),
        T("Write a {answer} review of a movie.", "{text}", inverted=True),
    ),
    options=POLARITY,
    description="IMDB reviews; tfds test split used for evaluation.",
)


# ---------------------------------------------------------------------------------------------
# Sentiment140 tweets: polarity 0 / 4 (2 = neutral is dropped).
def sentiment140_fields(ex: Mapping[str, Any]) -> Fields | None:
    answer = {0: "negative", 4: "positive"}.get(int(ex["polarity"]))
    return None if answer is None else {"text": ex["text"], "answer": answer}


SENTIMENT140 = DatasetSpec(
    name="sentiment140",
    cluster="sentiment",
    sources={"sentiment140": TfdsSource("sentiment140", "1.0.0",
                                        {"train": "train", "validation": "test"})},
    to_fields=sentiment140_fields,
    fields=_FIELDS,
    templates=(
        T("Tweet: {text}\n\nIs this tweet happy or unhappy in tone?{options_}", "{answer}"),
        T("{text}\n\nHow would you characterize the feeling behind this tweet?{options_}", "{answer}"),
        T("How does the person who posted this feel? \"{text}\"{options_}", "{answer}"),
        T("Someone tweeted: {text}\nPositive or negative?{options_}", "{answer}"),
        T("Label the mood of the social media post below.\n{text}{options_}", "{answer}"),
        T("{text}{options_}\nThe feeling expressed here is", "{answer}"),
        T("Decide if this short message is upbeat or downbeat.\n\nMessage: {text}{options_}",
          "{answer}"),
        T("Post: \"{text}\"\nSentiment?{options_}", "{answer}"),
        T("I saw this on my timeline: {text} Was the author in a good mood?{options_}", "{answer}"),
        T("Compose a tweet with a {answer} sentiment.", "{text}", inverted=True),
    ),
    options=POLARITY,
    description="Sentiment140 tweets; tfds test split used for evaluation.",
)


# ---------------------------------------------------------------------------------------------
# SST-2 movie-review sentences (label 0 = negative, 1 = positive; test labels are -1).
def sst2_fields(ex: Mapping[str, Any]) -> Fields | None:
    return _labelled(ex["sentence"], ex["label"])


SST2 = DatasetSpec(
    name="sst2",
    cluster="sentiment",
    sources={"sst2": TfdsSource("glue/sst2", "2.0.0", {"train": "train", "validation": "validation"})},
    to_fields=sst2_fields,
    fields=_FIELDS,
    templates=(
        T("Sentence from a movie review: {text}\nWas the critic pleased?{options_}", "{answer}"),
        T("\"{text}\"\nHow would you describe the sentiment of this phrase?{options_}", "{answer}"),
        T("{text}\n\nIs this fragment praising or criticizing the film?{options_}", "{answer}"),
        T("Determine the sentiment: {text}{options_}", "{answer}"),
        T("A critic wrote the words \"{text}\" Did they mean it as a compliment?{options_}",
          "{answer}"),
        T("Would you call the following snippet favorable or unfavorable?\n{text}{options_}", "{answer}"),
        T("Snippet: {text}\nTone:{options_}", "{answer}"),
        T("Here is part of a review.{options_}\n\n{text}\n\nWhich sentiment fits it?", "{answer}"),
        T("What attitude toward the movie does this convey? {text}{options_}", "{answer}"),
        T("Write a short phrase from a {answer} movie review.", "{text}", inverted=True),
    ),
    options=POLARITY,
)


# ---------------------------------------------------------------------------------------------
# Yelp polarity: label names "1" / "2" (1 = negative, 2 = positive), so index 0 / 1 as usual.
def yelp_fields(ex: Mapping[str, Any]) -> Fields | None:
    return _labelled(ex["text"], ex["label"])


YELP = DatasetSpec(
    name="yelp",
    cluster="sentiment",
    sources={"yelp": TfdsSource("yelp_polarity_reviews", "0.2.0",
                                {"train": "train", "validation": "test"})},
    to_fields=yelp_fields,
    fields=_FIELDS,
    templates=(
        T("{text}\n\nWas this customer satisfied?{options_}", "{answer}"),
        T("Business review: {text}\nDid the customer come away happy or unhappy?{options_}", "{answer}"),
        T("Which sentiment best describes this Yelp review?\n\n{text}{options_}", "{answer}"),
        T("Would the writer of this review go back? Judge the overall feeling.\n{text}{options_}",
          "{answer}"),
        T("Review: \"{text}\"{options_}\nRating:", "{answer}"),
        T("Here's a review a diner posted: {text} How did they feel about the place?{options_}",
          "{answer}"),
        T("Classify this local business review by sentiment.{options_}\n\n{text}", "{answer}"),
        T("{text} -- is that a good or a bad review?{options_}", "{answer}"),
        T("Read the customer feedback and give its polarity.\nFeedback: {text}{options_}",
          "{answer}"),
        T("Write a {answer} review of a restaurant or shop.", "{text}", inverted=True),
    ),
    options=POLARITY,
    description="Yelp polarity reviews; tfds test split used for evaluation.",
)

DATASETS: tuple[DatasetSpec, ...] = (IMDB, SENTIMENT140, SST2, YELP)
