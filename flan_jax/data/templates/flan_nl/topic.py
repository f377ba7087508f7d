"""flan-nl cluster "nl_topic": which topic is a headline, a question or a shop listing about?

Sentences are hand-written frames whose slots are filled from small word lists:
    nl_news_topic:      {"text": "The mayor of Bristol resigns after a row over bus fares.",
                         "answer": "politics"}     options business / politics / science / sports
    nl_question_topic:  {"text": "How long should I boil eggs?", "answer": "cooking"}
                         options computers / cooking / health / travel
    nl_shop_department: {"text": "Nordvik wool coat, machine washable", "answer": "clothing"}
                         options clothing / electronics / garden / groceries
Labels balanced. Content key: the text.
"""
from __future__ import annotations

import random

from flan_jax.data.templates.flan_nl._source import nl_dataset
from flan_jax.data.templates.spec import DatasetSpec, Fields, Template

CLUSTER = "nl_topic"
FIELDS: tuple[str, ...] = ("text", "answer")

CITIES = ("Bristol", "Leeds", "Lyon", "Porto", "Denver", "Osaka", "Perth", "Hamburg", "Turin",
          "Cardiff", "Dallas", "Glasgow", "Seville", "Bergen", "Quebec")
SURNAMES = ("Okafor", "Lindqvist", "Moreau", "Tanaka", "Alvarez", "Novak", "Brennan", "Rossi",
            "Keller", "Haddad", "Silva", "Petrov")
NUMBERS = ("three", "four", "five", "six", "eight", "ten", "twelve", "fifteen", "twenty")

# {c}/{c2}: cities, {s}: a surname, {n}: a number word; every frame uses at least two.
NEWS = {
    "sports": (
        "{c} beat {c2} {n} goals to one to reach the cup final.",
        "{s} scores twice as {c} win the derby.",
        "{s} wins the {c} marathon in a record time.",
        "Tennis star {s} knocks out the top seed in {c}.",
        "{c} sack their coach after {n} defeats in a row.",
        "The national swimming team trains in {c} for {n} weeks before the Olympics.",
        "{s} signs a {n}-year contract with the {c} basketball club.",
        "Rain stops play as {c} chase a big total against {c2}.",
    ),
    "science": (
        "Astronomers in {c} spot a comet passing close to Mars, says Dr {s}.",
        "Researchers led by Dr {s} map the genome of a rare frog in {c}.",
        "A study of {n} thousand mice in {c} links sleep to memory.",
        "Physicists in {c} measure the mass of the neutrino {n} times more precisely.",
        "Biologists from {c} find {n} new species of beetle in the rainforest.",
        "A telescope built by a team from {c} photographs a galaxy, Dr {s} reports.",
        "Dr {s} shows that bees can learn to count to {n}.",
        "Chemists in {c} make a battery that charges in {n} minutes.",
    ),
    "politics": (
        "The prime minister calls an early election after {n} months of talks in {c}.",
        "Parliament votes on a new tax bill proposed by minister {s}.",
        "The mayor of {c} resigns after a row with councillor {s}.",
        "Opposition leader {s} demands a vote on the budget in {c}.",
        "Senators debate a new immigration law for {n} hours, led by {s}.",
        "The president meets foreign ministers in {c} for {n} days of peace talks.",
        "Voters in {c} go to the polls to choose between {s} and a rival.",
        "Minister {s} promises {n} new hospitals before the next election.",
    ),
    "business": (
        "Shares in a {c} carmaker fall {n} percent after weak sales.",
        "The central bank of {c} raises interest rates for the {n}th time.",
        "A software company from {c} buys a rival for {n} million dollars.",
        "Oil prices climb as supply tightens, says {c} analyst {s}.",
        "A supermarket chain opens {n} new stores around {c}.",
        "Airline profits beat forecasts, chief executive {s} tells investors in {c}.",
        "Factory orders in {c} drop for the {n}th month running.",
        "The {c} bakery chain founded by {s} plans to sell shares on the stock market.",
    ),
}

