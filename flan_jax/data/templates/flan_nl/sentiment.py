"""flan-nl cluster "nl_sentiment": is a short review positive or negative?

A review is an opening sentence (what was bought, watched or eaten) followed by two different
sentences of the same polarity, all written for this repo:
    {"review": "I bought this kettle last month. It works perfectly. Highly recommended.",
     "answer": "positive"}
Options ("negative", "positive"); labels balanced. Content key: the review text.
"""
from __future__ import annotations

import random

from flan_jax.data.templates.flan_nl._source import nl_dataset
from flan_jax.data.templates.spec import DatasetSpec, Fields, Template

CLUSTER = "nl_sentiment"
FIELDS: tuple[str, ...] = ("review", "answer")
OPTIONS: tuple[str, ...] = ("negative", "positive")

PRODUCTS = ("blender", "kettle", "vacuum cleaner", "backpack", "phone case", "desk lamp",
            "pair of headphones", "toaster", "umbrella", "office chair", "coffee grinder",
            "water bottle")
WHEN = ("last month", "two weeks ago", "for my sister", "after reading the reviews", "on sale",
        "for my new flat")
PRODUCT_GOOD = (
    "It works perfectly.", "It is sturdy and well made.", "Setting it up took five minutes.",
    "It is worth every penny.", "I use it every day and love it.",
    "The quality is far better than I expected.",
    "It arrived quickly and in perfect condition.", "I would buy it again without a second thought.",
    "It is quiet, easy to clean and looks great.", "Highly recommended.",
)
PRODUCT_BAD = (
    "It stopped working after a week.", "It feels cheap and flimsy.",
    "The instructions were useless.", "It is a waste of money.",
    "It arrived scratched and with a part missing.",
    "The quality is much worse than the photos suggest.",
    "Customer service never answered my emails.", "I sent it back the next day.",
    "It is loud, hard to clean and ugly.", "Avoid this one.",
)

TITLES = ("The Glass Orchard", "Midnight at Kestrel Bay", "Red Lanterns", "The Last Mapmaker",
          "Paper Moons", "A Winter in Harrowgate", "Salt and Thunder", "The Quiet Engine",
          "Seven Small Bridges", "Orange Skies Over Tallin")
MOVIE_WHEN = ("last night", "at the cinema on Friday", "with my parents", "on a long flight",
              "at a friend's house")
MOVIE_GOOD = (
    "The acting is superb.", "The story kept me gripped until the very end.",
    "The music is beautiful.", "It made me laugh and cry.", "The director has made a masterpiece.",
    "Every scene is gorgeous to look at.", "I cannot wait to watch it again.",
    "The dialogue is sharp and funny.", "Easily the best film of the year.",
    "The cast have wonderful chemistry.",
)
MOVIE_BAD = (
    "The acting is wooden.", "The plot makes no sense.", "I nearly fell asleep halfway through.",
    "The jokes fall completely flat.", "It is far too long and painfully slow.",
    "The ending is a mess.", "The dialogue is clumsy and dull.", "I want my two hours back.",
    "Easily the worst film of the year.", "The special effects look cheap.",
)

RESTAURANTS = ("Luigi's", "The Blue Door", "Casa Verde", "the Golden Dragon", "The Olive Tree",
               "the Maple Street Diner", "Saffron House", "the Corner Bistro")
MEALS = ("dinner", "lunch", "brunch", "a birthday meal", "a quick supper")
FOOD_GOOD = (
    "The food was delicious.", "The staff were friendly and attentive.",
    "The portions were generous.", "Everything tasted fresh.", "The desserts were heavenly.",
    "We hardly had to wait.", "The prices were very fair.", "The room was warm and cosy.",
    "We will definitely be back.", "Best pasta I have had in years.",
)
FOOD_BAD = (
    "The food was cold and tasteless.", "The waiter was rude.", "The portions were tiny.",
    "We waited an hour for our main course.", "The bill was outrageous.",
    "Our table was dirty.", "The fish tasted off.", "The room was noisy and cramped.",
    "We will never go back.", "Worst pasta I have had in years.",
)


def _reviews(rng: random.Random, openers: list[str], good, bad, n: int = 10000) -> list[Fields]:
    """Opener + two sentences in list order (so "A B" and "B A" are never two rows)."""
    rows = []
    for i in range(n):
        answer = OPTIONS[i % 2]
        sentences = good if answer == "positive" else bad
        first, second = sorted(rng.sample(range(len(sentences)), 2))
        text = f"{rng.choice(openers)} {sentences[first]} {sentences[second]}"
        rows.append({"review": text, "answer": answer})
    return rows