# Slots: {food}/{food2}, {method}, {country}/{country2}, {month}, {activity}, {part},
# {device}, {task}; every frame uses two.
QUESTIONS = {
    "cooking": (
        "How long should I {method} {food} for?",
        "Can I {method} {food} the day before a dinner party?",
        "What sauce goes well with {food} if I {method} them?",
        "Can I use {food} instead of {food2} in a stew?",
    ),
    "travel": (
        "Is {month} a good time to visit {country}?",
        "What should I pack for a trip to {country} in {month}?",
        "Are flights to {country} cheaper in {month}?",
        "For a first holiday abroad, is {country} or {country2} the better choice?",
    ),
    "health": (
        "Why does my {part} hurt after {activity}?",
        "Is {activity} safe with a weak {part}?",
        "Should I see a doctor about {part} pain from {activity}?",
        "Can stretching my {part} before {activity} prevent injuries?",
    ),
    "computers": (
        "Why does my {device} get so hot when {task}?",
        "My {device} freezes when {task}; what should I check?",
        "How much memory does my {device} need for {task}?",
        "Why does the screen of my {device} go black while {task}?",
    ),
}
SLOTS = {
    "food": ("eggs", "potatoes", "carrots", "mushrooms", "onions", "chicken wings", "dumplings",
             "green beans", "sausages", "courgettes", "peppers", "chickpeas", "prawns",
             "lentils", "parsnips"),
    "method": ("boil", "roast", "fry", "steam", "bake", "grill"),
    "country": ("Japan", "Portugal", "Canada", "Kenya", "Norway", "Peru", "Vietnam", "Morocco",
                "Chile", "Greece", "Iceland", "Thailand", "Mexico", "Croatia", "Egypt"),
    "month": ("January", "February", "March", "April", "May", "June", "July", "August",
              "September", "October", "November", "December"),
    "activity": ("running", "swimming", "lifting weights", "cycling", "hiking", "yoga",
                 "playing tennis", "playing football", "dancing", "rowing", "skiing",
                 "climbing"),
    "part": ("knee", "back", "neck", "shoulder", "ankle", "wrist", "hip", "elbow", "foot",
             "lower back", "calf", "thigh"),
    "device": ("laptop", "desktop computer", "old PC", "gaming computer", "work laptop",
               "home computer", "new laptop", "office PC", "school laptop", "mini PC"),
    "task": ("editing videos", "playing games", "running several programs",
             "copying large files", "browsing the internet", "installing updates",
             "using a spreadsheet", "video calling", "printing", "streaming films",
             "compiling code", "opening many tabs", "syncing my files",
             "running antivirus scans"),
}

BRANDS = ("Nordvik", "Arlo", "Brightwell", "Kestra", "Oakfield", "Lumen", "Vesta", "Harbour")
LISTINGS = {
    "clothing": (("wool coat", "cotton shirt", "denim jeans", "winter scarf", "rain jacket",
                  "knitted jumper", "summer dress", "pair of socks"),
                 ("machine washable", "size medium", "in navy blue", "slim fit",
                  "for men and women", "size 12", "100% cotton", "in dark green")),
    "electronics": (("wireless headphones", "phone charger", "smart television", "laptop",
                     "digital camera", "bluetooth speaker", "tablet", "computer keyboard"),
                    ("with a two-year warranty", "battery included", "black, 64 GB",
                     "with USB-C cable", "HD display", "rechargeable", "energy class A",
                     "with remote control")),
    "garden": (("lawn mower", "set of flower pots", "garden hose", "leaf rake",
                "packet of tomato seeds", "wheelbarrow", "hedge trimmer", "watering can"),
               ("weatherproof", "for lawns and borders", "for outdoor use", "30 metres",
                "steel frame", "for raised beds", "frost resistant", "for patios")),
    "groceries": (("basmati rice", "spaghetti", "olive oil", "breakfast cereal", "ground coffee",
                   "tea bags", "tomato sauce", "porridge oats"),
                  ("1 kg bag", "organic", "family pack", "pack of 80", "500 g jar",
                   "best before June", "gluten free", "value pack")),
}


def _balanced(rng: random.Random, makers: dict, n: int) -> list[Fields]:
    labels = sorted(makers)
    return [{"text": makers[labels[i % len(labels)]](rng), "answer": labels[i % len(labels)]}
            for i in range(n)]


def _news(frames):
    def make(rng: random.Random) -> str:
        c, c2 = rng.sample(CITIES, 2)
        return rng.choice(frames).format(c=c, c2=c2, s=rng.choice(SURNAMES),
                                         n=rng.choice(NUMBERS))
    return make


def _question(frames):
    def make(rng: random.Random) -> str:
        values = {}
        for name, words in SLOTS.items():
            values[name], values[name + "2"] = rng.sample(words, 2)
        return rng.choice(frames).format(**values)
    return make


def _listing(items, details):
    def make(rng: random.Random) -> str:
        return f"{rng.choice(BRANDS)} {rng.choice(items)}, {rng.choice(details)}"
    return make


def news_candidates(rng: random.Random) -> list[Fields]:
    return _balanced(rng, {topic: _news(frames) for topic, frames in NEWS.items()}, 12000)


def question_candidates(rng: random.Random) -> list[Fields]:
    return _balanced(rng, {t: _question(frames) for t, frames in QUESTIONS.items()}, 12000)


def listing_candidates(rng: random.Random) -> list[Fields]:
    return _balanced(rng, {d: _listing(*parts) for d, parts in LISTINGS.items()}, 12000)


def _key(row: Fields) -> str:
    return row["text"]


NEWS_TEMPLATES = (
    Template("Headline: {text}\nWhich section of the newspaper is this from?{options_}",
             "{answer}"),
    Template("{text}\n\nWhat is this news story about?{options_}", "{answer}"),
    Template("What topic does this headline belong to?\n\"{text}\"{options_}", "{answer}"),
    Template("Classify the news headline by topic.\n\n{text}{options_}", "{answer}"),
    Template("News: {text}\nTopic:{options_}", "{answer}"),
    Template("An editor has to file this story: \"{text}\" Which desk should get it?{options_}",
             "{answer}"),
    Template("Is this headline about sports, science, politics or business?\n{text}{options_}",
             "{answer}"),
    Template("{text}\nWhich category fits this news item best?{options_}", "{answer}"),
    Template("Read the headline and name its subject area: {text}{options_}", "{answer}"),
    Template("Sort this story into the right news category.\nStory: {text}{options_}",
             "{answer}"),
)

QUESTION_TEMPLATES = (
    Template("Question: {text}\nWhich forum should this question be posted in?{options_}",
             "{answer}"),
    Template("{text}\n\nWhat is this question about?{options_}", "{answer}"),
    Template("What topic does this question belong to?\n\"{text}\"{options_}", "{answer}"),
    Template("Classify the following question by topic.\n\n{text}{options_}", "{answer}"),
    Template("Q: {text}\nTopic:{options_}", "{answer}"),
    Template("Someone asked: \"{text}\" Which kind of expert could answer best?{options_}",
             "{answer}"),
    Template("Is this a question about computers, cooking, health or travel?\n{text}{options_}",
             "{answer}"),
    Template("{text}\nWhich category does this question fall under?{options_}", "{answer}"),
    Template("Read the question and name its subject: {text}{options_}", "{answer}"),
    Template("A help site sorts questions into sections. Where does this one go?\n{text}"
             "{options_}", "{answer}"),
)

LISTING_TEMPLATES = (
    Template("Product: {text}\nWhich department of the store sells this?{options_}",
             "{answer}"),
    Template("{text}\n\nWhat kind of product is this?{options_}", "{answer}"),
    Template("Which shop department does this listing belong to?\n\"{text}\"{options_}",
             "{answer}"),
    Template("Classify the product listing by department.\n\n{text}{options_}", "{answer}"),
    Template("Item: {text}\nDepartment:{options_}", "{answer}"),
    Template("A customer wants to buy \"{text}\". Which aisle should they go to?{options_}",
             "{answer}"),
    Template("Is this item clothing, electronics, garden or groceries?\n{text}{options_}",
             "{answer}"),
    Template("{text}\nWhich category of an online shop lists this item?{options_}",
             "{answer}"),
    Template("Read the listing and name the department: {text}{options_}", "{answer}"),
    Template("Put this product in the right section of the catalogue.\nListing: {text}"
             "{options_}", "{answer}"),
)

DATASETS: tuple[DatasetSpec, ...] = (
    nl_dataset("nl_news_topic", CLUSTER, news_candidates, _key, FIELDS, NEWS_TEMPLATES,
               "topic of a news headline", options=tuple(sorted(NEWS))),
    nl_dataset("nl_question_topic", CLUSTER, question_candidates, _key, FIELDS,
               QUESTION_TEMPLATES, "topic of a question asked on a help forum",
               options=tuple(sorted(QUESTIONS))),
    nl_dataset("nl_shop_department", CLUSTER, listing_candidates, _key, FIELDS,
               LISTING_TEMPLATES, "store department of a product listing",
               options=tuple(sorted(LISTINGS))),
)