def product_candidates(rng: random.Random) -> list[Fields]:
    openers = [f"I bought this {p} {w}." for p in PRODUCTS for w in WHEN]
    return _reviews(rng, openers, PRODUCT_GOOD, PRODUCT_BAD)


def movie_candidates(rng: random.Random) -> list[Fields]:
    openers = [f"I watched {t} {w}." for t in TITLES for w in MOVIE_WHEN]
    return _reviews(rng, openers, MOVIE_GOOD, MOVIE_BAD)


def restaurant_candidates(rng: random.Random) -> list[Fields]:
    openers = [f"We had {m} at {r}." for r in RESTAURANTS for m in MEALS]
    return _reviews(rng, openers, FOOD_GOOD, FOOD_BAD)


def _key(row: Fields) -> str:
    return row["review"]


PRODUCT_TEMPLATES = (
    Template("Product review: {review}\nIs this review positive or negative?{options_}",
             "{answer}"),
    Template("{review}\n\nDid the customer like the product?{options_}", "{answer}"),
    Template("Here is a review from an online shop:\n\"{review}\"\nWhat is the sentiment of "
             "this review?{options_}", "{answer}"),
    Template("Read this customer review and say whether it is positive or negative.\n\n"
             "{review}{options_}", "{answer}"),
    Template("Review: {review}\nSentiment:{options_}", "{answer}"),
    Template("A shopper wrote: \"{review}\" Is the shopper happy with the purchase?{options_}",
             "{answer}"),
    Template("Classify the tone of this product review.\n{review}{options_}", "{answer}"),
    Template("{review}\nWould you say this review is positive or negative?{options_}",
             "{answer}"),
    Template("Is the following review of a product favourable?\n\n{review}{options_}",
             "{answer}"),
    Template("Decide if the opinion in this review is positive or negative: {review}{options_}",
             "{answer}"),
)

MOVIE_TEMPLATES = (
    Template("Movie review: {review}\nIs this review positive or negative?{options_}",
             "{answer}"),
    Template("{review}\n\nDid the reviewer enjoy the film?{options_}", "{answer}"),
    Template("Here is what someone wrote about a film:\n\"{review}\"\nWhat is the sentiment "
             "of this review?{options_}", "{answer}"),
    Template("Read this film review and say whether it is positive or negative.\n\n"
             "{review}{options_}", "{answer}"),
    Template("Film review: {review}\nSentiment:{options_}", "{answer}"),
    Template("A critic wrote: \"{review}\" Does the critic recommend the movie?{options_}",
             "{answer}"),
    Template("What is the attitude of this movie review?\n{review}{options_}", "{answer}"),
    Template("{review}\nHow does the viewer feel about the film, positive or negative?"
             "{options_}", "{answer}"),
    Template("Is the following movie review favourable?\n\n{review}{options_}", "{answer}"),
    Template("Tell me if this review of a film is positive or negative: {review}{options_}",
             "{answer}"),
)

RESTAURANT_TEMPLATES = (
    Template("Restaurant review: {review}\nIs this review positive or negative?{options_}",
             "{answer}"),
    Template("{review}\n\nDid the diners enjoy their visit?{options_}", "{answer}"),
    Template("Here is a review of a restaurant:\n\"{review}\"\nWhat is the sentiment of this "
             "review?{options_}", "{answer}"),
    Template("Read this restaurant review and say whether it is positive or negative.\n\n"
             "{review}{options_}", "{answer}"),
    Template("Review: {review}\nOverall feeling:{options_}", "{answer}"),
    Template("A guest wrote: \"{review}\" Was the guest pleased with the restaurant?{options_}",
             "{answer}"),
    Template("Classify the sentiment of this review of a place to eat.\n{review}{options_}",
             "{answer}"),
    Template("{review}\nWould you call this restaurant review positive or negative?{options_}",
             "{answer}"),
    Template("Is the following restaurant review favourable?\n\n{review}{options_}", "{answer}"),
    Template("Based on this review, did the writer like the restaurant? {review}{options_}",
             "{answer}"),
)

DATASETS: tuple[DatasetSpec, ...] = (
    nl_dataset("nl_product_review", CLUSTER, product_candidates, _key, FIELDS, PRODUCT_TEMPLATES,
               "sentiment of a short product review", options=OPTIONS),
    nl_dataset("nl_movie_review", CLUSTER, movie_candidates, _key, FIELDS, MOVIE_TEMPLATES,
               "sentiment of a short film review", options=OPTIONS),
    nl_dataset("nl_restaurant_review", CLUSTER, restaurant_candidates, _key, FIELDS,
               RESTAURANT_TEMPLATES, "sentiment of a short restaurant review", options=OPTIONS),
)
